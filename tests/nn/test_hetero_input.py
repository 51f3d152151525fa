"""Heterogeneous and bipartite graphs: what works (DeltaConv on a relation
within one node type, inside HeteroConv; any family on
``to_homogeneous()``) and what fails with a clear message naming the
alternative (``to_hetero``, bipartite ``(x_src, x_dst)``, ``x_dict``)."""
import pytest
import torch
from torch_geometric.data import HeteroData
from torch_geometric.nn import HeteroConv, SAGEConv, to_hetero

from ddl_gnn.models import build_model
from ddl_gnn.nn import PAPER_DELTA, DeltaConv

# HeteroConv warns that the author type is never a target (by design here)
pytestmark = pytest.mark.filterwarnings("ignore:There exist node types")


def _hetero_graph(d=8):
    g = torch.Generator().manual_seed(0)
    data = HeteroData()
    data['paper'].x = torch.randn(12, d, generator=g)
    data['author'].x = torch.randn(7, d, generator=g)
    data['paper', 'cites', 'paper'].edge_index = torch.randint(
        0, 12, (2, 30), generator=g)
    data['author', 'writes', 'paper'].edge_index = torch.stack([
        torch.randint(0, 7, (20, ), generator=g),
        torch.randint(0, 12, (20, ), generator=g)])
    return data


@pytest.mark.parametrize('family', ['delta', 'res+'])
def test_to_hetero_is_a_clear_error(family):
    data = _hetero_graph()
    with pytest.raises(TypeError, match='to_hetero') as err:
        to_hetero(build_model(family, 8, 16, 2, 3), data.metadata())
    assert 'to_homogeneous' in str(err.value)
    assert 'HeteroConv' in str(err.value)


def test_bipartite_and_dict_input_are_clear_errors():
    conv = DeltaConv(8)
    data = _hetero_graph()
    pair = (data['author'].x, data['paper'].x)
    ei = data['author', 'writes', 'paper'].edge_index
    with pytest.raises(TypeError, match='bipartite input'):
        conv(pair, ei)
    hetero = HeteroConv({('author', 'writes', 'paper'): DeltaConv(8)})
    with pytest.raises(TypeError, match='DeltaConv does not support '
                       'bipartite'):
        hetero(data.x_dict, data.edge_index_dict)
    with pytest.raises(TypeError, match='x_dict'):
        build_model('delta', 8, 16, 2, 3)(data.x_dict, ei)


def test_delta_conv_on_a_relation_within_one_node_type():
    """HeteroConv calls a relation's conv on ``x`` itself when source and
    target types agree: DeltaConv works there, next to a bipartite PyG conv,
    and gives what a hand-built sum of the two relations gives. (The paper
    layer: HeteroConv hands a ``x0_dict`` to every relation's conv, which
    SAGEConv does not take, so the anchored default needs a relation-wise
    call with ``x0``.)"""
    data = _hetero_graph()
    torch.manual_seed(1)
    delta = DeltaConv(8, **dict(PAPER_DELTA, beta_init=0.5))
    sage = SAGEConv((-1, -1), 8)
    hetero = HeteroConv({('paper', 'cites', 'paper'): delta,
                         ('author', 'writes', 'paper'): sage}, aggr='sum')
    out = hetero(data.x_dict, data.edge_index_dict)
    x = data.x_dict
    by_hand = delta(x['paper'], data['paper', 'cites', 'paper'].edge_index) \
        + sage((x['author'], x['paper']),
               data['author', 'writes', 'paper'].edge_index)
    torch.testing.assert_close(out['paper'], by_hand)


def test_homogeneous_view_of_a_hetero_graph_trains():
    homo = _hetero_graph().to_homogeneous()
    model = build_model('delta', 8, 16, 3, 2)
    out = model(homo.x, homo.edge_index)
    assert out.shape == (19, 2)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters()
               if p.requires_grad)
