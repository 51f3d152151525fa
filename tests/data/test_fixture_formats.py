"""Sets not shipped offline (ogbn-arxiv, ogbn-proteins, PubMed): their real
loader paths, on tiny graphs written in the same on-disk formats."""
import torch
from torch_geometric.utils import is_undirected

from ddl_gnn.data import load_dataset


def test_ogbn_arxiv_fixture(ogbn_fixture_root):
    from ogb.nodeproppred import Evaluator as OgbEvaluator
    root, sizes = ogbn_fixture_root
    s = sizes['ogbn-arxiv']
    ds = load_dataset('ogbn-arxiv', root=root, download=False)
    d = ds.data
    assert d.num_nodes == s['n'] and ds.num_features == 128
    assert d.y.shape == (s['n'],)  # [N, 1] flattened for multiclass
    assert [len(ds.split[k]) for k in ('train', 'valid', 'test')] == \
        [s['train'], s['valid'], s['test']]
    assert ds.is_undirected and is_undirected(d.edge_index)
    assert d.edge_index.size(1) > s['edges']  # symmetrised (directed raw)
    raw = load_dataset('ogbn-arxiv', root=root, undirected=False)
    assert raw.data.edge_index.size(1) == s['edges']  # second load: cached
    assert isinstance(ds.evaluator, OgbEvaluator)
    assert (ds.num_classes, ds.metric) == (40, 'acc')
    assert ds.eval(d.y, d.y) == 1.0


def test_ogbn_proteins_fixture(ogbn_fixture_root):
    root, sizes = ogbn_fixture_root
    ds = load_dataset('ogbn-proteins', root=root, download=False)
    d = ds.data
    assert d.x.shape == (sizes['ogbn-proteins']['n'], 8)  # mean edge feats
    node = int(d.edge_index[1, 0])
    incoming = d.edge_attr[d.edge_index[1] == node]
    assert torch.allclose(d.x[node], incoming.mean(0))
    assert (ds.task_type, ds.metric, ds.num_tasks) == ('multilabel',
                                                       'rocauc', 112)
    assert ds.info['num_edge_features'] == 8


def test_pubmed_fixture(pubmed_fixture_root):
    root, s = pubmed_fixture_root
    ds = load_dataset('pubmed', root=root, download=False)
    assert ds.data.num_nodes == s['n']
    assert (ds.num_features, ds.num_classes) == (s['features'], s['classes'])
    assert [len(ds.split[k]) for k in ('train', 'valid', 'test')] == \
        [s['train'], s['valid'], s['test']]
