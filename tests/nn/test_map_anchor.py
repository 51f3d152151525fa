"""``DeltaConv(map_anchor=True)``: the conv's (identity-mapped) weight and
bias act on the anchored mix, GCNII's order. Oracles: PyG's ``GCN2Conv``
(at beta = 1 along the channel axes the layer is GCNII's), and the dense
per-head operator with numpy (Â from networkx); the fused update against
the layer's torch-op chain."""
import math

import networkx as nx
import numpy as np
import pytest
import torch
from torch_geometric.nn import GCN2Conv

import ddl_gnn.nn.delta_conv as delta_conv_mod
from ddl_gnn.models import build_model
from ddl_gnn.nn import DeltaConv
from ddl_gnn.nn.message_path import message_path_ok

N, D, ALPHA = 9, 8, 0.15


@pytest.fixture
def graph(nx_inputs):
    return nx_inputs(N, 14, D, graph_seed=5, feature_seed=2)


def _layer(**kw):
    torch.manual_seed(0)
    layer = DeltaConv(D, map_anchor=True, alpha=ALPHA, **kw).double().eval()
    with torch.no_grad():   # gates that differ per node and head
        if layer.gate.weight is not None:
            layer.gate.weight.normal_(0, 0.5)
        if layer.conv.bias is not None:
            layer.conv.bias.normal_()
    return layer


def _oracle(G, layer, x, x0, gamma=None):
    """Per node and head h the dense operator (I - beta_h k̂_h k̂_hᵀ) x_h +
    beta_h k̂_h (k̂_hᵀ k_h) with numpy, k = ((1 - alpha) Â x + alpha x0) M
    + b and M = (1 - gamma) I + gamma Wᵀ (Wᵀ without gamma)."""
    A = nx.to_numpy_array(G, nodelist=range(N)) + np.eye(N)
    deg = A.sum(1)
    A_hat = A / np.sqrt(np.outer(deg, deg))
    X, X0 = x.numpy(), x0.numpy()
    W = layer.conv.lin.weight.detach().numpy()
    M = W.T if gamma is None else (1 - gamma) * np.eye(D) + gamma * W.T
    k = ((1 - ALPHA) * A_hat @ X + ALPHA * X0) @ M
    if layer.conv.bias is not None:
        k = k + layer.conv.bias.detach().numpy()
    H = layer.heads
    Wg = layer.gate.weight.detach().numpy()
    bg = layer.gate.bias.detach().numpy()
    beta = 1 / (1 + np.exp(-(np.concatenate([X, X0], 1) @ Wg.T + bg)))
    beta = beta.reshape(N, H)
    out = X.copy()
    size = D // H
    for i in range(N):
        for h in range(H):
            s = slice(h * size, (h + 1) * size)
            kh = k[i, s] / np.sqrt(k[i, s] @ k[i, s] + layer.eps ** 2)
            op = np.eye(size) - beta[i, h] * np.outer(kh, kh)
            out[i, s] = op @ X[i, s] + beta[i, h] * kh * (kh @ k[i, s])
    return torch.from_numpy(out)


@pytest.mark.parametrize('heads', [1, 2, D])
@pytest.mark.parametrize('gamma', [None, 0.3])
def test_is_the_dense_update_of_the_mapped_message(graph, heads, gamma):
    G, x, x0, edge_index = graph
    layer = _layer(heads=heads, identity_map=gamma)
    torch.testing.assert_close(layer(x, edge_index, x0=x0),
                               _oracle(G, layer, x, x0, gamma))


def test_gate_at_one_along_the_axes_is_pyg_gcn2conv(graph):
    """beta = 1, the channel axes, a ReLU and no bias: PyG's GCN2Conv
    (shared weights) followed by its ReLU, GCNII's layer l."""
    _, x, x0, edge_index = graph
    layer_index, theta = 3, 0.5
    gcn2 = GCN2Conv(D, alpha=ALPHA, theta=theta, layer=layer_index).double()
    layer = _layer(heads=D, channel_axes=True, beta_mode='fixed',
                   beta_init=1.0, message_act='relu', bias=False,
                   identity_map=math.log(theta / layer_index + 1))
    with torch.no_grad():
        layer.conv.lin.weight.copy_(gcn2.weight1.t())
    torch.testing.assert_close(layer(x, edge_index, x0=x0),
                               torch.relu(gcn2(x, x0, edge_index)))


