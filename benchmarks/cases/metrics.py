"""Time and extra memory of each ddl_gnn.metrics function, arxiv size.

An arxiv-size synthetic graph: 169,343 nodes, ~2.33M directed edges, 128
features.

Each metric runs in a fresh subprocess. Extra memory = peak RSS during the
metric minus RSS just before it: the peak is reset right before the call by
writing 5 to /proc/self/clear_refs (Linux), so the graph's construction
does not hide the metric's own peak. Time = median of --repeats calls, wall
clock and process CPU time (2 threads: CPU time up to 2x wall); the memory
figure is the peak over all calls. The load average is printed with the
table (a loaded host swings wall times).

    python benchmarks/run.py metrics [--threads 2] [--out benchmarks/results/metrics.md]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNNER = str(Path(__file__).resolve().parents[1] / 'run.py')

NUM_NODES, NUM_EDGES, DIM = 169_343, 1_166_243, 128
METRICS = ['dirichlet_energy', 'relative_dirichlet_energy',
           'normalized_dirichlet_energy', 'mad', 'mad_gap', 'numerical_rank',
           'effective_rank', 'representation_norm', 'dirichlet_energy_batched']


def _status_kb(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise KeyError(key)


def run_one(name, repeats, threads):
    import torch
    from common import random_graph

    import ddl_gnn.metrics as M
    torch.set_num_threads(threads)
    # symmetrised the PyG way, as T.ToUndirected does for ogbn-arxiv
    x, ei, _ = random_graph(NUM_NODES, NUM_EDGES, DIM, self_loops=True)
    batch = None
    if name.endswith('_batched'):  # 64 "graphs": a node's graph = id % 64
        batch = torch.arange(NUM_NODES) % 64
        ei = ei[:, batch[ei[0]] == batch[ei[1]]]
        name = name[:-len('_batched')]
    fn = getattr(M, name)
    if name in ('numerical_rank', 'effective_rank', 'representation_norm'):
        call = lambda: fn(x, batch=batch)  # noqa: E731
    else:
        call = lambda: fn(x, ei, batch=batch)  # noqa: E731
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset the peak RSS (VmHWM) to the current RSS
    before = _status_kb('VmRSS')
    times, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    peak = _status_kb('VmHWM')
    print(json.dumps({'metric': name + ('' if batch is None else ' (batch)'),
                      'edges': ei.size(1),
                      'time_s': statistics.median(times),
                      'cpu_s': statistics.median(cpus),
                      'extra_mib': (peak - before) / 1024}))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--out', help='also write the table to this file')
    p.add_argument('--one', default=None, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> None:
    if args.one:
        return run_one(args.one, args.repeats, args.threads)
    import torch
    lines = [f'torch {torch.__version__}, {args.threads} threads, '
             f'N={NUM_NODES}, {NUM_EDGES} random pairs symmetrised, d={DIM}',
             '', f'load average before: {os.getloadavg()}', '',
             f'| metric | directed edges | wall time (s, median of '
             f'{args.repeats}) | CPU time (s) | extra memory (MiB) | '
             f'ok (wall < 2 s, < 1 GiB) |', '|---|---|---|---|---|---|']
    print('\n'.join(lines), flush=True)
    for name in METRICS:
        out = subprocess.run(
            [sys.executable, RUNNER, 'metrics', '--one', name, '--repeats',
             str(args.repeats), '--threads', str(args.threads)],
            capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        ok = r['time_s'] < 2.0 and r['extra_mib'] < 1024
        lines.append(f"| {r['metric']} | {r['edges']} | {r['time_s']:.3f} | "
                     f"{r['cpu_s']:.3f} | {r['extra_mib']:.0f} | "
                     f"{'yes' if ok else 'NO'} |")
        print(lines[-1], flush=True)
    lines += ['', f'load average after: {os.getloadavg()}']
    print(lines[-1])
    if args.out:
        Path(args.out).write_text('# ddl_gnn.metrics: time and memory\n\n'
                                  '`python benchmarks/run.py metrics`\n\n'
                                  + '\n'.join(lines) + '\n')
