r"""Training-step time on edge_index versus the sparse adj_t, real graphs.

``--adj csr`` trains on the transposed sparse adjacency.

For each (dataset, model) the same model runs ``--steps`` forward + backward
passes on each graph input, alternating, after one warm-up each; the median
times and their ratio go to ``--out`` (JSON, written atomically). The
outputs of the two inputs are compared too (the same operator).

    python benchmarks/run.py adj --datasets actor squirrel minesweeper \
        --depth 32 --out benchmarks/results/perf_adj.json
"""
from __future__ import annotations

import argparse
import statistics

import torch
from common import save_json, train_step

from ddl_gnn.data import load_dataset
from ddl_gnn.models import build_model
from ddl_gnn.nn.adjacency import to_adj_t


def measure(name: str, model_name: str, depth: int, steps: int) -> dict:
    data = load_dataset(name).data
    inputs = {'edge_index': data.edge_index,
              'csr': to_adj_t(data.edge_index, None, data.num_nodes)}
    torch.manual_seed(0)
    model = build_model(model_name, data.num_features, 64, depth,
                        int(data.y.max()) + 1)
    model.eval()      # no dropout: both inputs see the same function
    with torch.no_grad():
        diff = (model(data.x, inputs['csr'])
                - model(data.x, inputs['edge_index'])).abs().max().item()
    model.train()
    times = {k: [] for k in inputs}
    for k, g in inputs.items():      # warm-up
        train_step(model, None, data.x, g, data.y)
    for _ in range(steps):
        for k, g in inputs.items():
            times[k].append(train_step(model, None, data.x, g, data.y)[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    return dict(dataset=name, model=model_name, depth=depth,
                edges=data.edge_index.size(1), steps=steps,
                edge_index_s=med['edge_index'], csr_s=med['csr'],
                speedup=med['edge_index'] / med['csr'],
                max_abs_output_diff=diff)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--datasets', nargs='+', required=True)
    p.add_argument('--models', nargs='+', default=['res+', 'gcnii', 'delta'])
    p.add_argument('--depth', type=int, default=32)
    p.add_argument('--steps', type=int, default=3)
    p.add_argument('--out', required=True)


def run(args: argparse.Namespace) -> None:
    torch.set_flush_denormal(True)
    rows = []
    for name in args.datasets:
        for model in args.models:
            row = measure(name, model, args.depth, args.steps)
            rows.append(row)
            print(f"{name:12s} {model:6s} L={args.depth}: edge_index "
                  f"{row['edge_index_s']:.3f} s, csr {row['csr_s']:.3f} s, "
                  f"x{row['speedup']:.2f} (max |diff| "
                  f"{row['max_abs_output_diff']:.1e})", flush=True)
    save_json(args.out, dict(threads=torch.get_num_threads(),
                             torch=torch.__version__, rows=rows))
