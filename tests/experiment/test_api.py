"""The Python API of :mod:`ddl_gnn.experiment`: train, sweep, report and
results as tables, as a notebook would use them."""
import json

import matplotlib
import pytest

from ddl_gnn.cli import main

CSBM = {'num_nodes': 120, 'num_classes': 3, 'num_features': 8}
SMALL = ['--epochs', '3', '--hidden', '8', '--dataset-kwargs',
         json.dumps(CSBM)]


@pytest.fixture(scope='module')
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp('sweep')
    assert main(['sweep', '--dataset', 'csbm', '--models', 'res,delta',
                 '--depths', '1,3', '--seeds', '2', '--out', str(out),
                 '--no-report', *SMALL]) == 0
    return out


def test_report_leaves_the_matplotlib_backend_alone(swept):
    from ddl_gnn.experiment.report import write_report
    before = matplotlib.get_backend()
    try:
        matplotlib.use('svg')            # what a notebook's backend stands for
        write_report(str(swept))
        assert matplotlib.get_backend() == 'svg'
    finally:
        matplotlib.use(before)
    png = (swept / 'accuracy_vs_depth.png').read_bytes()
    assert png.startswith(b'\x89PNG') and len(png) > 1000


def test_top_level_api_names_are_the_functions():
    import ddl_gnn
    import ddl_gnn.experiment.report  # noqa: F401  (the modules behind)
    import ddl_gnn.experiment.sweep  # noqa: F401
    from ddl_gnn.experiment import api
    for name in ('train', 'sweep', 'report', 'results', 'write_csv'):
        assert getattr(ddl_gnn, name) is getattr(api, name)
    from ddl_gnn.experiment import load_model, write_report  # noqa: F401


def test_sweep_api_runs_the_grid_once_and_returns_its_records(tmp_path):
    import ddl_gnn
    spec = {'dataset': 'csbm', 'models': ['res'], 'depths': [1],
            'defaults': {'epochs': 3, 'hidden': 8, 'dataset_kwargs': CSBM}}
    recs = ddl_gnn.sweep(spec, out=str(tmp_path), models=['res', 'delta'],
                         seeds=2, report=False, lr=0.02)
    assert sorted((r['model'], r['seed']) for r in recs) == [
        ('delta', 0), ('delta', 1), ('res', 0), ('res', 1)]
    assert all(r['config']['lr'] == 0.02 for r in recs)
    lines = (tmp_path / 'results.jsonl').read_text()
    again = ddl_gnn.sweep(spec, out=str(tmp_path), models=['res', 'delta'],
                          seeds=2, report=False, lr=0.02)
    assert (tmp_path / 'results.jsonl').read_text() == lines   # nothing rerun
    assert sorted(r['key'] for r in again) == sorted(r['key'] for r in recs)
    with pytest.raises(ValueError, match='missing'):
        ddl_gnn.sweep(out=str(tmp_path), dataset='csbm')


def test_results_as_dataframe_and_csv(swept):
    import csv

    import ddl_gnn
    from ddl_gnn.experiment.records import ResultStore
    recs = ResultStore(str(swept)).load()
    df = ddl_gnn.results(str(swept))
    assert len(df) == len(recs) == 8
    assert list(df.columns[:9]) == ['key', 'dataset', 'model', 'depth',
                                    'seed', 'metric', 'train', 'valid',
                                    'test']
    assert df['test'].tolist() == [r['test'] for r in recs]
    assert df['hidden'].tolist() == [8] * 8
    assert json.loads(df['dataset_kwargs'][0]) == CSBM
    path = ddl_gnn.write_csv(str(swept))
    assert path == swept / 'results.csv'
    rows = list(csv.DictReader(path.open()))
    assert [float(r['test']) for r in rows] == df['test'].tolist()
    assert [r['model'] for r in rows] == df['model'].tolist()


def test_results_without_pandas_is_a_clear_error(swept, monkeypatch):
    import sys

    import ddl_gnn
    monkeypatch.setitem(sys.modules, 'pandas', None)    # not installed
    with pytest.raises(ImportError, match='pip install pandas'):
        ddl_gnn.results(str(swept))
    assert ddl_gnn.write_csv(str(swept)).is_file()      # needs no pandas


def test_train_api_appends_its_record(tmp_path):
    import ddl_gnn
    rec = ddl_gnn.train('csbm', 'res', depth=2, out=str(tmp_path), epochs=2,
                        hidden=8, measure=False, dataset_kwargs=CSBM)
    assert ddl_gnn.load_records(str(tmp_path)) == [rec]
    assert 0.0 <= rec['train'] <= 1.0
