"""The default DeltaConv / DeltaGNN (anchored messages, 8 heads, beta in
(0, 1), no norm) against a numpy oracle built from the docstring's math,
PyG's layer checks, and the old behaviour one flag away."""
import networkx as nx
import numpy as np
import pytest
import torch
from torch_geometric.testing import assert_module

from ddl_gnn.models import PAPER_DELTA, DeltaGNN, build_model
from ddl_gnn.nn import DeltaConv
from ddl_gnn.nn.gates import BETA_INIT

# The default, spelled out: the configuration the depth study selected.
SELECTED = dict(v_source='message', k_source='anchor', beta_source='anchor',
                beta_mode='learned01', norm=None, beta_init=0.1, heads=8)
N, D, H = 9, 16, 8


@pytest.fixture
def graph(nx_inputs):
    return nx_inputs(N, 15, D, graph_seed=2, feature_seed=5)


def _perturbed(layer):
    with torch.no_grad():   # gates that differ per node and head, a bias
        layer.gate.weight.normal_(0, 0.5)
        layer.conv.bias.normal_()
    return layer


def oracle(G, layer, x, x0, alpha=0.1, eps=1e-5, gamma=None, act=None):
    """The docstring's update with numpy: Â from networkx, per node and
    head the dense operator (I - beta k̂ k̂ᵀ) X + beta k̂ v; with ``gamma``
    the conv weight is GCNII's (1 - gamma) I + gamma W."""
    A = nx.to_numpy_array(G, nodelist=range(N)) + np.eye(N)
    d = A.sum(1)
    A_hat = A / np.sqrt(np.outer(d, d))
    X, X0 = x.numpy(), x0.numpy()
    W = layer.conv.lin.weight.detach().double().numpy()
    b = layer.conv.bias.detach().double().numpy()
    if gamma is not None:
        W = (1 - gamma) * np.eye(D) + gamma * W
    m = A_hat @ X @ W.T + b
    k = (1 - alpha) * m + alpha * X0
    if act is not None:
        k = act(k)
    Wg = layer.gate.weight.detach().double().numpy()      # [H, 2D]
    bg = layer.gate.bias.detach().double().numpy()
    beta = 1 / (1 + np.exp(-(np.concatenate([X, X0], 1) @ Wg.T + bg)))
    out = np.empty_like(X)
    w = D // H
    for i in range(N):
        for h in range(H):
            s = slice(h * w, (h + 1) * w)
            kh = k[i, s] / np.sqrt(k[i, s] @ k[i, s] + eps ** 2)
            v = kh @ k[i, s]
            op = np.eye(w) - beta[i, h] * np.outer(kh, kh)
            out[i, s] = op @ X[i, s] + beta[i, h] * kh * v
    return torch.from_numpy(out), torch.from_numpy(beta)


def test_default_layer_is_the_documented_update(graph):
    G, x, x0, edge_index = graph
    torch.manual_seed(0)
    layer = _perturbed(DeltaConv(D).double().eval())
    want, beta = oracle(G, layer, x, x0)
    torch.testing.assert_close(layer(x, edge_index, x0=x0), want)
    torch.testing.assert_close(layer.last_beta, beta)


@pytest.mark.parametrize('eps', [1e-5, 0.01, 0.5])
def test_eps_is_the_directions_guard(graph, eps):
    """``eps`` of DeltaConv (and of every layer of DeltaGNN) is the guard
    of k̂ = k / sqrt(|k|² + eps²) in the oracle's update."""
    G, x, x0, edge_index = graph
    torch.manual_seed(0)
    layer = _perturbed(DeltaConv(D, eps=eps).double().eval())
    want, _ = oracle(G, layer, x, x0, eps=eps)
    torch.testing.assert_close(layer(x, edge_index, x0=x0), want)
    assert {lay.eps for lay in DeltaGNN(4, D, 3, 2, eps=eps).layers} == {eps}
    for bad in (-1e-3, float('nan'), 'small', True):
        with pytest.raises(ValueError, match="'eps' must be a finite"):
            DeltaConv(D, eps=bad)


@pytest.mark.parametrize('name,act', [
    ('relu', lambda a: np.maximum(a, 0)), ('tanh', np.tanh)])
def test_message_act_applies_to_the_anchored_message(graph, name, act):
    G, x, x0, edge_index = graph
    torch.manual_seed(0)
    layer = _perturbed(DeltaConv(D, message_act=name).double().eval())
    want, _ = oracle(G, layer, x, x0, act=act)
    torch.testing.assert_close(layer(x, edge_index, x0=x0), want)
    assert 'message_act=' + name in repr(layer)
    with pytest.raises(ValueError, match="'message_act' must be an"):
        DeltaConv(D, message_act=3)
    with pytest.raises(ValueError, match="'message_act' 'foo' is not an"):
        DeltaConv(D, message_act='foo')
    with pytest.raises(ValueError, match="needs k_source='anchor'"):
        DeltaConv(D, k_source='conv', message_act=name)


@pytest.mark.parametrize('gamma', [0.0, 0.3, 1.0])
def test_identity_mapped_weight_is_gcnii_s(graph, gamma):
    G, x, x0, edge_index = graph
    torch.manual_seed(0)
    layer = _perturbed(DeltaConv(D, identity_map=gamma).double().eval())
    want, _ = oracle(G, layer, x, x0, gamma=gamma)
    torch.testing.assert_close(layer(x, edge_index, x0=x0), want)


