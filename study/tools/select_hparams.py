"""Hyper-parameter selection from a tuning sweep, by validation score.

    python study/tools/select_hparams.py study/results/tune_cora
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

from folders import current_records

from ddl_gnn.experiment.config import RunConfig
from ddl_gnn.experiment.report import mean_std


def main(*folders: str, model: str | None = None) -> None:
    groups = defaultdict(list)
    records = [r for f in folders for r in current_records(Path(f))
               if model is None or r['model'] == model]
    for r in records:
        changed = RunConfig(**r['config']).changed()
        for k in ('dataset', 'model', 'depth', 'seed'):
            changed.pop(k, None)
        groups[(r['model'], r['depth'], json.dumps(changed, sort_keys=True))
               ].append(r)
    by_cell = defaultdict(list)
    for (model, depth, cfg), rs in groups.items():
        v, _ = mean_std([r['valid'] for r in rs])
        t, ts = mean_std([r['test'] for r in rs])
        by_cell[(model, depth)].append((v, t, ts, len(rs), cfg))
    for (model, depth), rows in sorted(by_cell.items()):
        print(f'## {model}, L={depth}')
        for i, (v, t, ts, n, cfg) in enumerate(sorted(rows, reverse=True)):
            mark = '*' if i == 0 else ' '
            print(f'{mark} valid {v:.4f}  test {t:.4f} ± {ts:.4f} (n={n})  '
                  f'{cfg}')


if __name__ == '__main__':
    import argparse
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('folders', nargs='+')
    p.add_argument('--model')
    args = p.parse_args()
    main(*args.folders, model=args.model)
