"""The benchmark runner: one command, one case per measurement.

    python benchmarks/run.py --list
    python benchmarks/run.py CASE [options]        (CASE --help)

Each case is a module of ``benchmarks/cases/`` with ``add_arguments(parser)``
and ``run(args)``; :data:`CASES` is the registry. What each case measures
and its current numbers: ``benchmarks/README.md``.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import List, Optional

HERE = Path(__file__).resolve().parent
#: case name -> module under benchmarks/cases
CASES = {
    'table': 'table',
    'op': 'op',
    'deep-stack': 'deep_stack',
    'profile': 'profile',
    'adj': 'adj',
    'graph-loader': 'graph_loader',
    'metrics': 'metrics',
    'small-graphs': 'small_graphs',
    'graph-epoch': 'graph_epoch',
    'gpu-table': 'gpu_table',
    'rss': 'rss',
}


def case(name: str):
    """The module of case ``name``."""
    if str(HERE) not in sys.path:           # cases import common by name
        sys.path.insert(0, str(HERE))
    return importlib.import_module(f'cases.{CASES[name]}')


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--list', action='store_true', help='list the cases')
    sub = p.add_subparsers(dest='case', metavar='CASE')
    for name in CASES:
        mod = case(name)
        sp = sub.add_parser(name, help=mod.__doc__.strip().splitlines()[0],
                            description=mod.__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(sp)
    return p


def main(argv: Optional[List[str]] = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list or not args.case:
        for name in CASES:
            print(f'{name:14s} {case(name).__doc__.strip().splitlines()[0]}')
        return
    case(args.case).run(args)


if __name__ == '__main__':
    main()
