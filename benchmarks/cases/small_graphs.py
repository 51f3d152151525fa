r"""Step time of delta vs res on small graphs on the CPU, side by side.

All models live in one process and take their training steps in turn
(res, delta, delta-paper, res, ...), so machine load hits them alike; the
ratios are medians over steps after warm-up. ``delta`` is the default
``build_model('delta', ...)`` (anchored messages, 8 heads: the fused path
of ``ddl_gnn/nn/message_path.py``), ``delta-paper`` the paper layer
(``build_model('delta-paper', ...)``: the GCN fast path of
``ddl_gnn/nn/context.py``), ``gcnii`` GCNII at its selected α, θ,
``delta-cora`` the layer ``ddl-gnn train`` runs on Cora and CiteSeer (in
GCNII's order: one head per channel along its axis, ``map_anchor``; the
fused path of ``ddl_gnn/nn/axes_path.py``),
``delta-64-heads`` the 64-head message layer it replaced there (one head
per channel along its anchored message, ``theta=0.5``),
``delta-64-heads-block-gate`` that layer with ``block_gate=True`` and
``delta-64-heads-fixed-gate`` with its gate fixed at 0.25. Prints one
JSON line per graph.

    python benchmarks/run.py small-graphs --steps 9
    python benchmarks/run.py small-graphs --steps 9 --dropout 0.5

With ``--dropout`` every model trains with that dropout, as ``ddl-gnn
train`` runs them (the default delta layer and the Cora layer then drop
each layer's read of the state; the 64-head message layer drops its
start state instead), its masks
hashed (:mod:`ddl_gnn.ops.dropout`); ``--torch-dropout`` also steps every
model with torch's ``bernoulli_`` masks beside them (label suffix
``' torch-dropout'``).

    python benchmarks/run.py small-graphs --steps 9 --dropout 0.5 \
        --torch-dropout

Besides the ratio of medians (``ratio_to_res``) it prints the quartiles
of the per-round ratios (``round_ratio_quartiles``: each model's step
over res's step of the same round), which show how far the machine's
own drift moved the ratios within the run.

``--python-function`` also steps ``delta`` and ``delta-cora`` with their
updates through the Python autograd functions over the same kernels
(label suffix ``' python-function'``) beside the C++ ones they run by
default (``ddl_gnn/ops/csrc/message_function.cpp``,
``axes_function.cpp``).

    python benchmarks/run.py small-graphs --graphs cora \
        --models res delta --python-function

``--unlinked-x0`` also steps ``delta`` with every layer reading the input
state ``x0`` itself (label suffix ``' unlinked-x0'``), autograd summing
its gradient layer by layer, beside its linked layers
(:data:`ddl_gnn.models.delta_gnn.LINK_X0`).

    python benchmarks/run.py small-graphs --graphs cora \
        --models res delta --unlinked-x0
"""
from __future__ import annotations

import argparse
import json
import statistics

import torch
from common import CLASSES, graph_input, random_graph, train_step

import ddl_gnn.models.delta_gnn as delta_gnn
import ddl_gnn.nn.axes_path as axes_path
import ddl_gnn.nn.message_path as message_path
from ddl_gnn.experiment import adam
from ddl_gnn.experiment.recommended import recommended_settings
from ddl_gnn.models import build_model
from ddl_gnn.ops.dropout import set_hash_dropout

#: label -> (nodes, undirected pairs sampled, depth)
SIZES = {'cora': (2708, 5278, 64), '10k': (10_000, 50_000, 32)}
#: the delta layer ddl-gnn train runs on Cora (its dropout options act
#: with --dropout)
CORA_DELTA = recommended_settings('cora', 'delta')['model_kwargs']
#: the 64-head message layer CORA_DELTA replaced (dropout on the start
#: state instead of inside the layers)
MESSAGE_64 = dict(theta=0.5, layer_dropout=0.0, state_dropout=True,
                  eps=0.01, heads=64, beta_sum=3.2)
MODELS = {'res': ('res', {}), 'delta': ('delta', {}),
          'delta-paper': ('delta-paper', {}),
          'gcnii': ('gcnii', recommended_settings('cora', 'gcnii')[
              'model_kwargs']),
          'delta-cora': ('delta', CORA_DELTA),
          'delta-64-heads': ('delta', MESSAGE_64),
          # the same with each channel's gate reading only its own channel
          'delta-64-heads-block-gate': ('delta', dict(MESSAGE_64,
                                                      block_gate=True)),
          # the same with its gate fixed at the value the learned one
          # settles at on Cora (no gate products)
          'delta-64-heads-fixed-gate': ('delta', dict(
              MESSAGE_64, beta_mode='fixed', beta_init=0.25))}


#: the models whose update runs as a C++ autograd function
CPP_FUNCTION_MODELS = ('delta', 'delta-cora')


