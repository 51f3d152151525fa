"""Each offline dataset family loads from $DDL_GNN_DATA with the sizes of
its published release (skipped when DDL_GNN_DATA is unset)."""
import pytest
import torch
from torch_geometric.utils import is_undirected

from ddl_gnn.data import load_dataset

pytestmark = pytest.mark.dataset


def _sizes(split):
    return [len(split[k]) for k in ('train', 'valid', 'test')]


def test_cora(data_root):
    ds = load_dataset('cora', root=data_root)
    d = ds.data
    assert (d.num_nodes, d.edge_index.size(1)) == (2708, 10556)
    assert (ds.num_features, ds.num_classes) == (1433, 7)
    assert _sizes(ds.split) == [140, 500, 1000]
    assert ds.is_undirected and ds.split_index is None
    assert (ds.task, ds.metric) == ('node', 'acc')


def test_texas_split_0_and_undirected_handling(data_root):
    raw = load_dataset('texas', root=data_root, undirected=False)
    assert (raw.data.num_nodes, raw.data.edge_index.size(1)) == (183, 325)
    assert not raw.is_undirected
    assert _sizes(raw.split) == [87, 59, 37] and raw.split_index == 0
    sym = load_dataset('texas', root=data_root)  # default: symmetrised
    assert sym.is_undirected and is_undirected(sym.data.edge_index)
    assert sym.data.edge_index.size(1) > 325
    other = load_dataset('texas', root=data_root, split=7)
    assert other.split_index == 7
    assert not torch.equal(other.split['train'], sym.split['train'])
    with pytest.raises(ValueError):
        load_dataset('texas', root=data_root, split=10)


def test_minesweeper(data_root):
    ds = load_dataset('minesweeper', root=data_root)
    assert ds.data.num_nodes == 10000
    assert ds.data.edge_index.size(1) == 78804
    assert _sizes(ds.split) == [5000, 2500, 2500]
    assert (ds.task_type, ds.metric, ds.num_features) == ('binary', 'rocauc', 7)


def test_ogbg_molbace(data_root):
    from ogb.graphproppred import Evaluator as OgbEvaluator
    ds = load_dataset('ogbg-molbace', root=data_root)
    assert len(ds.dataset) == 1513
    assert _sizes(ds.split) == [1210, 151, 152]
    assert isinstance(ds.evaluator, OgbEvaluator)
    assert ds.evaluator.eval_metric == 'rocauc' == ds.metric
    assert ds.molecular and ds.dataset[0].x.dtype == torch.long
    assert ds.dataset[0].edge_attr.dtype == torch.long
    assert len(ds.subset('valid')) == 151
    assert (ds.num_features, ds.info['num_edge_features']) == (9, 3)


def test_ogbl_ddi(data_root):
    from ogb.linkproppred import Evaluator as OgbEvaluator
    ds = load_dataset('ogbl-ddi', root=data_root)
    assert ds.data.num_nodes == 4267
    assert ds.data.edge_index.size(1) == 2135822
    s = ds.split
    assert s['train']['edge'].shape == (1067911, 2)
    assert s['valid']['edge'].shape == (133489, 2)
    assert s['valid']['edge_neg'].shape == (101882, 2)
    assert s['test']['edge'].shape == (133489, 2)
    assert s['test']['edge_neg'].shape == (95599, 2)
    assert isinstance(s['valid']['edge_neg'], torch.Tensor)
    assert isinstance(ds.evaluator, OgbEvaluator) and ds.metric == 'hits@20'


def test_peptides_func(data_root):
    # first processing ~12 s on this machine (raw files written from the
    # compact npz when absent), ~0.5 s once processed.
    ds = load_dataset('peptides-func', root=data_root)
    assert len(ds.dataset) == 15535
    assert _sizes(ds.split) == [10873, 2331, 2331]
    g = ds.subset('test')[0]
    assert g.x.shape[1] == 9 and g.x.dtype == torch.long
    assert g.y.shape == (1, 10)
    assert (ds.task_type, ds.metric, ds.num_tasks) == ('multilabel', 'ap', 10)
    assert ds.molecular


def test_normalize_features_cora_rows_and_graph_sets_refuse(data_root):
    ds = load_dataset('cora', root=data_root, normalize_features=True)
    sums = ds.data.x.sum(1)
    nonempty = ds.data.x.abs().sum(1) > 0
    torch.testing.assert_close(sums[nonempty], torch.ones(int(nonempty.sum())))
    with pytest.raises(ValueError, match='normalize_features'):
        load_dataset('ogbg-molbace', root=data_root, normalize_features=True)


def test_chameleon_filtered_against_the_npz(data_root):
    """The duplicate-free Chameleon (Platonov et al. 2023) as stored by
    yandex-research: numpy's view of the file is the oracle."""
    import numpy as np
    z = np.load(f'{data_root}/heterophilous/extra_npz/chameleon_filtered.npz')
    ds = load_dataset('chameleon-filtered', root=data_root, split=4)
    d = ds.data
    assert d.num_nodes == 890 == len(z['node_labels'])
    assert torch.equal(d.x, torch.from_numpy(z['node_features']))
    assert torch.equal(d.y, torch.from_numpy(z['node_labels']))
    # each undirected edge is stored once: symmetrised to both directions
    assert d.edge_index.size(1) == 2 * len(z['edges']) == 17708
    assert ds.is_undirected and is_undirected(d.edge_index)
    for ours, theirs in (('train', 'train'), ('valid', 'val'),
                         ('test', 'test')):
        assert ds.split[ours].tolist() == np.flatnonzero(
            z[f'{theirs}_masks'][4]).tolist()
    assert (ds.num_classes, ds.metric, ds.split_index) == (5, 'acc', 4)
    sq = load_dataset('squirrel-filtered', root=data_root)
    assert (sq.data.num_nodes, sq.data.edge_index.size(1)) == (2223, 93996)
