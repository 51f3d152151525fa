"""Hyper-parameter selection from a tuning sweep, by validation score.

    python study/tools/select_hparams.py study/results/tune_cora
    python study/tools/select_hparams.py --across-depths \
        study/results/select_cora
    python study/tools/select_hparams.py study/results/cora \
        study/results/cora_delta_beta01 --model delta

Prints, per (model, depth), every configuration's mean validation and test
score over its seeds, best validation first; the chosen one is marked.
Several folders are pooled (e.g. a sweep and a second sweep of one model
with another setting); ``--model`` keeps one model. A folder named like a
config in ``study/configs/`` contributes only the records of that
config as it stands (as in the reports).
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from folders import CONFIGS, current_records

from ddl_gnn.experiment.config import RunConfig
from ddl_gnn.experiment.report import mean_std


def main(*folders: str, model: str | None = None, seeds: int | None = None,
         every_record: bool = False,
         across_depths: bool = False) -> None:
    groups = defaultdict(list)
    configs = None if every_record else CONFIGS
    records = [r for f in folders for r in current_records(Path(f), configs)
               if (model is None or r['model'] == model)
               and (seeds is None or r['seed'] < seeds)]
    for r in records:
        changed = RunConfig(**r['config']).changed()
        for k in ('dataset', 'model', 'depth', 'seed', 'split'):
            changed.pop(k, None)
        depth = 'all' if across_depths else r['depth']
        groups[(r['model'], depth, json.dumps(changed, sort_keys=True))
               ].append(r)
    by_cell = defaultdict(list)
    for (model, depth, cfg), rs in groups.items():
        v, _ = mean_std([r['valid'] for r in rs])
        t, ts = mean_std([r['test'] for r in rs])
        depths = sorted({r['depth'] for r in rs})
        by_cell[(model, str(depth))].append((v, t, ts, len(rs), depths, cfg))
    for (model, depth), rows in sorted(by_cell.items()):
        print(f'## {model}, L={depth}')
        full = max(len(row[4]) for row in rows)
        # Only configurations run at every depth compete (a half-finished
        # configuration's mean would cover easier depths only).
        rows = sorted(rows, key=lambda row: (len(row[4]) == full, row[0]),
                      reverse=True)
        for i, (v, t, ts, n, ds, cfg) in enumerate(rows):
            mark = '*' if i == 0 else ' '
            at = f' L={",".join(map(str, ds))}' if across_depths else ''
            print(f'{mark} valid {v:.4f}  test {t:.4f} ± {ts:.4f} '
                  f'(n={n}{at})  {cfg}')


if __name__ == '__main__':
    import argparse
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('folders', nargs='+')
    p.add_argument('--model')
    p.add_argument('--every-record', action='store_true',
                   help='also records of settings the config no longer '
                        'holds (by default only the config as it stands)')
    p.add_argument('--seeds', type=int,
                   help='only seeds 0..N-1 (configurations compared on the '
                        'same seeds / splits)')
    p.add_argument('--across-depths', action='store_true',
                   help='score a configuration by its mean validation over '
                        'all depths it ran at (one choice for every depth)')
    args = p.parse_args()
    main(*args.folders, model=args.model, seeds=args.seeds,
         every_record=args.every_record,
         across_depths=args.across_depths)
