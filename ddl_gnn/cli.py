"""``ddl-gnn`` (also ``python -m ddl_gnn``): train, sweep, report, demo.

Only the standard library and :mod:`.experiment.config` load at start-up;
torch and PyG are imported by the command that runs, so ``--help`` and
usage errors answer at once.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import textwrap
from typing import Any, Dict, List, Optional

from . import __version__
from ._allocator import limit_heap_growth_for
from ._cli_checks import (existing_folder, json_object, positive_int,
                          writable_folder)
from .experiment.config import ADJS, LOADERS, RunConfig

_SKIP = {'dataset', 'model', 'depth', 'seed'}

# The names of ddl_gnn.models.MODELS and ddl_gnn.data.DATASETS, for the help
# text (importing the registries would import torch; a test keeps these in
# step). Unknown names are reported by the registries themselves.
MODEL_NAMES = ('plain', 'res', 'res+', 'gcnii', 'g2', 'delta',
               'delta-write-only', 'delta-paper', 'delta-paper-write-only')
DATASET_NAMES = (
    'csbm', 'karate', 'cora', 'citeseer', 'pubmed', 'texas', 'cornell',
    'wisconsin', 'chameleon', 'squirrel', 'chameleon-filtered',
    'squirrel-filtered', 'actor', 'minesweeper', 'tolokers', 'amazon-photo',
    'amazon-computers', 'coauthor-cs', 'peptides-func', 'ogbn-arxiv',
    'ogbn-proteins', 'ogbg-molhiv', 'ogbg-molbace', 'ogbg-molbbbp',
    'ogbg-molesol', 'ogbg-molfreesolv', 'ogbl-ddi')

#: Help of each RunConfig option (a field without one fails at start-up).
FIELD_HELP = {
    'hidden': 'state width (hidden channels)',
    'lr': 'Adam learning rate',
    'weight_decay': 'L2 weight decay (Adam)',
    'weight_decay_conv': "weight decay of the convs, apart from the linears "
                         "(GCNII); 'none': --weight-decay for all",
    'dropout': 'dropout probability',
    'epochs': 'maximum training epochs',
    'patience': "early stopping after this many epochs without a better "
                "validation score; 'none': off",
    'batch_size': 'mini-batch size: graphs (graph tasks), nodes per part '
                  '(--loader random), seed nodes (neighbor), positive '
                  'edges per step (link tasks)',
    'loader': 'training batches of node tasks: the full graph, or random '
              'node partitions / neighbour sampling / Cluster-GCN parts',
    'num_parts': 'partitions of --loader cluster',
    'adj': 'graph input of full-graph node tasks: edge_index, or csr (the '
           'transposed sparse adjacency, one SpMM per layer)',
    'split': 'index of the stored split (geom-gcn and heterophilous sets '
             'have 10)',
    'model_kwargs': 'model options as a JSON object, e.g. \'{"d_v": 2, '
                    '"beta_init": 0.1, "conv": "gcn"}\'',
    'dataset_kwargs': 'dataset options as a JSON object (csbm sizes), e.g. '
                      '\'{"num_nodes": 600, "homophily": 0.2}\'',
    'measure': 'per-layer metrics (energy, rank, beta audit) at '
               'initialisation and after training',
}
_CHOICES = {'loader': LOADERS, 'adj': ADJS}

EXAMPLES = """examples:
  ddl-gnn demo --out runs/demo
  ddl-gnn train --dataset cora --model delta --depth 16 --runs 3 --out runs/cora
  ddl-gnn train --dataset ogbg-molbace --model delta --depth 16 --runs 10 \\
      --save-model --out runs/bace
  ddl-gnn sweep --config study/configs/cora.toml --out runs/cora
  ddl-gnn sweep --dataset csbm --models res+,delta --depths 2,16 --seeds 3 \\
      --epochs 100 --out runs/x
  ddl-gnn report runs/cora
  ddl-gnn build-kernels

Records go to OUT/results.jsonl (one JSON line per run); rerunning a command
skips finished runs. Data root: --data-root, else $DDL_GNN_DATA, else
~/.cache/ddl_gnn/data (DDL_GNN_OFFLINE=1: never download)."""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter,
                 argparse.RawDescriptionHelpFormatter):
    """Defaults shown where there is one to show (not ``None``, not an
    off switch), epilogs kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help or ''
        return super()._get_help_string(action)


