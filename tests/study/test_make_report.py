"""benchmarks/make_report.py's cross-dataset summary table against numpy."""
import sys
from pathlib import Path

import numpy as np

from ddl_gnn.experiment.records import ResultStore

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'benchmarks'))
import make_report  # noqa: E402


def test_summary_cells_are_mean_std_over_seeds_and_bold_the_best(tmp_path):
    store = ResultStore(str(tmp_path / 'set_a'))
    tests = {('res+', 2): [0.5, 0.6, 0.7], ('delta', 2): [0.8, 0.9],
             ('delta', 8): [0.4]}
    for (model, depth), values in tests.items():
        for seed, t in enumerate(values):
            store.append(dict(key=f'{model}{depth}{seed}', model=model,
                              depth=depth, seed=seed, test=t))
    lines = make_report._summary_table(
        tmp_path, [('set_a', 'A'), ('missing', 'B')], (2, 8),
        ('res+', 'delta'))
    rows = {tuple(c.strip() for c in line.split('|')[1:3]): line
            for line in lines[2:]}
    v = np.array(tests[('res+', 2)]) * 100
    assert f'{v.mean():.1f} ± {v.std(ddof=1):.1f} (3)' in rows[('A', 'res+')]
    w = np.array(tests[('delta', 2)]) * 100
    assert f'**{w.mean():.1f} ± {w.std(ddof=1):.1f} (2)**' in rows[
        ('A', 'delta')]
    assert '**40.0 (1)**' in rows[('A', 'delta')]          # only entry, L=8
    assert rows[('A', 'res+')].rstrip().endswith('| – |')  # nothing at L=8
    assert rows[('B', 'delta')].count('–') == 2            # no folder
