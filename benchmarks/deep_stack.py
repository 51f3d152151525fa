r"""One training step of a very deep delta model with checkpointing.

Builds ``DeltaGNN`` (width 64 by default) with ``checkpoint=True`` (segments
of :math:`\lceil\sqrt{L}\rceil` layers) on a random symmetric graph and runs
forward + cross-entropy + backward + Adam step, printing the step time and
the peak memory (``ru_maxrss`` minus the RSS before the step) as one JSON
line.

Example::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
    PYTHONPATH=. python benchmarks/deep_stack.py --nodes 169343 \
        --edges 1165000 --layers 1000 --width 64
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import time

import torch
import torch.nn.functional as F
from torch_geometric.utils import (remove_self_loops, to_torch_csr_tensor,
                                   to_undirected)

from ddl_gnn.models import build_model


def rss_mb() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--nodes', type=int, default=169343)
    p.add_argument('--edges', type=int, default=1_165_000,
                   help='undirected pairs sampled (directed edges ~2x)')
    p.add_argument('--layers', type=int, default=1000)
    p.add_argument('--width', type=int, default=64)
    p.add_argument('--model', default='delta')
    p.add_argument('--steps', type=int, default=1)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--no-checkpoint', action='store_true')
    p.add_argument('--adj', default='csr', choices=['edge_index', 'csr'])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    N = args.nodes
    ei = torch.randint(0, N, (2, args.edges), generator=g)
    ei = to_undirected(remove_self_loops(ei)[0], num_nodes=N)
    x = torch.randn(N, args.width, generator=g)
    y = torch.randint(0, 40, (N, ), generator=g)
    graph = ei if args.adj == 'edge_index' else to_torch_csr_tensor(
        ei, size=(N, N))
    torch.manual_seed(0)
    model = build_model(args.model, args.width, args.width, args.layers, 40,
                        checkpoint=not args.no_checkpoint)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    base = rss_mb()
    times, losses = [], []
    for _ in range(args.steps):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x, graph), y)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
        losses.append(loss.item())
    finite = all(torch.isfinite(q.grad).all().item()
                 for q in model.parameters() if q.grad is not None)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
    print(json.dumps(dict(nodes=N, edges=ei.size(1), layers=args.layers,
                          width=args.width, model=args.model,
                          checkpoint=not args.no_checkpoint, times=times,
                          loss=losses, grads_finite=finite, base_mb=base,
                          peak_mb=peak, threads=args.threads,
                          adj=args.adj)))


if __name__ == '__main__':
    main()
