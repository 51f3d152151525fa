"""Memory of the fast paths, measured as bytes saved for backward (not
timings), and the CSR adjacency path."""
import pytest
import torch
from torch_geometric.utils import (remove_self_loops, to_torch_csr_tensor,
                                   to_undirected)

from ddl_gnn.models import build_model
from ddl_gnn.ops import saved_tensor_bytes

N, D = 600, 32


@pytest.fixture(scope='module')
def graph():
    g = torch.Generator().manual_seed(0)
    ei = torch.randint(0, N, (2, 3000), generator=g)
    ei = to_undirected(remove_self_loops(ei)[0], num_nodes=N)
    return torch.randn(N, D, generator=g), ei


def _saved(name, L, x, ei, **kw):
    torch.manual_seed(0)
    model = build_model(name, D, D, L, 5, **kw)
    return saved_tensor_bytes(lambda: model(x, ei).sum())[1]


def _per_layer(name, x, ei, **kw):
    return (_saved(name, 6, x, ei, **kw) - _saved(name, 2, x, ei, **kw)) / 4


def test_delta_layers_save_about_what_a_residual_layer_saves(graph):
    x, ei = graph
    res = _per_layer('res', x, ei)
    res_ln = _per_layer('res', x, ei, norm='layer_norm')
    paper = _per_layer('delta-paper', x, ei)
    # res keeps the conv input and the ReLU output: 2 x [N, d] floats.
    assert res == pytest.approx(2 * N * D * 4, rel=0.05)
    # the paper layer keeps the state and the conv output (k) + per-node
    # scalars.
    assert paper <= 1.1 * res and paper < res_ln
    # the default (8 heads, anchored messages) keeps the conv input and
    # output, the anchored direction and per-head scalars (gate, norms,
    # values: [N, 8] each): at most 3 [N, d] + 4 [N, heads] floats.
    delta = _per_layer('delta', x, ei)
    assert delta <= 3 * N * D * 4 + 4 * N * 8 * 4
    # d_v = 4: the state is 4x wider; the cost stays linear in d_v:
    # X (4 N d) + k (N d) + the layer's read compress(X) (N d, made by the
    # previous layer's fused kernel and kept instead of recomputed) +
    # O(d_v) per-node scalars (v, s, beta, rho).
    delta4 = _per_layer('delta-paper', x, ei, d_v=4)
    assert delta4 <= (4 + 2) * N * D * 4 + N * 4 * (5 * 4)


def test_default_layer_with_heads_of_eight_saves_what_res_saves():
    # d = 64: float heads of eight, whose per-head scalars (rho2, n, q) the
    # fused backward rebuilds; the layer keeps the conv's input and output
    # and its gates [N, 8]: about a res layer (the ReLU output and the
    # conv input), and 1.25x it when the scalars were kept.
    from ddl_gnn.ops import cpu_kernels
    k = cpu_kernels.kernels()
    if k is None or not k.message_gate_in_rows(torch.zeros(1, 64), 8):
        pytest.skip('no AVX2 build of the fused CPU kernels here')
    g = torch.Generator().manual_seed(1)
    ei = torch.randint(0, N, (2, 3000), generator=g)
    ei = to_undirected(remove_self_loops(ei)[0], num_nodes=N)
    x = torch.randn(N, 64, generator=g)

    def per_layer(name):
        def saved(L):
            torch.manual_seed(0)
            model = build_model(name, 64, 64, L, 5)
            return saved_tensor_bytes(lambda: model(x, ei).sum())[1]
        return (saved(6) - saved(2)) / 4

    res, delta = per_layer('res'), per_layer('delta')
    assert res == pytest.approx(2 * N * 64 * 4, rel=0.1)
    assert delta <= 1.1 * res


@pytest.mark.parametrize('name', ['res', 'delta', 'gcnii', 'res+'])
def test_checkpoint_saves_less(graph, name):
    x, ei = graph
    full = _saved(name, 16, x, ei)
    ckpt = _saved(name, 16, x, ei, checkpoint=True)
    assert ckpt < 0.5 * full


@pytest.mark.parametrize('name', ['plain', 'res', 'res+', 'gcnii', 'delta'])
def test_csr_adjacency_equals_edge_index(graph, name):
    x, ei = graph
    adj = to_torch_csr_tensor(ei, size=(N, N))  # symmetric: adj == adj_t
    torch.manual_seed(0)
    model = build_model(name, D, D, 3, 5)
    outs = []
    for g in (ei, adj):
        model.zero_grad()
        out = model(x, g)
        out.pow(2).sum().backward()
        outs.append((out, [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(outs[0][0], outs[1][0], atol=1e-5, rtol=1e-4)
    for a, b in zip(outs[0][1], outs[1][1]):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)


def test_dropout_keeps_no_mask_for_backward(graph):
    # hashed dropout regenerates its mask from the seed in backward: a res
    # layer with dropout saves what it saves without; the default delta
    # layer keeps its dropped read (the conv's and the gate's input) as the
    # generic path does, one [N, d] more
    from ddl_gnn.ops.dropout import set_hash_dropout
    x, ei = graph
    set_hash_dropout(True)
    try:
        for name in ('res', 'gcnii'):
            assert _per_layer(name, x, ei, dropout=0.5) == pytest.approx(
                _per_layer(name, x, ei), rel=0.01)
        assert _per_layer('delta', x, ei, dropout=0.5) <= (
            _per_layer('delta', x, ei) + N * D * 4 * 1.01)
        set_hash_dropout(False)          # torch's keeps an [N, d] mask
        assert _per_layer('res', x, ei, dropout=0.5) == pytest.approx(
            _per_layer('res', x, ei) + N * D * 4, rel=0.01)
    finally:
        set_hash_dropout(None)
