r"""Step time and peak memory of the deep model families, side by side.

One *cell* = (graph, depth, model). Every cell runs in a fresh subprocess
(``--worker``) that builds the graph and the model, records its RSS, runs
``steps`` training steps (forward + cross-entropy + backward + Adam step)
and reports the step times and the peak memory = ``ru_maxrss`` minus the RSS
before the first step. Cells of one (graph, depth) group run back to back,
round after round, so the ratios to ``res`` compare models under the same
machine load. Each finished cell is written to the JSON atomically; a rerun
skips finished cells (resumable).

Examples::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
    PYTHONPATH=. python benchmarks/perf.py --graphs cora arxiv \
        --depths 16 64 256 --out benchmarks/results/perf.json
    PYTHONPATH=. python benchmarks/perf.py --floor      # bandwidth floor
    PYTHONPATH=. python benchmarks/perf.py --compile    # compile vs eager
    PYTHONPATH=. python benchmarks/perf.py --dv-scaling # op cost vs d_v
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Dict, List

import torch
import torch.nn.functional as F

MODELS: Dict[str, tuple] = {   # label -> (registry name, kwargs)
    'res': ('res', {}),
    'res_ln': ('res', dict(norm='layer_norm')),
    'plain': ('plain', {}),
    'res+': ('res+', {}),
    'gcnii': ('gcnii', {}),
    'delta': ('delta', {}),
    'delta_nonorm': ('delta', dict(norm=None)),
    'delta_dv2': ('delta', dict(d_v=2)),
    'delta_dv4': ('delta', dict(d_v=4)),
}
GRAPHS = {  # name -> (nodes, undirected pairs sampled, input features)
    'cora': (2708, 5278, 1433),
    'arxiv': (169343, 1_165_000, 128),
}


def make_graph(name: str, device: str = 'cpu', adj: str = 'edge_index'):
    """A random symmetric graph of the given size (no self loops)."""
    from torch_geometric.utils import (remove_self_loops, to_torch_csr_tensor,
                                       to_undirected)
    N, E, F_in = GRAPHS[name]
    g = torch.Generator().manual_seed(0)
    ei = torch.randint(0, N, (2, E), generator=g)
    ei = to_undirected(remove_self_loops(ei)[0], num_nodes=N)
    x = torch.randn(N, F_in, generator=g)
    y = torch.randint(0, 40, (N, ), generator=g)
    graph = ei if adj == 'edge_index' else to_torch_csr_tensor(
        ei, size=(N, N))
    return x.to(device), graph.to(device), y.to(device), ei.size(1)


def rss_mb() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def build(label: str, depth: int, in_ch: int, ckpt: bool, width: int = 128):
    from ddl_gnn.models import build_model
    name, kw = MODELS[label]
    torch.manual_seed(0)
    return build_model(name, in_ch, width, depth, 40, checkpoint=ckpt, **kw)


def worker(args) -> None:
    """Runs one cell and prints one JSON line."""
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(args.flush_denormal)
    x, graph, y, E = make_graph(args.graph, args.device, args.adj)
    model = build(args.model, args.depth, x.size(1), args.checkpoint,
                  args.width).to(args.device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    base = rss_mb()
    if args.device != 'cpu':
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2**20
    times: List[float] = []
    for _ in range(args.steps):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x, graph), y).backward()
        opt.step()
        if args.device != 'cpu':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    if args.device != 'cpu':
        peak = torch.cuda.max_memory_allocated() / 2**20 - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
    print(json.dumps(dict(times=times, peak_mb=peak, base_mb=base, edges=E)))


def save_atomic(path: str, data: dict) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def machine() -> dict:
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


def run_table(args) -> None:
    from tqdm import tqdm
    data = json.load(open(args.out)) if os.path.exists(args.out) else {}
    data.setdefault('cells', {})
    data['machine'] = machine()
    cells = []
    for gname in args.graphs:
        for depth in args.depths:
            rounds = args.rounds if gname == 'cora' else args.big_rounds
            for r in range(rounds):
                for label in args.models:
                    cells.append((gname, depth, label, r))
    todo = [c for c in cells if f'{c[0]}/{c[1]}/{c[2]}/{c[3]}'
            not in data['cells']]
    for gname, depth, label, r in tqdm(todo, desc='cells'):
        # arxiv rows past ~10 GB of saved activations use checkpointing:
        # depth >= --ckpt-from for all models, and d_v = 4 from depth 64
        # (its state is 4x wider: ~28 GB at 64 layers; a CPU-RAM rule, so a
        # GPU with the memory runs d_v = 4 like the others).
        ckpt = gname != 'cora' and (depth >= args.ckpt_from or (
            label in ('delta_dv2', 'delta_dv4') and depth >= 64 and args.ckpt_from > 64
            and args.device == 'cpu'))
        steps = args.steps if gname == 'cora' else args.big_steps
        cmd = [sys.executable, __file__, '--worker', '--graph', gname,
               '--depth', str(depth), '--model', label, '--steps', str(steps), '--device', args.device, '--adj', args.adj,
               '--width', str(args.width), '--threads', str(args.threads)]
        cmd += ['--checkpoint'] if ckpt else []
        cmd += ['--flush-denormal'] if args.flush_denormal else []
        proc = subprocess.run(cmd, capture_output=True, text=True)
        key = f'{gname}/{depth}/{label}/{r}'
        if proc.returncode != 0:
            tqdm.write(f'{key}: failed\n{proc.stderr[-2000:]}')
            res = dict(error=proc.stderr[-500:], checkpoint=ckpt)
        else:
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            res.update(checkpoint=ckpt, steps=steps)
            tqdm.write(f'{key}: step {median_step(res):.3f}s peak '
                       f"{res['peak_mb']:.0f} MB")
        data['cells'][key] = res
        save_atomic(args.out, data)
    print(report(data))


def median_step(cell: dict) -> float:
    t = cell['times']
    return statistics.median(t[1:] if len(t) > 1 else t)  # skip warm-up


def report(data: dict) -> str:
    """Markdown table of step time and peak memory as ratios to res."""
    groups: Dict[tuple, Dict[str, list]] = {}
    for key, cell in data['cells'].items():
        g, depth, label, _ = key.split('/')
        groups.setdefault((g, int(depth)), {}).setdefault(label, []).append(
            cell)
    lines = ['| graph | depth | ckpt | model | step s | peak MB | '
             'time ÷ res | mem ÷ res |', '|---' * 8 + '|']
    for (g, depth) in sorted(groups, key=lambda k: (k[0] != 'cora', k[1])):
        cells = groups[(g, depth)]

        def stat(label):
            ok = [c for c in cells.get(label, []) if 'times' in c]
            if not ok:
                return None
            return (statistics.median(median_step(c) for c in ok),
                    statistics.median(c['peak_mb'] for c in ok),
                    ok[0]['checkpoint'])
        ref = stat('res')
        for label in MODELS:
            s = stat(label)
            if s is None:
                if any('error' in c for c in cells.get(label, [])):
                    lines.append(f'| {g} | {depth} | | {label} | failed |'
                                 ' | | |')
                continue
            rt = f'{s[0] / ref[0]:.2f}' if ref else '-'
            rm = f'{s[1] / ref[1]:.2f}' if ref else '-'
            lines.append(f'| {g} | {depth} | {"yes" if s[2] else "no"} | '
                         f'{label} | {s[0]:.3f} | {s[1]:.0f} | {rt} | {rm} |')
    return '\n'.join(lines)


def _median_time(fn, reps: int = 7) -> float:
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def floor(args) -> dict:
    """Memory bandwidth and the bytes a layer must move, vs measured."""
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    from ddl_gnn.ops import delta_update
    torch.set_num_threads(args.threads)
    a = torch.randn(2**27)                                     # 512 MiB
    b = torch.randn(2**27)
    nb = a.numel() * 4
    bw = {'copy': 2 * nb / _median_time(lambda: a.clone()),
          'add': 3 * nb / _median_time(lambda: a + b)}
    del a, b
    BW = max(bw.values())
    _, ei, _, E = make_graph('arxiv')
    N, d = GRAPHS['arxiv'][0], args.width
    ei, w = gcn_norm(ei, None, N)
    E = ei.size(1)                                  # with self loops
    from torch_geometric.nn import GCNConv
    from torch_geometric.utils import to_torch_csr_tensor
    conv = GCNConv(d, d, normalize=False)
    z = torch.randn(N, d)
    adj = to_torch_csr_tensor(ei, w, size=(N, N))
    k, X = torch.randn(N, d), torch.randn(N, d)
    beta, v = torch.rand(N), torch.randn(N)
    Xg, kg = X.clone().requires_grad_(), k.clone().requires_grad_()
    out = delta_update(Xg, kg, beta, v)
    g = torch.randn(N, d)
    nd = N * d * 4
    rows = {
        # gather E x d, scatter-add into N x d; + index/weight reads
        'conv propagate (edge_index)': (
            lambda: conv.propagate(ei, x=z, edge_weight=w),
            E * d * 4 + E * 20 + 2 * nd),
        'conv spmm (CSR)': (lambda: torch.sparse.mm(adj, z),
                            E * d * 4 + E * 12 + 2 * nd),
        'linear N x d x d': (lambda: z @ conv.lin.weight.t(), 2 * nd),
        'delta_update forward': (lambda: delta_update(X, k, beta, v),
                                 3 * nd),
        'delta_update backward': (
            lambda: torch.autograd.grad(out, (Xg, kg), g, retain_graph=True),
            5 * nd),
        'residual add + relu fwd': (lambda: X + torch.relu(k), 3 * nd),
    }
    res = dict(bandwidth_gb_s={k_: v_ / 1e9 for k_, v_ in bw.items()},
               threads=args.threads, nodes=N, edges=E, width=d, rows={})
    print(f"bandwidth: copy {bw['copy'] / 1e9:.1f} GB/s, add "
          f"{bw['add'] / 1e9:.1f} GB/s (threads={args.threads})")
    print('| op | measured ms | bytes (MB) | floor ms | × floor |')
    print('|---|---|---|---|---|')
    for name, (fn, nbytes) in rows.items():
        t = _median_time(fn, 5)
        fl = nbytes / BW
        res['rows'][name] = dict(ms=1e3 * t, mb=nbytes / 1e6,
                                 floor_ms=1e3 * fl)
        print(f'| {name} | {1e3 * t:.1f} | {nbytes / 1e6:.0f} | '
              f'{1e3 * fl:.1f} | {t / fl:.1f} |')
    return res


def dv_scaling(args) -> dict:
    """Cost of the shortcut op alone vs d_v at arxiv size: forward and
    backward of the update the model runs (``delta_update`` for d_v = 1,
    ``delta_update_read`` with the next read for d_v > 1), fused CPU kernels
    vs the torch-op path, against the bytes each must move."""
    from ddl_gnn.ops import cpu_kernels, delta_update, delta_update_read
    torch.set_num_threads(args.threads)
    a, b = torch.randn(2**27), torch.randn(2**27)             # 512 MiB
    BW = 3 * a.numel() * 4 / _median_time(lambda: a + b)
    del a, b
    N, d = GRAPHS['arxiv'][0], args.width
    nd = N * d * 4
    g = torch.Generator().manual_seed(0)
    out = dict(bandwidth_gb_s=BW / 1e9, nodes=N, width=d,
               threads=args.threads, rows={})
    print(f'bandwidth (a + b): {BW / 1e9:.1f} GB/s, threads={args.threads}')
    print('| d_v | path | forward ms | backward ms | total ms | '
          'must move MB | floor ms | x floor |')
    print('|---|---|---|---|---|---|---|---|')
    for dv in (1, 2, 4, 8):
        X = torch.randn(*((N, d) if dv == 1 else (N, d, dv)), generator=g)
        k = torch.randn(N, d, generator=g)
        beta = 2 * torch.rand(N, generator=g)
        v = torch.randn(*((N, ) if dv == 1 else (N, dv)), generator=g)
        w = torch.randn(d, dv, generator=g)
        leaves = [t.clone().requires_grad_() for t in (X, k, beta, v, w)]
        # forward: read X, k; write X' (+ the read, N d, for d_v > 1)
        # backward: read g, X, k (+ g_read); write dX, dk
        fwd_b = (2 * dv + 1) * nd + (nd if dv > 1 else 0)
        bwd_b = (3 * dv + 2) * nd + (nd if dv > 1 else 0)
        for path in ('kernels', 'torch ops'):
            os.environ['DDL_GNN_CPU_KERNELS'] = '1' if path == 'kernels' \
                else '0'
            if path == 'kernels' and not cpu_kernels.usable(X):
                continue

            def fwd():
                if dv == 1:
                    return (delta_update(*leaves[:4]), )
                return delta_update_read(*leaves)
            outs = fwd()
            cots = [torch.randn_like(o) for o in outs]
            tf = _median_time(fwd, 5)
            tb = _median_time(lambda: torch.autograd.grad(
                outs, leaves[:4] + ([leaves[4]] if dv > 1 else []), cots,
                retain_graph=True), 5)
            fl = (fwd_b + bwd_b) / BW
            row = dict(forward_ms=1e3 * tf, backward_ms=1e3 * tb,
                       mb=(fwd_b + bwd_b) / 1e6, floor_ms=1e3 * fl)
            out['rows'][f'{dv}/{path}'] = row
            print(f'| {dv} | {path} | {1e3 * tf:.1f} | {1e3 * tb:.1f} | '
                  f'{1e3 * (tf + tb):.1f} | {row["mb"]:.0f} | '
                  f'{1e3 * fl:.1f} | {(tf + tb) / fl:.2f} |', flush=True)
            del outs, cots
    os.environ.pop('DDL_GNN_CPU_KERNELS', None)
    return out


def compile_vs_eager(args) -> dict:
    """Step time of torch.compile vs eager on the first of ``--graphs``
    (default cora-size) on ``--device``, the two alternated in one process
    (medians), plus the first-call compile time."""
    torch.set_num_threads(args.threads)
    gname = args.graphs[0]
    x, graph, y, _ = make_graph(gname, args.device, args.adj)
    sync = (torch.cuda.synchronize if args.device != 'cpu'
            else (lambda: None))
    out = {}
    for depth in args.depths:
        for label in args.models:
            model = build(label, depth, x.size(1), False,
                          args.width).to(args.device)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            cmodel = torch.compile(model)

            def step(m):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(m(x, graph), y).backward()
                opt.step()
                sync()
            t = time.perf_counter()
            step(cmodel)
            first = time.perf_counter() - t
            step(model)
            te, tc = [], []
            for _ in range(args.steps):
                te.append(_median_time(lambda: step(model), 1))
                tc.append(_median_time(lambda: step(cmodel), 1))
            r = dict(first_call_s=first, eager_s=statistics.median(te),
                     compiled_s=statistics.median(tc))
            out[f'{gname}/{depth}/{label}'] = r
            print(f"{gname} depth {depth} {label}: eager {r['eager_s']:.4f}s "
                  f"compiled {r['compiled_s']:.4f}s (x"
                  f"{r['eager_s'] / r['compiled_s']:.2f}), first call "
                  f'{first:.1f}s', flush=True)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--graphs', nargs='+', default=['cora', 'arxiv'])
    p.add_argument('--depths', nargs='+', type=int, default=[16, 64, 256])
    p.add_argument('--models', nargs='+', default=list(MODELS))
    p.add_argument('--rounds', type=int, default=3,
                   help='subprocess rounds per cell on cora')
    p.add_argument('--big-rounds', type=int, default=1,
                   help='subprocess rounds per cell on arxiv')
    p.add_argument('--steps', type=int, default=6,
                   help='steps per cora cell (the first is warm-up)')
    p.add_argument('--big-steps', type=int, default=1,
                   help='steps per arxiv cell (1: the single step is timed)')
    p.add_argument('--ckpt-from', type=int, default=256,
                   help='arxiv depths >= this run with checkpoint=True')
    p.add_argument('--width', type=int, default=128)
    p.add_argument('--threads', type=int, default=1,
                   help='torch threads per cell (1: see perf.md, the shared '
                        'host makes 2-thread OpenMP collapse)')
    p.add_argument('--adj', default='edge_index',
                   choices=['edge_index', 'csr'])
    p.add_argument('--device', default='cpu')
    p.add_argument('--flush-denormal', action='store_true')
    p.add_argument('--out', default='benchmarks/results/perf.json')
    p.add_argument('--report', action='store_true',
                   help='only print the table from --out')
    p.add_argument('--floor', action='store_true',
                   help='bandwidth floor analysis at arxiv size')
    p.add_argument('--compile', action='store_true',
                   help='torch.compile vs eager on the cora-size graph')
    p.add_argument('--dv-scaling', action='store_true',
                   help='shortcut op cost vs d_v (kernels vs torch ops)')
    p.add_argument('--save', help='JSON path for --floor / --compile / '
                   '--dv-scaling')
    # worker-only
    p.add_argument('--worker', action='store_true')
    p.add_argument('--graph')
    p.add_argument('--depth', type=int)
    p.add_argument('--model')
    p.add_argument('--checkpoint', action='store_true')
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
    elif args.report:
        print(report(json.load(open(args.out))))
    elif args.floor or args.compile or args.dv_scaling:
        res = (floor(args) if args.floor else dv_scaling(args)
               if args.dv_scaling else compile_vs_eager(args))
        if args.save:
            save_atomic(args.save, dict(result=res, machine=machine()))
    else:
        run_table(args)


if __name__ == '__main__':
    main()