def test_theta_sets_gcnii_s_schedule_and_bad_values_are_named():
    import math
    model = DeltaGNN(7, D, 5, 3, theta=0.5)
    got = [lay.identity_map for lay in model.layers]
    assert got == pytest.approx([math.log(0.5 / l + 1) for l in range(1, 6)])
    assert DeltaGNN(7, D, 2, 3).layers[0].identity_map is None
    with pytest.raises(ValueError, match="'identity_map' must lie in"):
        DeltaConv(D, identity_map=1.5)
    with pytest.raises(ValueError, match="mixes the weight of a GCNConv"):
        DeltaConv(D, conv='sage', identity_map=0.5)
    for bad in (0, 2.0, 'high', True):
        with pytest.raises(ValueError, match=r"'theta' must be a number in"):
            DeltaGNN(7, D, 2, 3, theta=bad)
    DeltaGNN(7, D, 2, 3, theta=1.5)       # GCNII's largest published value
    with pytest.raises(ValueError, match="'identity_map' must lie in"):
        DeltaConv(D, identity_map='0.5')


@pytest.mark.parametrize('gamma', [None, 0.4])
def test_default_gradients_match_the_generic_path(graph, monkeypatch, gamma):
    """Every gradient (state, input state, all parameters) of the fused
    message path equals autograd's through the generic path."""
    import ddl_gnn.nn.delta_conv as dc
    _, x, x0, edge_index = graph
    torch.manual_seed(0)
    a = _perturbed(DeltaConv(D, identity_map=gamma).double())
    b = DeltaConv(D, **SELECTED, identity_map=gamma).double()
    b.load_state_dict(a.state_dict())
    assert dc.message_path_ok(a, x, None, None)   # the fused path is taken
    grads = []
    for layer in (a, b):
        if layer is b:
            monkeypatch.setattr(dc, 'message_path_ok', lambda *args: False)
        X, X0 = x.clone().requires_grad_(), x0.clone().requires_grad_()
        out = layer(X, edge_index, x0=X0)
        (out * torch.cos(out)).sum().backward()
        grads.append([X.grad, X0.grad] + [p.grad for p in layer.parameters()])
    assert all(g is not None for g in grads[0])
    for ga, gb in zip(*grads):
        torch.testing.assert_close(ga, gb)


def test_default_is_the_selected_configuration(graph):
    _, x, x0, edge_index = graph
    torch.manual_seed(0)
    a = DeltaConv(D)
    torch.manual_seed(0)
    b = DeltaConv(D, **SELECTED)
    assert repr(a) == repr(b)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(),
                                  b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)
    torch.manual_seed(1)
    m1 = DeltaGNN(7, D, 4, 3)
    torch.manual_seed(1)
    m2 = DeltaGNN(7, D, 4, 3, **SELECTED)
    xin, ei = torch.randn(N, 7), edge_index
    torch.testing.assert_close(m1.eval()(xin, ei), m2.eval()(xin, ei))
    assert m1.out_norm is None and all(lay.norm is None for lay in m1.layers)


def test_gates_start_at_beta_init_per_head(graph):
    _, x, x0, edge_index = graph
    layer = DeltaConv(D)
    layer(x.float(), edge_index, x0=x0.float())
    assert layer.last_beta.shape == (N, H)
    torch.testing.assert_close(layer.last_beta,
                               torch.full((N, H), BETA_INIT))


def test_pyg_layer_checks_with_the_input_state(graph):
    _, x, x0, edge_index = graph
    layer = DeltaConv(D).float()
    assert_module(layer, x.float(), edge_index, x0=x0.float(),
                  expected_size=(N, D),
                  test_sparse_layouts=[torch.sparse_csc, torch.sparse_coo],
                  atol=1e-5)


def test_node_permutation_equivariance(graph):
    _, x, x0, edge_index = graph
    layer = _perturbed(DeltaConv(D).double().eval())
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(3))
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(N)
    out = layer(x, edge_index, x0=x0)
    torch.testing.assert_close(layer(x[perm], inv[edge_index], x0=x0[perm]),
                               out[perm])


def test_default_needs_the_input_state_and_a_divisible_width(graph):
    _, x, _, edge_index = graph
    with pytest.raises(ValueError, match='pass x0'):
        DeltaConv(D)(x.float(), edge_index)
    with pytest.raises(ValueError, match="'heads' must be a positive int "
                                         "dividing channels = 12"):
        DeltaConv(12)
    DeltaConv(12, heads=4)   # a width that 8 does not divide: fewer heads


def test_paper_layer_is_one_flag_away():
    paper = build_model('delta-paper', 7, D, 3, 2)
    for lay in paper.layers:
        assert (lay.k_source, lay.beta_source, lay.v_source, lay.heads) == (
            'conv', 'context', 'context', 1)
        assert lay.gate.beta_mode == 'learned' and lay.gate.beta_init == 1.0
        assert isinstance(lay.norm, torch.nn.LayerNorm)
    same = DeltaGNN(7, D, 3, 2, **PAPER_DELTA)
    assert repr(same.layers[0]) == repr(paper.layers[0])
    wo = build_model('delta-paper-write-only', 7, D, 3, 2)
    assert not any(lay.erase for lay in wo.layers)
    assert [repr(lay) for lay in build_model('delta', 7, D, 3, 2).layers] \
        == [repr(lay) for lay in DeltaGNN(7, D, 3, 2, **SELECTED).layers]
