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
