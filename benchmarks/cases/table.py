r"""Training step time and peak memory of the model families, side by side.

One *cell* = (graph, depth, model). Every cell runs in a fresh subprocess
(``--worker``) that builds the graph and the model, records its RSS, runs
``steps`` training steps (forward + cross-entropy + backward + Adam step)
and reports the step times and the peak memory (``common.peak_rss_mb``
minus the RSS before the first step; on a GPU ``max_memory_allocated``).
Cells of one (graph, depth) group run back to back, round after round, so
the ratios to ``res`` compare models under the same machine load. Each
finished cell is written to the JSON atomically; a rerun skips finished
cells (resumable). ``--report`` prints the table of a JSON.

    python benchmarks/run.py table --graphs cora arxiv --depths 16 64 256 \
        --out benchmarks/results/perf.json
    python benchmarks/run.py table --report --out benchmarks/results/perf.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Dict

import torch
from common import (machine, named_graph, peak_rss_mb, rss_mb, save_json,
                    train_step)

RUNNER = str(Path(__file__).resolve().parents[1] / 'run.py')

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
    # the anchored-message configuration (fused path: nn/message_path.py)
    'delta_msg': ('delta', dict(v_source='message', k_source='anchor',
                                beta_source='anchor', norm=None,
                                beta_init=0.1, heads=8)),
}


def build(label: str, depth: int, in_ch: int, ckpt: bool, width: int = 128):
    from ddl_gnn.models import build_model
    name, kw = MODELS[label]
    torch.manual_seed(0)
    return build_model(name, in_ch, width, depth, 40, checkpoint=ckpt, **kw)


def worker(args) -> None:
    """Runs one cell and prints one JSON line."""
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(args.flush_denormal)
    x, graph, y, E = named_graph(args.graph, args.device, args.adj)
    model = build(args.model, args.depth, x.size(1), args.checkpoint,
                  args.width).to(args.device)
    from ddl_gnn.experiment import adam
    opt = adam(model.parameters(), 1e-3)
    base = rss_mb()
    if args.device != 'cpu':
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2**20
    times = [train_step(model, opt, x, graph, y)[0]
             for _ in range(args.steps)]
    if args.device != 'cpu':
        peak = torch.cuda.max_memory_allocated() / 2**20 - base
    else:
        peak = peak_rss_mb() - base
    print(json.dumps(dict(times=times, peak_mb=peak, base_mb=base, edges=E)))


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
        cmd = [sys.executable, RUNNER, 'table', '--worker', '--graph', gname,
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
        save_json(args.out, data)
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


def add_arguments(p: argparse.ArgumentParser) -> None:
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
                   help='torch threads per cell (one thread: a shared host '
                        'makes multi-thread OpenMP timings collapse)')
    p.add_argument('--adj', default='edge_index',
                   choices=['edge_index', 'csr'])
    p.add_argument('--device', default='cpu')
    p.add_argument('--flush-denormal', action='store_true')
    p.add_argument('--out', default='benchmarks/results/perf.json')
    p.add_argument('--report', action='store_true',
                   help='only print the table from --out')
    # worker-only
    p.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--graph', help=argparse.SUPPRESS)
    p.add_argument('--depth', type=int, help=argparse.SUPPRESS)
    p.add_argument('--model', help=argparse.SUPPRESS)
    p.add_argument('--checkpoint', action='store_true',
                   help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> None:
    if args.worker:
        worker(args)
    elif args.report:
        print(report(json.load(open(args.out))))
    else:
        run_table(args)
