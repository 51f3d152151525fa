r"""Where a graph-level training epoch goes, per part, by batch size.

For one OGB-style graph dataset (default ogbg-molhiv) and the model of a
sweep config (``make_model``: AtomEncoder, mean readout; dropout 0.2 as in
the study configs), each variant (a batch size, optionally with the model
under ``torch.compile(dynamic=True)``) takes ``--batches`` training steps
and ``--batches`` no-grad evaluation batches, and the parts of an epoch are
projected from those per-graph costs:

- ``gather_s``: cutting the training batches alone (``GatherGraphLoader``);
- ``train_s``: the training pass (batches, forward, backward, Adam step);
- ``eval_s``: the no-grad passes over valid and test (every epoch), in
  batches of the variant's size;
- ``train_score_s``: the no-grad pass over the training split (at each new
  best-validation epoch only), likewise;
- ``measure_s``: one per-layer metrics pass (``measure``: twice per run).

The variants run in the same process and alternate round by round
(``--rounds``), so machine load hits them alike; on a loaded machine their
ratios are more trustworthy than the absolute seconds. One JSON line per
variant, and ``--out`` (JSON, written atomically). ``--torch-dropout``
adds each variant with torch's ``bernoulli_`` dropout masks beside the
hashed ones training uses (:mod:`ddl_gnn.ops.dropout`;
``dropout_masks`` in the rows).

    OMP_NUM_THREADS=1 python benchmarks/run.py graph-epoch --depth 4 \
        --batch-sizes 64 256 --batches 30
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from typing import Any, Callable, Dict, List

import torch
from common import save_json

from ddl_gnn.ops.dropout import set_hash_dropout


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _variant(ds, cfg, batch_size: int, compiled: bool, seed: int
             ) -> Dict[str, Any]:
    """The model, optimizer and loaders of one variant, and its step
    functions over ``n`` batches."""
    from ddl_gnn.experiment.graph_loader import GatherGraphLoader
    from ddl_gnn.experiment.runner import make_model, make_optimizer
    from ddl_gnn.experiment.tasks import loss_fn
    from ddl_gnn.experiment.train import graph_forward

    torch.manual_seed(seed)
    model = make_model(cfg, ds)
    opt = make_optimizer(cfg, model)
    net = torch.compile(model, dynamic=True) if compiled else model
    gen = torch.Generator().manual_seed(seed)
    train = GatherGraphLoader(ds.subset('train'), batch_size, shuffle=True,
                              generator=gen)
    valid = GatherGraphLoader(ds.subset('valid'), batch_size)

    def gather(n: int) -> None:
        for _ in itertools.islice(iter(train), n):
            pass

    def step(n: int) -> None:
        net.train()
        for batch in itertools.islice(iter(train), n):
            opt.zero_grad()
            loss = loss_fn(ds, graph_forward(net, batch), batch.y)
            loss.backward()
            opt.step()
            loss.item()

    @torch.no_grad()
    def evaluate(n: int) -> None:
        net.eval()
        for batch in itertools.islice(valid.in_order(), n):
            graph_forward(net, batch)

    return dict(model=model, gather=gather, step=step, evaluate=evaluate)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--dataset', default='ogbg-molhiv')
    p.add_argument('--model', default='delta')
    p.add_argument('--depth', type=int, default=4)
    p.add_argument('--hidden', type=int, default=128)
    p.add_argument('--batch-sizes', type=int, nargs='+', default=[64, 256])
    p.add_argument('--compile', action='store_true',
                   help='also each batch size under torch.compile('
                        'dynamic=True)')
    p.add_argument('--batches', type=int, default=30,
                   help='timed batches per part, variant and round')
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--torch-dropout', action='store_true',
                   help="also each variant with torch's dropout masks")
    p.add_argument('--out', default=None)


def run(args: argparse.Namespace) -> None:
    from ddl_gnn.data import load_dataset
    from ddl_gnn.experiment.config import RunConfig
    from ddl_gnn.experiment.measure import measure

    ds = load_dataset(args.dataset)
    sizes = {part: len(ds.subset(part)) for part in ('train', 'valid',
                                                     'test')}
    names = [(b, c, h) for c in ([False, True] if args.compile else [False])
             for b in args.batch_sizes
             for h in ([True, False] if args.torch_dropout else [True])]
    variants, times = {}, {}
    for b, c, h in names:
        cfg = RunConfig(dataset=args.dataset, model=args.model,
                        depth=args.depth, hidden=args.hidden, batch_size=b,
                        dropout=0.2, lr=1e-3, weight_decay=0.0)
        v = _variant(ds, cfg, b, c, seed=0)
        set_hash_dropout(h)
        v['compile_s'] = _timed(lambda: (v['step'](2), v['evaluate'](2)))
        variants[(b, c, h)] = v
        times[(b, c, h)] = {k: [] for k in ('gather', 'step', 'evaluate')}
    for _ in range(args.rounds):
        for key, v in variants.items():
            set_hash_dropout(key[2])
            for part in ('gather', 'step', 'evaluate'):
                graphs = args.batches * key[0]
                times[key][part].append(
                    _timed(lambda: v[part](args.batches)) / graphs)
    set_hash_dropout(None)
    rows: List[Dict[str, Any]] = []
    for (b, c, h), v in variants.items():
        per = {k: statistics.median(t) for k, t in times[(b, c, h)].items()}
        measure_s = _timed(lambda: measure(v['model'], ds))
        row = dict(dataset=args.dataset, model=args.model, depth=args.depth,
                   hidden=args.hidden, batch_size=b, compiled=c,
                   dropout_masks='hash' if h else 'torch',
                   graphs=sizes, batches=args.batches, rounds=args.rounds,
                   threads=torch.get_num_threads(),
                   warmup_s=round(v['compile_s'], 2),
                   gather_s=per['gather'] * sizes['train'],
                   train_s=per['step'] * sizes['train'],
                   eval_s=per['evaluate'] * (sizes['valid'] + sizes['test']),
                   train_score_s=per['evaluate'] * sizes['train'],
                   measure_s=measure_s)
        row['epoch_s'] = row['train_s'] + row['eval_s']
        row['epoch_best_s'] = row['epoch_s'] + row['train_score_s']
        row = {k: round(x, 3) if isinstance(x, float) else x
               for k, x in row.items()}
        rows.append(row)
        print(json.dumps(row), flush=True)
    for row in rows:
        print(f"batch {row['batch_size']:5d} compiled={row['compiled']!s:5s}"
              f" masks {row['dropout_masks']:5s}"
              f" train {row['train_s']:6.1f} s, valid+test "
              f"{row['eval_s']:5.2f} s, train scoring {row['train_score_s']:5.2f}"
              f" s, epoch {row['epoch_s']:6.1f} s ({row['epoch_best_s']:6.1f} s"
              f" with train scoring)", flush=True)
    if args.out:
        save_json(args.out, rows)
