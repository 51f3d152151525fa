r"""The GPU perf table: arxiv size, depths 16, 64 and 256; res, res+, GCNII,
delta and the anchored-message delta (``delta_msg``).

The ``table`` case with the GPU settings (one fresh process per cell,
``max_memory_allocated`` as the peak, 3 steps per cell, depth 256
checkpointed, CSR adjacency), then its report. Needs a CUDA device.

    python benchmarks/run.py gpu-table --out benchmarks/results/perf_gpu.json
"""
from __future__ import annotations

import argparse

from . import table

MODELS = ['res', 'res+', 'gcnii', 'delta', 'delta_msg']


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--device', default='cuda:0')
    p.add_argument('--depths', nargs='+', type=int, default=[16, 64, 256])
    p.add_argument('--models', nargs='+', default=MODELS)
    p.add_argument('--out', default='benchmarks/results/perf_gpu.json')


def run(args: argparse.Namespace) -> None:
    import torch
    if not torch.cuda.is_available():
        raise SystemExit('gpu-table: no CUDA device here')
    parser = argparse.ArgumentParser()
    table.add_arguments(parser)
    targs = parser.parse_args([
        '--device', args.device, '--graphs', 'arxiv', '--depths',
        *map(str, args.depths), '--models', *args.models, '--ckpt-from',
        '256', '--adj', 'csr', '--big-steps', '3', '--big-rounds', '1',
        '--out', args.out])
    table.run(targs)
    table.run(parser.parse_args(['--report', '--out', args.out]))
