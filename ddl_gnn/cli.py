"""``ddl-gnn`` (also ``python -m ddl_gnn``): train, sweep, report, demo."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from .experiment.config import RunConfig

_SKIP = {'dataset', 'model', 'depth', 'seed'}


def _opt(kind):
    def parse(text: str):
        return None if text.lower() == 'none' else kind(text)
    return parse


def _add_run_options(p: argparse.ArgumentParser, defaults: bool) -> None:
    """One flag per RunConfig field; with ``defaults=False`` (sweeps) flags
    default to None so config files keep their values."""
    for f in dataclasses.fields(RunConfig):
        if f.name in _SKIP:
            continue
        flag = '--' + f.name.replace('_', '-')
        default = (f.default if f.default is not dataclasses.MISSING else
                   f.default_factory()) if defaults else None
        if f.type in ('bool', bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction,
                           default=default)
        elif f.type.startswith('Dict'):
            p.add_argument(flag, type=json.loads, default=default,
                           help='JSON object')
        else:
            kind = int if 'int' in f.type else float if 'float' in f.type \
                else str
            p.add_argument(flag, type=_opt(kind) if 'Optional' in f.type
                           else kind, default=default)


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
                   'off); a rerun resumes it there (default: 600; not '
                   'with train --distributed)')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='ddl-gnn', description='Deep Delta Learning for GNNs: deep-'
        'stack training, sweeps and over-smoothing reports.')
    parser.add_argument('--data-root', default=None,
                        help='dataset root (default: $DDL_GNN_DATA)')
    sub = parser.add_subparsers(dest='command', required=True)

    t = sub.add_parser('train', help='one configuration, OGB protocol')
    t.add_argument('--dataset', required=True)
    t.add_argument('--model', required=True)
    t.add_argument('--depth', type=int, required=True)
    t.add_argument('--seed', type=int, default=0)
    t.add_argument('--runs', type=int, default=1,
                   help='seeds seed..seed+runs-1 (OGB: 10)')
    t.add_argument('--distributed', action='store_true',
                   help='data-parallel over torchrun ranks')
    t.add_argument('--out', default='runs/train')
    _add_checkpoint_option(t)
    t.add_argument('--device', default='cpu',
                   help="where runs execute ('cpu', 'cuda', 'cuda:1'); not "
                   "part of the run key, stamped on the record")
    _add_run_options(t, defaults=True)

    s = sub.add_parser('sweep', help='grid of (model, depth, seed) runs')
    s.add_argument('--config', help='TOML sweep spec (benchmarks/configs)')
    s.add_argument('--dataset')
    s.add_argument('--models', type=_csv(str))
    s.add_argument('--depths', type=_csv(int))
    s.add_argument('--seeds', type=int)
    s.add_argument('--out', required=True)
    _add_checkpoint_option(s)
    s.add_argument('--report', action=argparse.BooleanOptionalAction,
                   default=True)
    s.add_argument('--distributed', action='store_true',
                   help='spread runs over torchrun ranks')
    s.add_argument('--shard', type=_shard, default=None, metavar='K/N',
                   help='run only shard K of N (runs K, K+N, ...): '
                   'independent processes or machines writing one --out')
    s.add_argument('--device', default='cpu',
                   help="where runs execute ('cpu', 'cuda', 'cuda:1')")
    _add_run_options(s, defaults=False)

    r = sub.add_parser('report', help='tables and plots of DIR')
    r.add_argument('dir')

    d = sub.add_parser('demo', help='embedded default: csbm sweep + report')
    d.add_argument('--out', default='runs/demo')
    d.add_argument('--config', default='demo')

    sub.add_parser('build-kernels', help='compile the fused CPU kernels now '
                   '(otherwise on first use, about 50 s)')
    return parser


def _find_config(path: str) -> str:
    """A sweep config: a file, else one shipped with the package
    (``ddl_gnn/configs``, by name: ``demo`` or ``demo.toml``), else a path
    in ddl_gnn's own checkout (``benchmarks/configs/cora.toml`` from
    anywhere)."""
    from importlib import resources

    from ._checkout import checkout_root
    name = path if path.endswith('.toml') else path + '.toml'
    cands = [Path(path), Path(str(resources.files('ddl_gnn') / 'configs'
                                   / Path(name).name))]
    root = checkout_root()
    if root is not None:
        cands.append(root / path)
    for cand in cands:
        if cand.is_file():
            return str(cand)
    raise FileNotFoundError(f'sweep config {path!r} not found (looked in '
                            f'{Path.cwd()}, in the packaged configs'
                            + (f' and in {root}' if root else '') + ')')


def _sweep(args, spec: Dict[str, Any]) -> int:
    from .experiment.report import write_report
    from .experiment.sweep import expand, run_sweep
    from .parallel import barrier, dist_context
    spec = dict(spec)
    for key in ('dataset', 'models', 'depths', 'seeds'):
        if getattr(args, key, None) is not None:
            spec[key] = getattr(args, key)
    missing = [k for k in ('dataset', 'models', 'depths') if k not in spec]
    if missing:
        raise SystemExit(f'ddl-gnn sweep: missing {missing} (give --config '
                         f'or --dataset/--models/--depths)')
    configs = expand(spec, _run_fields(args))
    if args.shard is not None and args.distributed:
        raise ValueError('--shard and --distributed both split the runs; '
                         'give one of them')
    with dist_context(args.distributed) as (rank, world):
        if args.shard is not None:
            rank, world = args.shard
        run_sweep(configs, args.out, rank=rank, world_size=world,
                  device=args.device, checkpoint_every=args.checkpoint_every)
        barrier()  # every rank's records are in before the report
        if rank == 0 and args.report:
            print(f'report: {write_report(args.out)}')
    return 0


def _train(args) -> int:
    from .experiment.logger import print_summary
    from .experiment.records import ResultStore
    from .experiment.distributed import train_distributed
    from .parallel import dist_context
    from .experiment.runner import run
    store = ResultStore(args.out)
    records: List[Dict[str, Any]] = []
    with dist_context(args.distributed) as (rank, world):
        for seed in range(args.seed, args.seed + args.runs):
            cfg = RunConfig(dataset=args.dataset, model=args.model,
                            depth=args.depth, seed=seed, **_run_fields(args))
            if args.distributed:
                rec = train_distributed(cfg, args.out, rank, world)
            else:
                rec = run(cfg, out=args.out, device=args.device,
                          checkpoint_every=args.checkpoint_every)
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
    except (KeyError, ValueError, FileNotFoundError, ImportError) as err:
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
        print(write_report(args.dir))
        return 0
    if args.command == 'train':
        return _train(args)
    if args.command == 'build-kernels':
        from .ops.cpu_kernels import main as build_kernels
        return build_kernels()
    from .experiment.sweep import load_config
    if args.command == 'demo':
        ns = build_parser().parse_args(['sweep', '--out', args.out])
        return _sweep(ns, load_config(_find_config(args.config)))
    spec = load_config(_find_config(args.config)) if args.config else {}
    return _sweep(args, spec)


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
