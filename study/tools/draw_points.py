"""A seeded random search around a family's settings, written as sweep
grid points: the same command draws the same points.

    python study/tools/draw_points.py study/configs/budget_space.toml \
        --model gcnii --n 49 --seed 0

The space file holds one table per family: each key a run option (or
``model_kwargs.<name>``) with the list of values to draw from; keys of its
``fixed`` sub-table go into every point unchanged. Points are drawn
uniformly without replacement from the product of the lists, skipping
the combinations listed under ``exclude`` (settings already run).
"""
from __future__ import annotations

import argparse
import copy
import itertools
import json
import random
import tomllib
from pathlib import Path
from typing import Any, Dict, List


def _product(space: Dict[str, Any]) -> List[Dict[str, Any]]:
    axes = {k: v for k, v in space.items() if k not in ('fixed', 'exclude')}
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f'space key {key!r}: expected a non-empty list '
                             f'of values, got {values!r}')
    names = sorted(axes)
    return [dict(zip(names, combo))
            for combo in itertools.product(*(axes[n] for n in names))]


def _nest(flat: Dict[str, Any], fixed: Dict[str, Any]) -> Dict[str, Any]:
    """``{'model_kwargs.alpha': 0.1}`` → ``{'model_kwargs': {'alpha': 0.1}}``
    merged over the fixed settings."""
    point = copy.deepcopy(fixed)  # nested tables are filled in below
    for key, value in flat.items():
        head, _, tail = key.partition('.')
        if tail:
            point.setdefault(head, {})[tail] = value
        else:
            point[key] = value
    return point


def draw(space: Dict[str, Any], n: int, seed: int) -> List[Dict[str, Any]]:
    """``n`` distinct points of ``space`` (its ``exclude`` list left out)."""
    fixed = space.get('fixed', {})
    # an exclusion names every drawn key (model_kwargs as a whole table)
    excluded = [{**fixed, **e} for e in space.get('exclude', [])]
    combos = [c for c in _product(space) if _nest(c, fixed) not in excluded]
    if n > len(combos):
        raise ValueError(f'asked for {n} points; the space holds '
                         f'{len(combos)}')
    return [_nest(c, fixed) for c in random.Random(seed).sample(combos, n)]


def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        if not value:
            return '{}'
        return '{ ' + ', '.join(f'{k} = {toml_value(v)}'
                                for k, v in value.items()) + ' }'
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def main(argv: List[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('space', help='TOML file with a table per family')
    p.add_argument('--model', required=True)
    p.add_argument('--n', type=int, required=True)
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)
    spaces = tomllib.loads(Path(args.space).read_text())
    if args.model not in spaces:
        raise SystemExit(f'{args.space}: no table [{args.model}] '
                         f'(it has {sorted(spaces)})')
    for point in draw(spaces[args.model], args.n, args.seed):
        print(f'    {toml_value(point)},')


if __name__ == '__main__':
    main()
