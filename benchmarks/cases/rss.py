r"""Live memory vs resident memory of a deep checkpointed step.

One training step of a deep delta stack (default: 1000 layers, 5,000
nodes, ~50k directed edges, width 64, ``checkpoint=True``, ``edge_index``)
in a fresh process: the RSS growth (peak ``VmHWM`` minus ``VmRSS`` before
the steps) and the live peak (tensor bytes alive at once, from
``torch.profiler`` on a further step, plus the optimizer state the first
step allocated), with glibc's default thresholds
(``DDL_GNN_MALLOC=0``) or with :func:`ddl_gnn.limit_heap_growth`
(the default, as ``ddl-gnn train`` applies it). ``--alternate`` instead
times steps with the setting on and off in turn in one process, on the
deep stack and on a Cora-size depth-64 delta model; this understates the
setting's cost (blocks freed to the heap in the default steps serve the
limited ones), so compare the step times of two fresh processes too.
Prints JSON lines.

    python benchmarks/run.py rss
    DDL_GNN_MALLOC=0 python benchmarks/run.py rss
    python benchmarks/run.py rss --alternate --steps 3
"""
from __future__ import annotations

import argparse
import json
import statistics

import torch
from common import (CLASSES, GRAPHS, graph_input, live_peak_mb, random_graph,
                    train_step, vm_mb)

from ddl_gnn import limit_heap_growth, restore_heap_growth
from ddl_gnn.experiment import adam
from ddl_gnn.models import build_model


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--nodes', type=int, default=5000)
    p.add_argument('--edges', type=int, default=25_000,
                   help='undirected pairs sampled (directed edges ~2x)')
    p.add_argument('--layers', type=int, default=1000)
    p.add_argument('--width', type=int, default=64)
    p.add_argument('--steps', type=int, default=2,
                   help='steps for the RSS growth; with --alternate, timed '
                        'steps per setting (after one warm-up each)')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--adj', default='edge_index',
                   choices=['edge_index', 'csr'])
    p.add_argument('--alternate', action='store_true',
                   help='time steps with the setting on and off in turn')


def _setup(nodes, pairs, width, layers, adj, checkpoint):
    x, ei, y = random_graph(nodes, pairs, width)
    torch.manual_seed(0)
    model = build_model('delta', width, width, layers, CLASSES,
                        checkpoint=checkpoint)
    opt = adam(model.parameters(), 1e-3)
    return model, opt, x, graph_input(ei, nodes, adj), y, ei.size(1)


def _growth(args) -> None:
    applied = limit_heap_growth()
    model, opt, x, graph, y, edges = _setup(args.nodes, args.edges,
                                            args.width, args.layers,
                                            args.adj, True)
    base = vm_mb()['VmRSS']
    times = [train_step(model, opt, x, graph, y)[0]
             for _ in range(args.steps)]
    growth = vm_mb()['VmHWM'] - base
    # The optimizer's state was allocated in the steps above and is not
    # seen by the profiled step, which starts with it in place.
    state = sum(t.numel() * t.element_size() for st in opt.state.values()
                for t in st.values() if torch.is_tensor(t)) / 2**20
    live = live_peak_mb(lambda: train_step(model, opt, x, graph, y)) + state
    print(json.dumps(dict(
        nodes=args.nodes, edges=edges, layers=args.layers, width=args.width,
        adj=args.adj, limit_heap_growth=applied,
        times=[round(t, 2) for t in times], base_mb=round(base),
        rss_growth_mb=round(growth), live_peak_mb=round(live),
        optimizer_state_mb=round(state),
        rss_over_live=round(growth / live, 2))))


def _alternate(args) -> None:
    nodes, pairs, _ = GRAPHS['cora']
    cases = {'cora-64': _setup(nodes, pairs, args.width, 64, args.adj,
                               False)[:5],
             'deep': _setup(args.nodes, args.edges, args.width, args.layers,
                            args.adj, True)[:5]}
    for name, run in cases.items():
        times = {'limit': [], 'default': []}
        for step in range(args.steps + 1):
            for setting in times:
                if setting == 'limit':
                    limit_heap_growth()
                else:
                    restore_heap_growth()
                seconds, _ = train_step(*run)
                if step:
                    times[setting].append(seconds)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(json.dumps(dict(
            case=name, steps=args.steps,
            median_ms={k: round(v * 1e3, 1) for k, v in med.items()},
            limit_over_default=round(med['limit'] / med['default'], 3))))


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    (_alternate if args.alternate else _growth)(args)
