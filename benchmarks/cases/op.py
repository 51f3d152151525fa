r"""The delta op alone: cost vs d_v, memory-traffic floor, compile vs eager.

``--dv-scaling``: forward and backward of the update the model runs
(``delta_update`` for d_v = 1, ``delta_update_read`` with the next read for
d_v > 1) at arxiv size, fused CPU kernels vs torch ops, against the bytes
each must move. ``--floor``: memory bandwidth and the bytes a layer's ops
must move vs their measured time. ``--compile``: ``torch.compile`` vs eager
step time of the models of ``--models``.

    python benchmarks/run.py op --dv-scaling --save benchmarks/results/perf_dv_scaling.json
    python benchmarks/run.py op --floor --save benchmarks/results/perf_floor.json
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from cases.table import MODELS, build
from common import GRAPHS, machine, median_time, named_graph, save_json, \
    train_step

from ddl_gnn.experiment import adam


def floor(args) -> dict:
    """Memory bandwidth and the bytes a layer must move, vs measured."""
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    from ddl_gnn.ops import delta_update
    torch.set_num_threads(args.threads)
    a = torch.randn(2**27)                                     # 512 MiB
    b = torch.randn(2**27)
    nb = a.numel() * 4
    bw = {'copy': 2 * nb / median_time(lambda: a.clone()),
          'add': 3 * nb / median_time(lambda: a + b)}
    del a, b
    BW = max(bw.values())
    _, ei, _, E = named_graph('arxiv')
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
        t = median_time(fn, 5)
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
    BW = 3 * a.numel() * 4 / median_time(lambda: a + b)
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
            tf = median_time(fwd, 5)
            tb = median_time(lambda: torch.autograd.grad(
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
    x, graph, y, _ = named_graph(gname, args.device, args.adj)
    out = {}
    for depth in args.depths:
        for label in args.models:
            model = build(label, depth, x.size(1), False,
                          args.width).to(args.device)
            opt = adam(model.parameters(), 1e-3)
            cmodel = torch.compile(model)

            def step(m):
                train_step(m, opt, x, graph, y)
            t = time.perf_counter()
            step(cmodel)
            first = time.perf_counter() - t
            step(model)
            te, tc = [], []
            for _ in range(args.steps):
                te.append(median_time(lambda: step(model), 1))
                tc.append(median_time(lambda: step(cmodel), 1))
            r = dict(first_call_s=first, eager_s=statistics.median(te),
                     compiled_s=statistics.median(tc))
            out[f'{gname}/{depth}/{label}'] = r
            print(f"{gname} depth {depth} {label}: eager {r['eager_s']:.4f}s "
                  f"compiled {r['compiled_s']:.4f}s (x"
                  f"{r['eager_s'] / r['compiled_s']:.2f}), first call "
                  f'{first:.1f}s', flush=True)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument('--dv-scaling', action='store_true',
                      help='shortcut op cost vs d_v (kernels vs torch ops)')
    mode.add_argument('--floor', action='store_true',
                      help='bandwidth floor analysis at arxiv size')
    mode.add_argument('--compile', action='store_true',
                      help='torch.compile vs eager')
    p.add_argument('--graphs', nargs='+', default=['cora'],
                   help='--compile: the first is used')
    p.add_argument('--depths', nargs='+', type=int, default=[16])
    p.add_argument('--models', nargs='+', default=['res', 'delta'],
                   choices=list(MODELS))
    p.add_argument('--steps', type=int, default=5)
    p.add_argument('--width', type=int, default=128)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--adj', default='edge_index',
                   choices=['edge_index', 'csr'])
    p.add_argument('--device', default='cpu')
    p.add_argument('--save', help='JSON path for the result')


def run(args: argparse.Namespace) -> None:
    res = (floor(args) if args.floor else dv_scaling(args)
           if args.dv_scaling else compile_vs_eager(args))
    if args.save:
        save_json(args.save, dict(result=res, machine=machine()))
