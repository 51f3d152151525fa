r"""Graph mini-batches: PyG's DataLoader versus GatherGraphLoader, per epoch.

:class:`ddl_gnn.experiment.graph_loader.GatherGraphLoader` and PyG's
``DataLoader`` side by side.

For each dataset the model of a sweep config (``make_model``: AtomEncoder,
mean readout) trains ``--epochs`` passes over the training split with each
loader, alternating (one warm-up pass each first; the first CPU pass also
builds the fused kernels); the median seconds per pass of (a) making the
batches alone and (b) a full training pass (batches, forward, backward,
Adam step), and their ratios, go to ``--out`` (JSON, written atomically).
The two loaders are checked to give the same first batch.

    python benchmarks/run.py graph-loader --datasets ogbg-molbbbp \
        peptides-func --model delta --depth 4 \
        --out benchmarks/results/perf_graph_loader.json
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import save_json

# The study configs' batch sizes (study/configs/*.toml).
CONFIG_BATCH = {'peptides-func': 128}


def _pass(loader, step=None) -> float:
    start = time.perf_counter()
    for batch in loader:
        if step is not None:
            step(batch)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(name: str, model_name: str, depth: int, hidden: int,
            batch_size: int, epochs: int, device: str) -> dict:
    from torch_geometric.loader import DataLoader

    from ddl_gnn.data import load_dataset
    from ddl_gnn.experiment.config import RunConfig
    from ddl_gnn.experiment.graph_loader import GatherGraphLoader
    from ddl_gnn.experiment.runner import make_model, make_optimizer
    from ddl_gnn.experiment.tasks import loss_fn
    from ddl_gnn.experiment.train import graph_forward

    ds = load_dataset(name)
    train = ds.subset('train')
    cfg = RunConfig(dataset=name, model=model_name, depth=depth,
                    hidden=hidden, batch_size=batch_size, dropout=0.0,
                    lr=1e-3, weight_decay=0.0)
    torch.manual_seed(0)
    model = make_model(cfg, ds).to(device)
    opt = make_optimizer(cfg, model)
    dev = torch.device(device)
    start = time.perf_counter()
    gather = GatherGraphLoader(train, batch_size, shuffle=True,
                               generator=torch.Generator().manual_seed(0),
                               device=dev)
    collate_once_s = time.perf_counter() - start
    pyg = DataLoader(train, batch_size, shuffle=True,
                     generator=torch.Generator().manual_seed(0))
    a, b = next(iter(pyg)).to(dev), next(iter(gather))
    same = all(torch.equal(a[k], b[k]) for k in ('x', 'edge_index', 'y',
                                                 'batch'))

    def step(batch):
        batch = batch.to(dev)        # a no-op for the gathered batches
        opt.zero_grad()
        loss_fn(ds, graph_forward(model, batch), batch.y).backward()
        opt.step()

    loaders = {'dataloader': pyg, 'gather': gather}
    times = {(k, w): [] for k in loaders for w in ('batches', 'train')}
    model.train()
    for loader in loaders.values():   # warm-up
        _pass(loader, step)
    for _ in range(epochs):
        for k, loader in loaders.items():
            times[(k, 'batches')].append(_pass(
                loader, (lambda b: b.to(dev)) if k == 'dataloader' else None))
            times[(k, 'train')].append(_pass(loader, step))
    med = {f'{k}_{w}_s': statistics.median(v) for (k, w), v in times.items()}
    return dict(dataset=name, model=model_name, depth=depth, hidden=hidden,
                batch_size=batch_size, device=device, epochs=epochs,
                train_graphs=len(train), batches=len(gather),
                same_first_batch=same, collate_once_s=collate_once_s, **med,
                batches_speedup=med['dataloader_batches_s']
                / med['gather_batches_s'],
                train_speedup=med['dataloader_train_s']
                / med['gather_train_s'],
                threads=torch.get_num_threads())


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--datasets', nargs='+',
                   default=['ogbg-molbbbp', 'peptides-func'])
    p.add_argument('--model', default='delta')
    p.add_argument('--depth', type=int, default=4)
    p.add_argument('--hidden', type=int, default=128)
    p.add_argument('--batch-size', type=int, default=None,
                   help="default: the study config's (64; Peptides-func 128)")
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--device', default='cpu')
    p.add_argument('--out', default=None)


def run(args: argparse.Namespace) -> None:
    rows = []
    for name in args.datasets:
        batch_size = args.batch_size or CONFIG_BATCH.get(name, 64)
        row = measure(name, args.model, args.depth, args.hidden,
                      batch_size, args.epochs, args.device)
        rows.append(row)
        print(f"{name}: batches {row['dataloader_batches_s']:.3f} -> "
              f"{row['gather_batches_s']:.3f} s/epoch "
              f"({row['batches_speedup']:.1f}x); train "
              f"{row['dataloader_train_s']:.2f} -> {row['gather_train_s']:.2f}"
              f" s/epoch ({row['train_speedup']:.2f}x); same first batch: "
              f"{row['same_first_batch']}", flush=True)
    if args.out:
        save_json(args.out, rows)
