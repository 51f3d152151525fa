"""PyG-style tests of the paper layer (``DeltaConv(d, **PAPER_DELTA)``) and
the gate; the default layer is tested in test_delta_default.py."""
import pytest
import torch
from torch_geometric.testing import assert_module
from torch_geometric.utils import to_torch_csc_tensor

from ddl_gnn.nn import PAPER_DELTA, BetaGate, DeltaConv
from ddl_gnn.nn.gates import BETA_INIT
from ddl_gnn.ops import delta_update_reference

# The paper's mapping at the package's gate start beta_0.
PAPER = dict(PAPER_DELTA, beta_init=BETA_INIT)


def paper(channels, **kw):
    return DeltaConv(channels, **{**PAPER, **kw})


@pytest.fixture
def graph():
    torch.manual_seed(12345)
    edge_index = torch.tensor([[0, 0, 0, 1, 2, 3], [1, 2, 3, 0, 0, 0]])
    return torch.randn(4, 16), edge_index


def test_repr():
    assert repr(paper(16)) == ('DeltaConv(16, conv=gcn, d_v=1, '
                               'beta_init=0.1, beta_mode=learned)')
    assert repr(paper(8, conv='sage', d_v=4, beta_init=1.0,
                          beta_mode='fixed', erase=False)) == (
        'DeltaConv(8, conv=sage, d_v=4, beta_init=1, beta_mode=fixed, '
        'erase=False)')


@pytest.mark.parametrize('conv', ['gcn', 'sage', 'gat', 'gin', 'gen'])
def test_assert_module_layouts(graph, conv):
    x, edge_index = graph
    layer = paper(16, conv=conv)
    layouts = [torch.sparse_csc, torch.sparse_coo] if conv != 'gat' else []
    assert_module(layer, x, edge_index, expected_size=(4, 16),
                  test_sparse_layouts=layouts, atol=1e-6)


