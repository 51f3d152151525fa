r"""One training step of a very deep stack with checkpointing.

Builds the model (delta, width 64 by default) with ``checkpoint=True``
(segments of :math:`\lceil\sqrt{L}\rceil` layers) on a random symmetric
graph and runs forward + cross-entropy + backward + Adam step, printing the
step times and the peak memory (peak RSS minus the RSS before the steps) as
one JSON line.

    python benchmarks/run.py deep-stack --nodes 5000 --edges 20000 \
        --layers 1000 --width 64 --adj csr --steps 3
"""
from __future__ import annotations

import argparse
import json

import torch
from common import (CLASSES, graph_input, peak_rss_mb, random_graph, rss_mb,
                    train_step)

from ddl_gnn.experiment import adam
from ddl_gnn.models import build_model


def add_arguments(p: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    x, ei, y = random_graph(args.nodes, args.edges, args.width)
    graph = graph_input(ei, args.nodes, args.adj)
    torch.manual_seed(0)
    model = build_model(args.model, args.width, args.width, args.layers,
                        CLASSES, checkpoint=not args.no_checkpoint)
    opt = adam(model.parameters(), 1e-3)
    base = rss_mb()
    times, losses = zip(*(train_step(model, opt, x, graph, y)
                          for _ in range(args.steps)))
    finite = all(torch.isfinite(q.grad).all().item()
                 for q in model.parameters() if q.grad is not None)
    print(json.dumps(dict(nodes=args.nodes, edges=ei.size(1),
                          layers=args.layers, width=args.width,
                          model=args.model,
                          checkpoint=not args.no_checkpoint,
                          times=list(times), loss=list(losses),
                          grads_finite=finite, base_mb=base,
                          peak_mb=peak_rss_mb() - base, threads=args.threads,
                          adj=args.adj)))
