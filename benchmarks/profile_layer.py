r"""Where a training step's time goes: ``torch.profiler`` tables of res and
delta stacks (d_v = 1, 2, 4) side by side, on the CPU or a GPU.

The perf table (``perf.py``) says *how much* the shortcut costs; this says
*which kernels* cost it (a d_v > 1 state spends its time in batched
``[N, d, d_v]`` products and broadcasts; a GPU step in many small
elementwise kernels). Step times are the minimum of ``--steps`` steps after
a warm-up, measured in one process, so the ratios are side by side.

    PYTHONPATH=. python benchmarks/profile_layer.py --nodes 40000 --depth 4
    PYTHONPATH=. python benchmarks/profile_layer.py --device cuda \
        --nodes 169343 --depth 8 --out prof.md
"""
from __future__ import annotations

import argparse
import time
import warnings

import torch
import torch.nn.functional as F

VARIANTS = {'res': ('res', {}), 'delta': ('delta', {}),
            'delta_dv2': ('delta', dict(d_v=2)),
            'delta_dv4': ('delta', dict(d_v=4))}


def graph(nodes: int, degree: float, width: int, device: str):
    from torch_geometric.utils import to_torch_csr_tensor, to_undirected
    g = torch.Generator().manual_seed(0)
    ei = torch.randint(0, nodes, (2, int(nodes * degree / 2)), generator=g)
    ei = to_undirected(ei, num_nodes=nodes)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        adj = to_torch_csr_tensor(ei, size=(nodes, nodes))
    x = torch.randn(nodes, width, generator=g)
    y = torch.randint(0, 40, (nodes, ), generator=g)
    return x.to(device), adj.to(device), y.to(device)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
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
    args = p.parse_args(argv)
    from torch.profiler import ProfilerActivity, profile

    from ddl_gnn.models import build_model
    torch.set_num_threads(args.threads)
    cuda = args.device != 'cpu'
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    x, adj, y = graph(args.nodes, args.degree, args.width, args.device)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sort = 'self_cuda_time_total' if cuda else 'self_cpu_time_total'
    lines, times = [], {}
    for label in args.variants:
        name, kw = VARIANTS[label]
        torch.manual_seed(0)
        model = build_model(name, args.width, args.width, args.depth, 40,
                            **kw).to(args.device)
        opt = torch.optim.Adam(model.parameters())

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x, adj), y).backward()
            opt.step()
            sync()
        step()
        ts = []
        for _ in range(args.steps):
            t = time.perf_counter()
            step()
            ts.append(time.perf_counter() - t)
        times[label] = min(ts)
        with profile(activities=acts) as prof:
            step()
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


if __name__ == '__main__':
    main()