def test_differs_from_the_unmapped_anchor(graph):
    """The option changes the function (the anchor goes through W)."""
    _, x, x0, edge_index = graph
    mapped = _layer(heads=2)
    plain = DeltaConv(D, heads=2, alpha=ALPHA).double().eval()
    plain.load_state_dict(mapped.state_dict())
    assert not torch.allclose(mapped(x, edge_index, x0=x0),
                              plain(x, edge_index, x0=x0))


def test_gradients_match_finite_differences(graph):
    _, x, x0, edge_index = graph
    layer = _layer(heads=2, identity_map=0.3)
    xs, x0s = x.clone().requires_grad_(), x0.clone().requires_grad_()
    torch.autograd.gradcheck(
        lambda a, b: layer(a, edge_index, x0=b), (xs, x0s), eps=1e-6,
        atol=1e-5)


@pytest.mark.parametrize('kernels', [True, False])
@pytest.mark.parametrize('heads', [8, 32])
@pytest.mark.parametrize('dropout', [0.0, 0.5])
def test_fused_path_matches_generic_path(monkeypatch, kernels, heads,
                                         dropout):
    """The fused anchored-message update (the mapped message as its conv
    output, no further anchor) against the layer's torch-op chain: values,
    gates and every gradient; with dropout both draw the same mask."""
    if not kernels:
        monkeypatch.setenv('DDL_GNN_CPU_KERNELS', '0')
    torch.manual_seed(0)
    n, d = 120, 32
    layer = DeltaConv(d, map_anchor=True, heads=heads, identity_map=0.3,
                      eps=1e-2, dropout=dropout).double()
    with torch.no_grad():
        layer.gate.weight.normal_(0, 0.2)
        layer.conv.bias.normal_()
    x = torch.randn(n, d, dtype=torch.float64, requires_grad=True)
    x0 = torch.randn(n, d, dtype=torch.float64, requires_grad=True)
    ei = torch.randint(0, n, (2, 500))
    assert message_path_ok(layer, x, None, None)

    def run():
        torch.manual_seed(1)
        out = layer(x, ei, x0=x0)
        weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype)
        grads = torch.autograd.grad((out * weights.view_as(out)).sum(),
                                    [x, x0, *layer.parameters()])
        return out, layer.last_beta, grads

    fast = run()
    monkeypatch.setattr(delta_conv_mod, 'message_path_ok', lambda *a: False)
    slow = run()
    torch.testing.assert_close(fast[0], slow[0], rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(fast[1], slow[1], rtol=1e-11, atol=1e-11)
    names = ['x', 'x0'] + [name for name, _ in layer.named_parameters()]
    for name, a, b in zip(names, fast[2], slow[2]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=name)


def test_model_takes_the_option():
    model = build_model('delta', 5, 16, 3, 2, heads=16, map_anchor=True,
                        theta=0.5)
    assert all(layer.map_anchor for layer in model.layers)
    out = model(torch.randn(12, 5), torch.randint(0, 12, (2, 40)))
    assert out.shape == (12, 2) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(layer.conv.lin.weight.grad is not None
               for layer in model.layers)


@pytest.mark.parametrize('kw', [dict(k_source='conv'),
                                dict(v_source='restore'),
                                dict(dropout_value=True),
                                dict(scale_message=True),
                                dict(conv='sage')])
def test_needs_the_anchored_message_of_a_gcn(kw):
    with pytest.raises(ValueError, match="'map_anchor'"):
        DeltaConv(D, map_anchor=True, **kw)


def test_bad_map_anchor_is_named():
    with pytest.raises(ValueError, match="'map_anchor' must be a bool"):
        DeltaConv(D, map_anchor=1)
