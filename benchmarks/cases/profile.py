r"""Where a training step's time goes: torch.profiler tables per variant.

``torch.profiler`` tables of res and delta stacks (d_v = 1, 2, 4) side by
side, on the CPU or a GPU. The ``table`` case says *how much* the shortcut costs; this says
*which kernels* cost it (a d_v > 1 state spends its time in batched
``[N, d, d_v]`` products and broadcasts; a GPU step in many small
elementwise kernels). Step times are the minimum of ``--steps`` steps after
a warm-up, measured in one process, so the ratios are side by side.

    python benchmarks/run.py profile --nodes 40000 --depth 4 \
        --out benchmarks/results/profile_cpu_40k_kernels.md
    python benchmarks/run.py profile --device cuda --nodes 169343 --depth 8
"""
from __future__ import annotations

import argparse

import torch
from common import CLASSES, graph_input, random_graph, train_step

from ddl_gnn.experiment import adam
from ddl_gnn.models import build_model

VARIANTS = {'res': ('res', {}), 'delta': ('delta', {}),
            'delta_dv2': ('delta', dict(d_v=2)),
            'delta_dv4': ('delta', dict(d_v=4))}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--nodes', type=int, default=40000)
    p.add_argument('--degree', type=float, default=14.0)
    p.add_argument('--width', type=int, default=128)
    p.add_argument('--depth', type=int, default=4)
    p.add_argument('--steps', type=int, default=3)
    p.add_argument('--rows', type=int, default=15)
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--variants', nargs='+', default=list(VARIANTS))
    p.add_argument('--out', help='also write the tables to this file')


def run(args: argparse.Namespace) -> None:
    from torch.profiler import ProfilerActivity, profile
    torch.set_num_threads(args.threads)
    cuda = args.device != 'cpu'
    x, ei, y = random_graph(args.nodes, int(args.nodes * args.degree / 2),
                            args.width, self_loops=True)
    x, y = x.to(args.device), y.to(args.device)
    adj = graph_input(ei, args.nodes, 'csr').to(args.device)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sort = 'self_cuda_time_total' if cuda else 'self_cpu_time_total'
    lines, times = [], {}
    for label in args.variants:
        name, kw = VARIANTS[label]
        torch.manual_seed(0)
        model = build_model(name, args.width, args.width, args.depth,
                            CLASSES, **kw).to(args.device)
        opt = adam(model.parameters(), 1e-3)
        train_step(model, opt, x, adj, y)             # warm-up
        times[label] = min(train_step(model, opt, x, adj, y)[0]
                           for _ in range(args.steps))
        with profile(activities=acts) as prof:
            train_step(model, opt, x, adj, y)
        lines += [f'## {label} (step {times[label]:.3f} s)', '', '```',
                  prof.key_averages().table(sort_by=sort,
                                            row_limit=args.rows), '```', '']
    ref = times.get('res')
    head = [f'# Step profile: {args.nodes} nodes, degree {args.degree}, '
            f'width {args.width}, depth {args.depth}, {args.device}, '
            f'{args.threads} thread(s), torch {torch.__version__}', '',
            '| variant | step s | ÷ res |', '|---|---|---|']
    head += [f'| {k} | {v:.3f} | {v / ref:.2f} |' if ref else
             f'| {k} | {v:.3f} | - |' for k, v in times.items()]
    text = '\n'.join(head + [''] + lines)
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
