"""Mini-batch schedules: random partitions, and the clear error of the
sampler-backed loaders when pyg-lib / torch-sparse are missing."""
import pytest
import torch

from ddl_gnn.experiment import loaders
from ddl_gnn.experiment.config import RunConfig
from ddl_gnn.experiment.runner import load


def _cfg(loader, **kw):
    return RunConfig(dataset='csbm', model='delta', depth=2, loader=loader,
                     batch_size=256, dataset_kwargs=dict(num_nodes=400),
                     **kw)


def test_random_batches_cover_train_nodes_once():
    ds = load(_cfg('random'))
    seen = []
    batches = list(loaders.node_train_batches(ds.data, ds.split['train'],
                                              _cfg('random')))
    assert len(batches) == 2  # ceil(400 / 256) partitions
    for batch, idx in batches:
        assert batch.num_nodes <= 200
        assert bool(batch.train_mask[idx].all())
        # the batch is an induced subgraph: local edges only
        assert int(batch.edge_index.max()) < batch.num_nodes
        seen.append(idx.numel())
    assert sum(seen) == ds.split['train'].numel()
    assert not hasattr(ds.data, 'train_mask')  # the dataset is untouched


@pytest.mark.parametrize('loader', ['neighbor', 'cluster'])
def test_sampler_loaders_name_missing_package(monkeypatch, loader):
    monkeypatch.setattr(loaders, '_sampler_backend', lambda: '')
    ds = load(_cfg(loader))
    with pytest.raises(ImportError, match=r"'pyg-lib' or 'torch-sparse'") \
            as err:
        next(loaders.node_train_batches(ds.data, ds.split['train'],
                                        _cfg(loader)))
    assert f'--loader {loader}' in str(err.value)
    assert 'ddl_gnn[sparse]' in str(err.value)


@pytest.mark.skipif(bool(loaders._sampler_backend()),
                    reason='pyg-lib / torch-sparse is installed')
def test_cli_neighbor_without_backend(tmp_path, capsys):
    from ddl_gnn.cli import main
    assert main(['train', '--dataset', 'csbm', '--model', 'delta', '--depth',
                 '2', '--epochs', '1', '--loader', 'neighbor', '--no-measure',
                 '--out', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert '--loader neighbor needs' in err and 'pyg-lib' in err