def _cpp_functions(on: bool) -> None:
    """The C++ autograd functions (``True``) or the Python ones over the
    same kernels."""
    message_path.CPP_FUNCTION = axes_path.CPP_FUNCTION = on


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--graphs', nargs='+', default=list(SIZES),
                   choices=list(SIZES))
    p.add_argument('--width', type=int, default=64)
    p.add_argument('--steps', type=int, default=9,
                   help='timed steps per model (after 2 warm-up steps)')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--adj', default='edge_index',
                   choices=['edge_index', 'csr'])
    p.add_argument('--models', nargs='+', default=list(MODELS),
                   choices=list(MODELS))
    p.add_argument('--dropout', type=float, default=0.0,
                   help='dropout of every model (default: none)')
    p.add_argument('--per-tensor-adam', action='store_true',
                   help="also step each model with torch's per-tensor Adam "
                        "loop (its CPU default; label suffix ' loop') "
                        "beside the multi-tensor one training runs use")
    p.add_argument('--torch-dropout', action='store_true',
                   help="also step each model with torch's dropout masks "
                        "(label suffix ' torch-dropout') beside the hashed "
                        "ones training runs use")
    p.add_argument('--python-function', action='store_true',
                   help="also step delta and delta-cora with their updates "
                        "through the Python autograd functions (label "
                        "suffix ' python-function') beside the C++ ones")
    p.add_argument('--unlinked-x0', action='store_true',
                   help="also step delta with every layer reading x0 itself "
                        "(label suffix ' unlinked-x0') beside its linked "
                        "layers")


def run(args: argparse.Namespace) -> None:
    if 'res' not in args.models:
        raise SystemExit('small-graphs: --models must include res (the '
                         'ratios are to it)')
    torch.set_num_threads(args.threads)
    for name in args.graphs:
        nodes, pairs, depth = SIZES[name]
        x, ei, y = random_graph(nodes, pairs, args.width)
        graph = graph_input(ei, nodes, args.adj)
        models, opts, hashed, res_of = {}, {}, {}, {}
        python_fn, unlinked = set(), set()

        def add(key, family, kw, loop=False, hash_masks=True, res='res'):
            hashed[key], res_of[key] = hash_masks, res
            torch.manual_seed(0)
            models[key] = build_model(family, args.width, args.width, depth,
                                      CLASSES, dropout=args.dropout, **kw)
            params = models[key].parameters()
            opts[key] = (torch.optim.Adam(params, lr=1e-3, foreach=False)
                         if loop else adam(params, 1e-3))

        variants = [('', False, True)]
        if args.per_tensor_adam:
            variants.append((' loop', True, True))
        if args.torch_dropout:
            variants.append((' torch-dropout', False, False))
        for label in args.models:
            family, kw = MODELS[label]
            for suffix, loop, hash_masks in variants:
                add(label + suffix, family, kw, loop, hash_masks,
                    'res' + suffix)
            if label in CPP_FUNCTION_MODELS and args.python_function:
                python_fn.add(label + ' python-function')
                add(label + ' python-function', family, kw)
            if label == 'delta' and args.unlinked_x0:
                unlinked.add(label + ' unlinked-x0')
                add(label + ' unlinked-x0', family, kw)
        times = {label: [] for label in models}
        for step in range(args.steps + 2):
            for label, model in models.items():
                set_hash_dropout(hashed[label])
                _cpp_functions(label not in python_fn)
                delta_gnn.LINK_X0 = label not in unlinked
                seconds, _ = train_step(model, opts[label], x, graph, y)
                delta_gnn.LINK_X0 = True
                _cpp_functions(True)
                set_hash_dropout(None)
                if step >= 2:
                    times[label].append(seconds)
        med = {label: statistics.median(t) for label, t in times.items()}
        # each model's step over its res's step of the same round: their
        # spread shows how far the machine moved the ratios in this run
        rounds = {k: [a / b for a, b in zip(t, times[res_of[k]])]
                  for k, t in times.items() if k != res_of[k]}
        print(json.dumps(dict(
            graph=name, nodes=nodes, edges=ei.size(1), depth=depth,
            width=args.width, adj=args.adj, steps=args.steps,
            dropout=args.dropout,
            median_ms={k: round(v * 1e3, 1) for k, v in med.items()},
            # each model against res stepped by the same optimizer and
            # dropout masks
            ratio_to_res={k: round(v / med[res_of[k]], 3)
                          for k, v in med.items()},
            # quartiles of the per-round ratios (median in the middle)
            round_ratio_quartiles={
                k: [round(q, 3) for q in _quartiles(r)]
                for k, r in rounds.items()})))


def _quartiles(values: list) -> list:
    """The three quartiles of ``values`` (one value: it, thrice)."""
    if len(values) < 2:
        return list(values) * 3
    return statistics.quantiles(values, n=4)
