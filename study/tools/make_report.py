"""Regenerates the campaign's reports and the README's results section.

    python benchmarks/make_report.py

For every ``benchmarks/results/<name>/results.jsonl[.gz]`` it writes that folder's
``report.md`` and plots (``ddl-gnn report``), then replaces the block between
the ``<!-- results:begin -->`` / ``<!-- results:end -->`` markers of the
top-level README with the accuracy tables, so the README never states a
number that is not in a committed record.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ddl_gnn.experiment.records import (  # noqa: E402
    ResultStore, record_folders)
from ddl_gnn.experiment.report import tables, write_report  # noqa: E402
from ddl_gnn.experiment.sweep import split_current  # noqa: E402

BEGIN, END = '<!-- results:begin -->', '<!-- results:end -->'
# Sweeps of one model with another setting than the main sweep's: their
# selection.md ranks both settings per depth by validation.
POOLED = {'cora_delta_beta01': ('cora', 'delta'),
          'citeseer_delta_beta01': ('citeseer', 'delta'),
          'cora_deep_beta01': ('cora_deep', 'delta')}


def main() -> None:
    results = ROOT / 'benchmarks' / 'results'
    sections = []
    for folder in record_folders(results):
        if folder.name.startswith('tune_'):
            # A tuning grid is not a table of seeds: write its selection.
            _write_selection(folder)
            continue
        records = ResultStore(folder).load()
        config = ROOT / 'benchmarks' / 'configs' / f'{folder.name}.toml'
        if config.exists():
            # Only records of the config as it stands now (a changed
            # hyper-parameter gives new run keys; old records stay in the
            # JSONL but leave the tables).
            records, stale = split_current(records, str(config))
            if stale:
                print(f'{folder.name}: {len(stale)} records of an older '
                      f'config left out')
        if not records:
            continue
        report = write_report(str(folder), records)
        if folder.name in POOLED:
            _write_selection(folder, POOLED[folder.name])
        # Plots of cells that left the tables (an older config) would
        # otherwise linger beside the report: drop PNGs it does not show.
        shown = report.read_text()
        for png in folder.glob('*.png'):
            if f'({png.name})' not in shown:
                png.unlink()
        rel = folder.relative_to(ROOT)
        sections.append(f'#### `{rel}` ({len(records)} runs, '
                        f'[full report]({rel}/report.md))\n\n'
                        + _accuracy_only(tables(records)))
    _write_summary(results)
    block = '\n'.join([BEGIN, '', *sections, END])
    readme = ROOT / 'README.md'
    text = readme.read_text()
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + '.*?' + re.escape(END), block, text,
                      flags=re.S)
    else:
        text += '\n## Results\n\n' + block + '\n'
    tmp = readme.with_suffix('.md.tmp')
    tmp.write_text(text)
    os.replace(tmp, readme)
    print(f'updated {readme} ({len(sections)} result sets)')


# The cross-dataset tables: (title, [(folder, dataset label)],
# depths, models). One row per (dataset, model); the best mean per dataset
# and depth in bold.
SUMMARIES = [
    ('Heterophilous node classification (geom-gcn splits: seed s = split s; '
     'Minesweeper/Tolokers: Platonov et al. splits, ROC-AUC)',
     [('hetero_texas', 'Texas'), ('hetero_cornell', 'Cornell'),
      ('hetero_wisconsin', 'Wisconsin'), ('hetero_actor', 'Actor'),
      ('hetero_chameleon', 'Chameleon (leaky)'),
      ('hetero_chameleon_filtered', 'chameleon-filtered'),
      ('hetero_squirrel', 'Squirrel (leaky)'),
      ('hetero_squirrel_filtered', 'squirrel-filtered'),
      ('hetero_minesweeper', 'Minesweeper'),
      ('hetero_tolokers', 'Tolokers')],
     (2, 8, 32), ('res+', 'gcnii', 'delta')),
    ('OGB / LRGB graph property prediction (OGB Evaluator: ROC-AUC, '
     'Peptides-func AP)',
     [('ogbg_molbace', 'ogbg-molbace'), ('ogbg_molbbbp', 'ogbg-molbbbp'),
      ('ogbg_molhiv', 'ogbg-molhiv'), ('peptides_func', 'Peptides-func')],
     (4, 16, 32), ('res+', 'gcnii', 'delta')),
]


def _summary_table(results: Path, sets, depths, models) -> List[str]:
    from ddl_gnn.experiment.report import mean_std
    out = ['| dataset | model | ' + ' | '.join(f'L={d}' for d in depths)
           + ' |', '|---|---|' + '---|' * len(depths)]
    for name, title in sets:
        folder = results / name
        config = ROOT / 'benchmarks' / 'configs' / f'{name}.toml'
        records = (ResultStore(folder).load()
                   if (folder / 'results.jsonl').exists()
                   or (folder / 'results.jsonl.gz').exists() else [])
        if records and config.exists():
            records = split_current(records, str(config))[0]
        cells = {(m, d): [r['test'] for r in records
                          if r['model'] == m and r['depth'] == d]
                 for m in models for d in depths}
        best = {d: max((mean_std(cells[(m, d)])[0], m) for m in models
                       if cells[(m, d)])[1]
                for d in depths if any(cells[(m, d)] for m in models)}
        for m in models:
            row = []
            for d in depths:
                vals = cells[(m, d)]
                if not vals:
                    row.append('–')
                    continue
                mu, sd = mean_std(vals)
                txt = (f'{100 * mu:.1f} ± {100 * sd:.1f} ({len(vals)})'
                       if len(vals) > 1 else f'{100 * mu:.1f} (1)')
                row.append(f'**{txt}**' if best.get(d) == m else txt)
            out.append(f'| {title} | {m} | ' + ' | '.join(row) + ' |')
    return out


def _write_summary(results: Path) -> None:
    """``results/summary.md``: the cross-dataset tables of the campaign,
    from the current records of each folder (mean ± std over seeds, seed
    count in brackets, – where nothing ran)."""
    lines = ['# Campaign summary', '',
             'Generated by `python benchmarks/make_report.py` from the '
             'records of each folder (records of an older config left out). '
             'Test metric × 100 at the epoch of best validation, mean ± std '
             '(seeds); bold: the best mean per dataset and depth (ties and '
             'overlapping stds are common: read the spreads).', '']
    for title, sets, depths, models in SUMMARIES:
        lines += [f'## {title}', '',
                  *_summary_table(results, sets, depths, models), '']
    (results / 'summary.md').write_text('\n'.join(lines))


def _write_selection(folder: Path, pooled: tuple = ()) -> None:
    """``selection.md``: the configurations of ``folder`` (with
    ``pooled = (other folder name, model)``: and that model's runs in the
    other folder) ranked by validation per (model, depth)."""
    import contextlib
    import io

    from select_hparams import main as select
    folders = [folder] if not pooled else [folder.parent / pooled[0], folder]
    model = pooled[1] if pooled else None
    cmd = ' '.join(str(f.relative_to(ROOT)) for f in folders) + (
        f' --model {model}' if model else '')
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        select(*map(str, folders), model=model)
    text = ('# Hyper-parameter selection (by validation)\n\n'
            f'`python benchmarks/select_hparams.py {cmd}`'
            '\n\n```\n' + buf.getvalue() + '```\n')
    (folder / 'selection.md').write_text(text)


def _accuracy_only(md: str) -> str:
    """Keeps the test-metric tables, drops the per-layer ones."""
    keep, on = [], False
    for line in md.splitlines():
        if line.startswith('### '):
            on = 'test' in line
        if on:
            keep.append(line)
    return '\n'.join(keep) + '\n'


if __name__ == '__main__':
    main()