def _opt(kind):
    def parse(text: str):
        return None if text.lower() == 'none' else kind(text)
    return parse


def _field_default(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else \
        f.default_factory()


def _note_explicit(namespace: argparse.Namespace, dest: str) -> None:
    """Notes an option as given on the command line
    (``namespace._explicit``): recommended settings fill only the rest."""
    namespace.__dict__.setdefault('_explicit', set()).add(dest)


class _StoreExplicit(argparse._StoreAction):
    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        _note_explicit(namespace, self.dest)


class _BoolExplicit(argparse.BooleanOptionalAction):
    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        _note_explicit(namespace, self.dest)


def _add_run_options(p: argparse.ArgumentParser, defaults: bool) -> None:
    """One flag per RunConfig field; with ``defaults=False`` (sweeps) flags
    default to None so config files keep their values."""
    group = p.add_argument_group(
        'run options' if defaults else
        'run options (default: the config file, else the value shown)')
    for f in dataclasses.fields(RunConfig):
        if f.name in _SKIP:
            continue
        flag = '--' + f.name.replace('_', '-')
        value = _field_default(f)
        default = value if defaults else None
        text = FIELD_HELP[f.name]
        if not defaults:
            text += f' (run default: {value})'
        if f.type in ('bool', bool):
            group.add_argument(flag, action=_BoolExplicit,
                               default=default, help=text)
        elif f.type.startswith('Dict'):
            group.add_argument(flag, type=json_object, default=default,
                               metavar='JSON', help=text,
                               action=_StoreExplicit)
        else:
            kind = int if 'int' in f.type else float if 'float' in f.type \
                else str
            group.add_argument(flag, type=_opt(kind) if 'Optional' in f.type
                               else kind, default=default, help=text,
                               choices=_CHOICES.get(f.name),
                               action=_StoreExplicit)


def _run_fields(args: argparse.Namespace) -> Dict[str, Any]:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(
        RunConfig) if f.name not in _SKIP and hasattr(args, f.name)}


def _csv(kind):
    return lambda s: [kind(x) for x in s.split(',') if x]


