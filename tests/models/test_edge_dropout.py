"""DropEdge in the shared skeleton (``edge_dropout``): in training every
forward reads a graph with each edge dropped at the given rate, before the
adjacency is normalised; in eval the whole graph."""
import networkx as nx
import pytest
import torch
from torch_geometric.utils import dropout_edge, from_networkx, to_torch_csr_tensor

from ddl_gnn.models import build_model


@pytest.fixture(scope='module')
def graph():
    G = nx.barabasi_albert_graph(200, 3, seed=1)
    x = torch.rand(200, 12, generator=torch.Generator().manual_seed(1))
    edge_index = from_networkx(G).edge_index
    w = torch.rand(edge_index.size(1), generator=torch.Generator().manual_seed(2))
    return x, edge_index, w + 0.5


@pytest.mark.parametrize('name', ['res', 'gcnii', 'delta'])
def test_training_forward_reads_the_dropped_graph(graph, name):
    """Oracle: the same weights in eval mode on the graph that PyG's
    dropout_edge draws from the same RNG state (no other dropout)."""
    x, edge_index, w = graph
    torch.manual_seed(0)
    model = build_model(name, 12, 16, 4, 3, edge_dropout=0.4)
    torch.manual_seed(7)
    out = model.train()(x, edge_index, w)
    torch.manual_seed(7)
    kept, mask = dropout_edge(edge_index, p=0.4, training=True)
    assert 0.5 < mask.float().mean() < 0.7
    ref = model.eval()(x, kept, w[mask])
    torch.testing.assert_close(out, ref)
    full = model(x, edge_index, w)      # eval: the whole graph
    assert not torch.allclose(out, full)
    plain = build_model(name, 12, 16, 4, 3)
    plain.load_state_dict(model.state_dict())
    torch.testing.assert_close(plain.eval()(x, edge_index, w), full)


def test_edge_dropout_bad_input(graph):
    x, edge_index, _ = graph
    for bad in (1.0, -0.1, True, 'high'):
        with pytest.raises(ValueError, match="'edge_dropout' must lie in"):
            build_model('delta', 12, 16, 2, 3, edge_dropout=bad)
    model = build_model('res', 12, 16, 2, 3, edge_dropout=0.2).train()
    adj = to_torch_csr_tensor(edge_index, size=200)
    with pytest.raises(ValueError, match="'edge_dropout' drops edges"):
        model(x, adj)
    model.eval()(x, adj)                # eval reads the whole adjacency