def test_tensor_and_sparse_adjacency_agree_with_weights(graph):
    x, edge_index = graph
    w = torch.rand(edge_index.size(1))
    layer = paper(16)
    out = layer(x, edge_index, w)
    adj_t = to_torch_csc_tensor(edge_index, w, size=(4, 4)).t()
    torch.testing.assert_close(layer(x, adj_t), out, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('d_v', [1, 3])
def test_node_permutation_equivariance(d_v):
    torch.manual_seed(0)
    N = 12
    x = torch.randn(N, 8, d_v) if d_v > 1 else torch.randn(N, 8)
    edge_index = torch.randint(0, N, (2, 40))
    layer = paper(8, d_v=d_v).eval()
    perm = torch.randperm(N)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(N)
    out = layer(x, edge_index)
    out_p = layer(x[perm], inv[edge_index])
    torch.testing.assert_close(out_p, out[perm], atol=1e-6, rtol=1e-5)


def test_edge_weight_none_equals_unit_weights_and_weights_matter(graph):
    x, edge_index = graph
    layer = paper(16)
    ones = torch.ones(edge_index.size(1))
    torch.testing.assert_close(layer(x, edge_index),
                               layer(x, edge_index, ones))
    w = torch.tensor([0.1, 2.0, 0.5, 1.0, 3.0, 0.2])
    assert not torch.allclose(layer(x, edge_index, w), layer(x, edge_index))


def test_forward_is_the_delta_rule(graph):
    """Recompute the layer by hand: context, conv, generators, dense op."""
    x, edge_index = graph
    layer = paper(16, d_v=1, beta_init=0.7).eval()
    with torch.no_grad():
        layer.gate.weight.normal_()
    c = layer.norm(x)
    h = layer.conv(c, edge_index)
    beta = 2 * torch.sigmoid(c @ layer.gate.weight + layer.gate.bias)
    v = layer.v_lin(c).squeeze(-1)
    expected = delta_update_reference(x, h, beta, v)
    torch.testing.assert_close(layer(x, edge_index), expected)
    torch.testing.assert_close(layer.last_beta, beta.detach())


@pytest.mark.parametrize('mode,beta0', [('learned', 0.05), ('learned', 1.0),
                                        ('learned', 2.0), ('learned01', 0.5),
                                        ('fixed', 0.0), ('fixed', 2.0)])
def test_beta_at_init_equals_beta_init(graph, mode, beta0):
    x, edge_index = graph
    layer = paper(16, beta_init=beta0, beta_mode=mode)
    layer(x, edge_index)
    torch.testing.assert_close(layer.last_beta, torch.full((4, ), beta0),
                               atol=1e-5, rtol=0)


def test_fixed_beta_zero_is_identity(graph):
    x, edge_index = graph
    layer = paper(16, beta_init=0.0, beta_mode='fixed')
    torch.testing.assert_close(layer(x, edge_index), x)


def test_reset_parameters_restores_init(graph):
    x, edge_index = graph
    layer = paper(16, beta_init=0.3)
    opt = torch.optim.SGD(layer.parameters(), lr=1.0)
    layer(x, edge_index).pow(2).sum().backward()
    opt.step()
    layer(x, edge_index)
    assert not torch.allclose(layer.last_beta, torch.full((4, ), 0.3))
    layer.reset_parameters()
    assert layer.last_beta is None
    layer(x, edge_index)
    torch.testing.assert_close(layer.last_beta, torch.full((4, ), 0.3))


@pytest.mark.parametrize('kw', [dict(k_source='proj'),
                                dict(beta_source='both'),
                                dict(v_source='conv'), dict(erase=False),
                                dict(norm='rms_norm'), dict(norm=None)])
def test_generator_variants_run_and_backprop(graph, kw):
    x, edge_index = graph
    layer = paper(16, d_v=2, **kw)
    X = x.unsqueeze(-1).repeat(1, 1, 2).requires_grad_()
    out = layer(X, edge_index)
    out.sum().backward()
    assert out.shape == (4, 16, 2) and torch.isfinite(X.grad).all()


def test_gate_ranges():
    c = torch.randn(100, 8) * 50
    for mode, hi in (('learned', 2.0), ('learned01', 1.0)):
        gate = BetaGate(8, 0.5, mode)
        with torch.no_grad():
            gate.weight.normal_()
        b = gate(c)
        assert b.min() >= 0 and b.max() <= hi


@pytest.mark.parametrize('kwargs,err,match', [
    (dict(beta_init=2.5), ValueError, r"'beta_init' must lie in \[0, 2\]"),
    (dict(beta_init=1.5, beta_mode='learned01'), ValueError,
     r"'beta_init' must lie in \[0, 1\]"),
    (dict(beta_mode='free'), ValueError, "'beta_mode' must be one of"),
    (dict(k_source='x'), ValueError, "'k_source' must be one of"),
    (dict(conv='cheb'), ValueError, "'conv' must be one of"),
    (dict(d_v=0), ValueError, "'d_v' must be a positive int"),
])
def test_bad_constructor_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        paper(16, **kwargs)


def test_bad_inputs_name_the_problem(graph):
    x, edge_index = graph
    layer = paper(16, d_v=1)
    with pytest.raises(ValueError, match=r"'x' must have shape \[N, 16\]"):
        layer(torch.randn(4, 15), edge_index)
    with pytest.raises(ValueError, match=r"'x' must have shape \[N, 8, d_v=2"):
        paper(8, d_v=2)(torch.randn(4, 8, 3), edge_index)
    with pytest.raises(ValueError, match=r"'edge_index' must have shape"):
        layer(x, edge_index.t())
    with pytest.raises(IndexError, match=r"outside \[0, 4\)"):
        layer(x, edge_index + 1)
    with pytest.raises(TypeError, match="must have dtype torch.long"):
        layer(x, edge_index.float())
    with pytest.raises(ValueError, match="'edge_weight' must have shape"):
        layer(x, edge_index, torch.ones(3))
    with pytest.raises(ValueError, match="contains NaN"):
        layer(torch.full((4, 16), float('nan')), edge_index)


def test_state_compressor_is_the_weighted_column_sum():
    from ddl_gnn.nn import StateCompressor
    X = torch.randn(5, 6, 3, dtype=torch.float64, requires_grad=True)
    comp = StateCompressor(6, 3).double()
    torch.testing.assert_close(comp(X), X.mean(-1))      # exact mean at init
    with torch.no_grad():
        comp.weight.normal_()
    torch.testing.assert_close(comp(X), (X * comp.weight).sum(-1))
    assert torch.autograd.gradcheck(comp, (X, ))


def test_compress_state_gradients_match_the_plain_expression():
    """The custom backward of compress_state against autograd of the plain
    weighted sum, both inputs, first and second order (float64)."""
    from ddl_gnn.nn.compress import compress_state
    g = torch.Generator().manual_seed(3)
    X = torch.randn(7, 5, 4, generator=g, dtype=torch.float64,
                    requires_grad=True)
    w = torch.randn(5, 4, generator=g, dtype=torch.float64,
                    requires_grad=True)
    gout = torch.randn(7, 5, generator=g, dtype=torch.float64)
    fast = torch.autograd.grad((compress_state(X, w) * gout).sum(), (X, w))
    ref = torch.autograd.grad(((X * w).sum(-1) * gout).sum(), (X, w))
    for a, b in zip(fast, ref):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradcheck(compress_state, (X, w))
    assert torch.autograd.gradgradcheck(compress_state, (X, w))
