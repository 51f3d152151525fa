"""Sparse adjacency for full-graph training: the transposed CSR matrix and
the GCN normalisation, against dense numpy oracles; every model family on
``adj_t`` against the same model on ``edge_index``."""
import numpy as np
import pytest
import torch

from ddl_gnn.experiment.config import RunConfig
from ddl_gnn.models import MODELS, build_model
from ddl_gnn.nn.adjacency import (normalize_adjacency, to_adj_t,
                                  without_unit_self_loops)


def _graph(N=30, E=90, loops=(0, 3, 7), seed=0):
    """Symmetric random graph with unit self-loops on ``loops`` (as the
    geom-gcn sets have) and one duplicated edge."""
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, N, (2, E), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    ei = torch.cat([ei, ei.flip(0), ei[:, :1]], 1)     # one duplicate
    loop = torch.tensor(loops).repeat(2, 1)
    return torch.cat([ei, loop], 1), N


def _dense_oracle(ei, N, w=None):
    """numpy A with A[target, source] += weight."""
    A = np.zeros((N, N))
    w = np.ones(ei.size(1)) if w is None else w.numpy()
    for (s, t), x in zip(ei.t().tolist(), w):
        A[t, s] += x
    return A


def test_to_adj_t_is_the_transposed_adjacency():
    ei, N = _graph()
    w = torch.rand(ei.size(1), dtype=torch.float64)
    ei_directed = ei[:, ::2]              # not symmetric: orientation shows
    w_directed = w[::2]
    A = to_adj_t(ei_directed, w_directed, N)
    assert A.layout == torch.sparse_csr
    np.testing.assert_allclose(A.to_dense().numpy(),
                               _dense_oracle(ei_directed, N, w_directed))


def test_normalisation_matches_dense_gcn_with_remaining_self_loops():
    ei, N = _graph()
    A = _dense_oracle(ei, N)
    A_hat = A.copy()
    diag = np.diag(A_hat).copy()
    np.fill_diagonal(A_hat, np.where(diag > 0, diag, 1.0))  # one loop each
    d = A_hat.sum(1)
    want = A_hat / np.sqrt(d)[:, None] / np.sqrt(d)[None, :]
    adj, none = normalize_adjacency(to_adj_t(ei, None, N), None, N,
                                    torch.float64)
    assert none is None
    np.testing.assert_allclose(adj.to_dense().numpy(), want, atol=1e-12)
    # The edge_index path (add_remaining_self_loops) is the same operator.
    ei2, w2 = normalize_adjacency(ei, None, N, torch.float64)
    np.testing.assert_allclose(to_adj_t(ei2, w2, N).to_dense().numpy(), want,
                               atol=1e-12)


def test_self_loop_removal_keeps_the_other_entries_csr_and_coo():
    ei, N = _graph()
    A = to_adj_t(ei, None, N)
    want = A.to_dense().clone()
    want.fill_diagonal_(0)
    for adj in (A, A.to_sparse_coo()):
        out = without_unit_self_loops(adj)
        assert out.layout == adj.layout
        torch.testing.assert_close(out.to_dense(), want)
    plain = to_adj_t(ei[:, ei[0] != ei[1]], None, N)
    assert without_unit_self_loops(plain) is plain


@pytest.mark.parametrize('edge_index,weight,N,match', [
    (torch.tensor([[0, 1], [1, 5]]), None, 4, r'outside \[0, 4\).*max 5'),
    (torch.tensor([[0, -1], [1, 2]]), None, None, 'min -1'),
    (torch.tensor([0, 1, 2]), None, 3, 'shape'),
    (torch.tensor([[0., 1.], [1., 0.]]), None, 2, 'int64|long'),
    (torch.tensor([[0, 1], [1, 0]]), torch.ones(3), 2, 'edge_weight'),
])
def test_to_adj_t_bad_input_is_a_clear_error(edge_index, weight, N, match):
    with pytest.raises((ValueError, TypeError, IndexError), match=match):
        to_adj_t(edge_index, weight, N)


def test_weighted_self_loop_is_a_clear_error():
    ei, N = _graph()
    w = torch.ones(ei.size(1))
    w[-1] = 3.0                                       # a loop of weight 3
    with pytest.raises(ValueError, match='self-loops with weights other'):
        normalize_adjacency(to_adj_t(ei, w, N), None, N, torch.float32)
    with pytest.raises(ValueError, match='layout'):
        without_unit_self_loops(to_adj_t(ei, None, N).to_sparse_csc())


@pytest.mark.parametrize('name', sorted(set(MODELS) - {'g2'}))
def test_models_on_adj_t_match_edge_index(name):
    ei, N = _graph()
    x = torch.randn(N, 5, dtype=torch.float64)
    torch.manual_seed(0)
    model = build_model(name, 5, 8, 4, 3).double()
    model.eval()
    outs, grads = [], []
    for graph in (ei, to_adj_t(ei, None, N)):
        model.zero_grad()
        out = model(x, graph)
        out.pow(2).sum().backward()
        outs.append(out.detach())
        grads.append([p.grad.clone() for p in model.parameters()
                      if p.grad is not None])
    torch.testing.assert_close(outs[1], outs[0])
    for a, b in zip(grads[1], grads[0]):
        torch.testing.assert_close(a, b)


def test_g2_refuses_a_sparse_adjacency():
    ei, N = _graph()
    model = build_model('g2', 5, 8, 2, 3)
    with pytest.raises(ValueError, match='edge_index'):
        model(torch.randn(N, 5), to_adj_t(ei, None, N))


def test_run_config_adj_option():
    assert RunConfig('csbm', 'delta', 2).key() == RunConfig(
        'csbm', 'delta', 2, adj='edge_index').key()
    assert RunConfig('csbm', 'delta', 2, adj='csr').key() != RunConfig(
        'csbm', 'delta', 2).key()
    with pytest.raises(ValueError, match="'adj' must be one of"):
        RunConfig('csbm', 'delta', 2, adj='coo')
    with pytest.raises(ValueError, match="needs loader='full'"):
        RunConfig('csbm', 'delta', 2, adj='csr', loader='random')
