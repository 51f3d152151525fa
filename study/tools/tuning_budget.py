"""How much tuning each family got: distinct configurations and runs per
(dataset, depth, model), pooled over every study result folder.

    python study/tools/tuning_budget.py --datasets cora citeseer \
        --depths 16 64

A configuration is a run's full configuration without its seed and split,
so one configuration over 3 seeds counts once among the configurations
and three times among the runs; a configuration run in several folders
(a screen, then the depth study) counts once. Every record counts, those
of superseded configs too: they were tuning spent.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Sequence, Set, Tuple

from folders import RESULTS, current_records, record_folders

from ddl_gnn.experiment.config import RunConfig

Cell = Tuple[str, int, str]


def _identity(config: Dict) -> str:
    """The run key of ``config`` at seed 0 and no split: equal for the
    seeds of one configuration (records written before a field existed
    spell its default out or not; the key does not see the difference)."""
    try:
        return RunConfig(**{**config, 'seed': 0, 'split': 0}).key()
    except (TypeError, ValueError):     # a field no longer known
        return json.dumps({k: v for k, v in config.items()
                           if k not in ('seed', 'split')}, sort_keys=True)


def budget(folders: Sequence[Path], datasets: Sequence[str],
           depths: Sequence[int]) -> Dict[Cell, Tuple[int, int]]:
    """``{(dataset, depth, model): (configurations, runs)}``."""
    configs: Dict[Cell, Set[str]] = defaultdict(set)
    runs: Dict[Cell, Set[Tuple]] = defaultdict(set)
    for folder in folders:
        for r in current_records(folder, configs=None):
            if r['dataset'] not in datasets or r['depth'] not in depths:
                continue
            cell = (r['dataset'], r['depth'], r['model'])
            config = _identity(r['config'])
            configs[cell].add(config)
            runs[cell].add((config, r['config'].get('seed'),
                            r['config'].get('split')))
    return {c: (len(configs[c]), len(runs[c])) for c in configs}


def table(counts: Dict[Cell, Tuple[int, int]]) -> List[str]:
    cols = sorted({(d, L) for d, L, _ in counts})
    models = sorted({m for _, _, m in counts})
    lines = ['| model | ' + ' | '.join(f'{d} L={L}' for d, L in cols)
             + ' |', '|---|' + '---|' * len(cols)]
    for m in models:
        cells = [counts.get((d, L, m)) for d, L in cols]
        lines.append(f'| {m} | ' + ' | '.join(
            f'{c[0]} / {c[1]}' if c else '–' for c in cells) + ' |')
    return lines


def main(argv: List[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--datasets', nargs='+', default=['cora', 'citeseer'])
    p.add_argument('--depths', nargs='+', type=int, default=[16, 64])
    p.add_argument('--results', default=str(RESULTS),
                   help='the folder of result folders')
    args = p.parse_args(argv)
    counts = budget(record_folders(Path(args.results)), args.datasets,
                    args.depths)
    print('configurations / runs per family, every study record:\n')
    print('\n'.join(table(counts)))


if __name__ == '__main__':
    main()
