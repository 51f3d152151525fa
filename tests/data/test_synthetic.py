"""csbm / karate: the embedded datasets (no files)."""
import pytest
import torch
from torch_geometric.utils import homophily, is_undirected

from ddl_gnn.data import load_dataset


def test_csbm_deterministic_for_a_seed():
    a = load_dataset('csbm', seed=3)
    b = load_dataset('csbm', seed=3)
    c = load_dataset('csbm', seed=4)
    assert torch.equal(a.data.x, b.data.x)
    assert torch.equal(a.data.edge_index, b.data.edge_index)
    assert all(torch.equal(a.split[k], b.split[k]) for k in a.split)
    assert not torch.equal(a.data.x, c.data.x)


def test_csbm_does_not_touch_global_rng():
    torch.manual_seed(0)
    ref = torch.rand(3)
    torch.manual_seed(0)
    load_dataset('csbm', seed=1)
    assert torch.equal(torch.rand(3), ref)


def test_csbm_sizes_configurable():
    ds = load_dataset('csbm', num_nodes=301, num_classes=3, num_features=7,
                      avg_degree=6, seed=0)
    d = ds.data
    assert (d.num_nodes, d.x.shape, ds.num_features) == (301, (301, 7), 7)
    assert ds.num_classes == 3 and int(d.y.max()) == 2
    assert torch.bincount(d.y).tolist() == [101, 100, 100]
    assert is_undirected(d.edge_index) and ds.is_undirected
    assert not (d.edge_index[0] == d.edge_index[1]).any()
    assert 5.0 < d.edge_index.size(1) / d.num_nodes < 7.0  # mean degree ~6
    assert (ds.task, ds.task_type, ds.metric) == ('node', 'multiclass', 'acc')


def test_csbm_split_sizes_and_stratification():
    ds = load_dataset('csbm', num_nodes=1000, num_classes=4, seed=0, split=2)
    s = ds.split
    assert [len(s[k]) for k in ('train', 'valid', 'test')] == [600, 200, 200]
    allidx = torch.cat([s['train'], s['valid'], s['test']])
    assert torch.equal(allidx.sort()[0], torch.arange(1000))
    assert torch.bincount(ds.data.y[s['train']]).tolist() == [150] * 4
    other = load_dataset('csbm', num_nodes=1000, num_classes=4, seed=0,
                         split=3)
    assert torch.equal(other.data.x, ds.data.x)  # split seed ≠ graph seed
    assert not torch.equal(other.split['train'], s['train'])
    custom = load_dataset('csbm', num_nodes=100, num_classes=2, train=0.1,
                          valid=0.1)
    assert [len(custom.split[k]) for k in ('train', 'valid', 'test')] == \
        [10, 10, 80]


@pytest.mark.parametrize('h', [0.1, 0.5, 0.9])
def test_csbm_homophily_parameter(h):
    ds = load_dataset('csbm', num_nodes=2000, num_classes=4, avg_degree=10,
                      homophily=h, seed=0)
    measured = homophily(ds.data.edge_index, ds.data.y, method='edge')
    assert abs(measured - h) < 0.03


def test_karate_builtin():
    ds = load_dataset('karate', split=1)
    assert ds.data.num_nodes == 34 and ds.num_classes == 4
    s = ds.split
    assert len(s['train']) == 4
    assert len(s['train']) + len(s['valid']) + len(s['test']) == 34
    assert ds.root is None
