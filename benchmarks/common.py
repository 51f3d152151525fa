"""Pieces every benchmark case shares: synthetic graphs, the training step,
timing, memory, and atomic JSON output."""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from typing import Any, Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F

#: name -> (nodes, undirected pairs sampled, input features)
GRAPHS: Dict[str, Tuple[int, int, int]] = {
    'cora': (2708, 5278, 1433),
    'arxiv': (169343, 1_165_000, 128),
}
CLASSES = 40


def random_graph(nodes: int, pairs: int, features: int, *,
                 self_loops: bool = False, seed: int = 0
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x, edge_index, y)``: ``pairs`` uniform node pairs made symmetric
    (PyG ``to_undirected``: both directions, duplicates merged), standard
    normal features and ``CLASSES`` uniform labels, all from one seeded
    generator (same graph on every call)."""
    from torch_geometric.utils import remove_self_loops, to_undirected
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, nodes, (2, pairs), generator=g)
    if not self_loops:
        ei = remove_self_loops(ei)[0]
    ei = to_undirected(ei, num_nodes=nodes)
    x = torch.randn(nodes, features, generator=g)
    y = torch.randint(0, CLASSES, (nodes, ), generator=g)
    return x, ei, y


def graph_input(edge_index: torch.Tensor, nodes: int,
                adj: str = 'edge_index') -> torch.Tensor:
    """What the model reads: ``edge_index`` as is, or (``adj='csr'``) the
    sparse CSR adjacency (symmetric graphs: it equals its transpose)."""
    if adj == 'edge_index':
        return edge_index
    from torch_geometric.utils import to_torch_csr_tensor
    with warnings.catch_warnings():      # torch's "sparse CSR is beta" notes
        warnings.simplefilter('ignore')
        return to_torch_csr_tensor(edge_index, size=(nodes, nodes))


def named_graph(name: str, device: str = 'cpu', adj: str = 'edge_index'):
    """``(x, graph, y, directed edges)`` of a :data:`GRAPHS` entry."""
    nodes, pairs, features = GRAPHS[name]
    x, ei, y = random_graph(nodes, pairs, features)
    return (x.to(device), graph_input(ei, nodes, adj).to(device),
            y.to(device), ei.size(1))


def train_step(model: torch.nn.Module, opt: Optional[torch.optim.Optimizer],
               x: torch.Tensor, graph: torch.Tensor, y: torch.Tensor
               ) -> Tuple[float, float]:
    """One forward + cross-entropy + backward (+ optimizer step when
    ``opt`` is given); returns ``(seconds, loss)``, synchronising a GPU."""
    start = time.perf_counter()
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x, graph), y)
    loss.backward()
    if opt is not None:
        opt.step()
    if x.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, loss.item()


def median_time(fn: Callable[[], Any], reps: int = 7) -> float:
    """Median wall seconds of ``reps`` calls of ``fn``."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rss_mb() -> float:
    """Resident set size of this process now, MiB."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (a cell's peak is
    this minus :func:`rss_mb` before it: hence one process per cell)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vm_mb() -> Dict[str, float]:
    """``VmRSS`` (resident now) and ``VmHWM`` (peak resident) of this
    process from ``/proc/self/status``, MiB."""
    out = {}
    with open('/proc/self/status') as f:
        for line in f:
            key, value = line.split(':', 1)
            if key in ('VmRSS', 'VmHWM'):
                out[key] = int(value.split()[0]) / 1024
    return out


def live_peak_mb(fn: Callable[[], Any]) -> float:
    """Peak bytes of tensors allocated by ``fn`` and alive at once, MiB:
    the running sum of the CPU allocator's events under
    ``torch.profiler`` (blocks allocated before the call and freed during
    it are not subtracted, so this errs high by at most their size)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as p:
        fn()
    total = peak = 0
    for event in p.profiler.kineto_results.events():
        if event.name() == '[memory]':
            total += event.nbytes()
            peak = max(peak, total)
    return peak / 2**20


def save_json(path: str, data: Any) -> None:
    """Writes ``data`` to ``path`` atomically (temporary file, then
    ``os.replace``), creating the folder."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
    with os.fdopen(fd, 'w') as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def machine() -> Dict[str, Any]:
    """CPU, core count, versions and the command line, for result files."""
    import torch_geometric
    cpu = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
    model = [ln.split(':', 1)[1].strip() for ln in cpu.splitlines()
             if ln.startswith('Model name')]
    return dict(cpu=model[0] if model else platform.processor(),
                cores=os.cpu_count(), torch=torch.__version__,
                pyg=torch_geometric.__version__,
                ld_preload=os.environ.get('LD_PRELOAD', ''),
                command=' '.join([os.path.basename(sys.executable)] +
                                 sys.argv))