def _shard(text: str):
    try:
        k, n = (int(x) for x in text.split('/'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'--shard takes K/N (e.g. 0/4), got {text!r}') from None
    if not 0 <= k < n:
        raise argparse.ArgumentTypeError(
            f'--shard K/N needs 0 <= K < N, got {text!r}')
    return k, n


def _checkpoint_every(text: str) -> Optional[float]:
    if text.strip().lower() == 'none':
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(
            f"--checkpoint-every takes seconds >= 0 or 'none', got {text!r}")
    return value


def _add_checkpoint_option(p: argparse.ArgumentParser) -> None:
    p.add_argument('--checkpoint-every', type=_checkpoint_every, default=600.0,
                   metavar='SECONDS',
                   help='save the training state of the run in flight to '
                   'OUT/checkpoints every SECONDS (0: every epoch; none: '
                   'off); a rerun resumes it there (not with train '
                   '--distributed)')


def _add_where_options(p: argparse.ArgumentParser) -> None:
    p.add_argument('--device', default='cpu',
                   help="where runs execute ('cpu', 'cuda', 'cuda:1'); not "
                   "part of the run key, stamped on the record")
    p.add_argument('--save-model', action='store_true',
                   help='keep the trained weights with their configuration '
                   'in OUT/models/<run key>.pt (ddl_gnn.load_model reads '
                   'them back)')


def _subparser(sub, name: str, description: str,
               **kwargs) -> argparse.ArgumentParser:
    # the formatter keeps text as written (for the examples): wrap here
    return sub.add_parser(name, formatter_class=_Formatter, epilog=EXAMPLES,
                          description=textwrap.fill(description, 79),
                          **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='ddl-gnn', formatter_class=_Formatter, epilog=EXAMPLES,
        description='Deep Delta Learning for GNNs: deep-stack training, '
        'sweeps and over-smoothing reports.')
    parser.add_argument('--version', action='version',
                        version=f'%(prog)s {__version__}')
    parser.add_argument('--data-root', default=None,
                        help='dataset root (default: $DDL_GNN_DATA, else '
                        '~/.cache/ddl_gnn/data)')
    sub = parser.add_subparsers(dest='command', required=True,
                                metavar='COMMAND')

    t = _subparser(sub, 'train', help='one configuration over --runs seeds '
                   '(OGB protocol: test at the best validation epoch)',
                   description='Train one configuration for --runs seeds; '
                   'print OGB-style per-run and summary lines and append '
                   'one record per run to OUT/results.jsonl. A seed already '
                   'recorded there is reported, not trained again.')
    t.add_argument('--dataset', required=True, metavar='NAME',
                   help='one of: ' + ', '.join(DATASET_NAMES))
    t.add_argument('--model', required=True, metavar='NAME',
                   help='model family, one of: ' + ', '.join(MODEL_NAMES))
    t.add_argument('--depth', type=int, required=True,
                   help='message-passing layers')
    t.add_argument('--seed', type=int, default=0, help='first seed')
    t.add_argument('--runs', type=positive_int, default=1,
                   help='seeds seed..seed+runs-1 (OGB: 10)')
    t.add_argument('--distributed', action='store_true',
                   help='data-parallel over torchrun ranks')
    t.add_argument('--out', default='runs/train',
                   help='folder of results.jsonl (and checkpoints, models)')
    t.add_argument('--recommended', action=argparse.BooleanOptionalAction,
                   default=True, help='fill the run options not given here '
                   'with the recommended settings of this dataset and model '
                   '(ddl_gnn/configs/recommended.toml), where it has them')
    _add_checkpoint_option(t)
    _add_where_options(t)
    _add_run_options(t, defaults=True)

    s = _subparser(sub, 'sweep', help='grid of (model, depth, seed) runs',
                   description='Run every (model, depth, seed) of a config '
                   'file and/or flags that OUT/results.jsonl does not hold '
                   'yet, then write the report.')
    s.add_argument('--config', help='TOML sweep spec: a file (e.g. '
                   'study/configs/cora.toml) or a packaged name (demo)')
    s.add_argument('--dataset', metavar='NAME',
                   help='overrides the config: one of ' +
                   ', '.join(DATASET_NAMES))
    s.add_argument('--models', type=_csv(str), metavar='A,B',
                   help='overrides the config: comma-separated families '
                   '(' + ', '.join(MODEL_NAMES) + ')')
    s.add_argument('--depths', type=_csv(int), metavar='2,16',
                   help='overrides the config: comma-separated depths')
    s.add_argument('--seeds', type=int,
                   help='overrides the config: seeds 0..N-1')
    s.add_argument('--out', required=True,
                   help='folder of results.jsonl and the report')
    _add_checkpoint_option(s)
    s.add_argument('--report', action=argparse.BooleanOptionalAction,
                   default=True, help='write OUT/report.md and plots after '
                   'the runs')
    s.add_argument('--distributed', action='store_true',
                   help='spread runs over torchrun ranks')
    s.add_argument('--shard', type=_shard, default=None, metavar='K/N',
                   help='run only shard K of N (runs K, K+N, ...): '
                   'independent processes or machines writing one --out')
    _add_where_options(s)
    _add_run_options(s, defaults=False)

    r = _subparser(sub, 'report', help='tables and plots of DIR',
                   description='Write DIR/report.md and PNG plots from '
                   'DIR/results.jsonl.')
    r.add_argument('dir', help='a --out folder of train or sweep')

    d = _subparser(sub, 'demo', help='embedded default: csbm sweep + report '
                   '(no download, about a minute)',
                   description='The packaged demo sweep (a synthetic graph, '
                   'five families up to 64 layers) and its report.')
    d.add_argument('--out', default='runs/demo', help='output folder')
    d.add_argument('--config', default='demo',
                   help='sweep config (a file or a packaged name)')

    _subparser(sub, 'build-kernels', help='compile the fused CPU kernels '
               'now (otherwise on first use, about 50 s)',
               description='Compile the fused CPU delta kernels for this '
               'environment (e.g. at install time) and print where they '
               'are.')
    return parser


def _sweep(args, spec: Dict[str, Any]) -> int:
    from .experiment.distributed import barrier, dist_context
    from .experiment.report import write_report
    from .experiment.sweep import run_sweep, sweep_configs
    configs = sweep_configs(spec, _run_fields(args), dataset=args.dataset,
                            models=args.models, depths=args.depths,
                            seeds=args.seeds)
    writable_folder(args.out, '--out')
    limit_heap_growth_for(max((c.depth for c in configs), default=0))
    if args.shard is not None and args.distributed:
        raise ValueError('--shard and --distributed both split the runs; '
                         'give one of them')
    with dist_context(args.distributed) as (rank, world):
        if args.shard is not None:
            rank, world = args.shard
        run_sweep(configs, args.out, rank=rank, world_size=world,
                  device=args.device, checkpoint_every=args.checkpoint_every,
                  save_models=args.save_model)
        barrier()  # every rank's records are in before the report
        if rank == 0 and args.report:
            print(f'report: {write_report(args.out)}')
    return 0


def _finished_runs(store, out: str,
                   need_model: bool) -> Dict[str, Dict[str, Any]]:
    """The recorded runs in ``store`` by key; with ``need_model`` only
    those whose saved model (``out/models/<key>.pt``) is there:
    ``--save-model`` on a run recorded without one trains it again."""
    finished = {}
    for rec in store.load():
        key = rec.get('key')
        if key is None or (need_model and not os.path.isfile(
                os.path.join(out, 'models', f'{key}.pt'))):
            continue
        finished[key] = rec
    return finished


def _train(args) -> int:
    from .experiment.distributed import dist_context, train_distributed
    from .experiment.logger import print_summary
    from .experiment.records import ResultStore
    from .experiment.runner import run
    from .experiment.sweep import check_names
    if args.distributed and args.save_model:
        raise ValueError('--save-model is not available with train '
                         '--distributed; train on one process to keep the '
                         'model')
    fields = _run_fields(args)
    if args.recommended:
        from .experiment.recommended import with_recommended
        filled = with_recommended(args.dataset, args.model, fields,
                                  getattr(args, '_explicit', ()))
        changed = {k: v for k, v in filled.items() if fields.get(k) != v}
        if changed:
            print('ddl-gnn: recommended settings for '
                  f'{args.dataset}/{args.model} (--no-recommended: off): '
                  + ', '.join(f'{k}={v}' for k, v in sorted(changed.items())),
                  file=sys.stderr)
        fields = filled
    configs = [RunConfig(dataset=args.dataset, model=args.model,
                         depth=args.depth, seed=seed, **fields)
               for seed in range(args.seed, args.seed + args.runs)]
    check_names(configs)
    limit_heap_growth_for(args.depth)
    store = ResultStore(str(writable_folder(args.out, '--out')))
    # one read of the store: a damaged store fails now, not after training
    finished = _finished_runs(store, args.out, args.save_model)
    records: List[Dict[str, Any]] = []
    with dist_context(args.distributed) as (rank, world):
        for cfg in configs:
            if cfg.key() in finished:
                # The store keeps one record per key, so a second training
                # would be thrown away: report the recorded run instead.
                if rank == 0:
                    print(f'ddl-gnn: {cfg.dataset}/{cfg.model}/L{cfg.depth}'
                          f'/s{cfg.seed} is finished in {args.out} (record '
                          f'{cfg.key()}); not trained again',
                          file=sys.stderr)
                    records.append(finished[cfg.key()])
                continue
            if args.distributed:
                rec = train_distributed(cfg, args.out, rank, world)
            else:
                rec = run(cfg, out=args.out, device=args.device,
                          checkpoint_every=args.checkpoint_every,
                          save=args.save_model)
            if rank == 0:
                store.append(rec)
                records.append(rec)
        if rank == 0:
            print_summary(records)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; user errors (unknown names, bad options, missing data)
    print one ``ddl-gnn: error: ...`` message and exit with status 2."""
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (KeyError, ValueError, TypeError, OSError, ImportError) as err:
        if os.environ.get('DDL_GNN_TRACEBACK'):
            raise
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f'ddl-gnn: error: {msg}', file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.data_root:
        os.environ['DDL_GNN_DATA'] = args.data_root
    if args.command == 'report':
        from .experiment.report import write_report
        print(write_report(str(existing_folder(args.dir, 'report'))))
        return 0
    if args.command == 'train':
        return _train(args)
    if args.command == 'build-kernels':
        from .ops.cpu_kernels import main as build_kernels
        return build_kernels()
    from .experiment.sweep import find_config, load_config
    if args.command == 'demo':
        ns = build_parser().parse_args(['sweep', '--out', args.out])
        return _sweep(ns, load_config(find_config(args.config)))
    spec = load_config(find_config(args.config)) if args.config else {}
    return _sweep(args, spec)


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
