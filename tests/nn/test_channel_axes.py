"""``DeltaConv(channel_axes=True)``: one channel per head, each head's
direction its channel's axis. Oracles: the dense operator per node and
channel with numpy (Â from networkx), the guarded layer where no message
vanishes, and GCNII's step at beta = 1."""
import networkx as nx
import numpy as np
import pytest
import torch

from ddl_gnn.models import build_model
from ddl_gnn.nn import DeltaConv

N, D = 9, 8


@pytest.fixture
def graph(nx_inputs):
    return nx_inputs(N, 14, D, graph_seed=4, feature_seed=3)


def _layer(**kw):
    torch.manual_seed(0)
    layer = DeltaConv(D, heads=D, channel_axes=True, **kw).double().eval()
    with torch.no_grad():   # gates that differ per node and channel
        layer.gate.weight.normal_(0, 0.5)
        layer.conv.bias.normal_()
    return layer


def _oracle(G, layer, x, x0, alpha=0.1, act=None):
    """Per node and channel c the dense operator (I - beta e_c e_cᵀ) x +
    beta e_c k_c with numpy: the axis as the direction, the anchored
    message k = (1 - alpha) Â x Wᵀ + b + alpha x0 as the value."""
    A = nx.to_numpy_array(G, nodelist=range(N)) + np.eye(N)
    deg = A.sum(1)
    A_hat = A / np.sqrt(np.outer(deg, deg))
    X, X0 = x.numpy(), x0.numpy()
    W = layer.conv.lin.weight.detach().numpy()
    b = layer.conv.bias.detach().numpy()
    k = (1 - alpha) * (A_hat @ X @ W.T + b) + alpha * X0
    if act is not None:
        k = act(k)
    if layer.gate.weight is None:     # beta_mode='fixed'
        beta = np.full((N, D), layer.gate.beta_init)
    else:
        Wg = layer.gate.weight.detach().numpy()
        bg = layer.gate.bias.detach().numpy()
        beta = 1 / (1 + np.exp(-(np.concatenate([X, X0], 1) @ Wg.T + bg)))
    out = np.zeros_like(X)
    for i in range(N):
        for c in range(D):
            e = np.eye(D)[c]
            op = np.eye(D) - beta[i, c] * np.outer(e, e)
            out[i] += (op @ X[i])[c] * e + beta[i, c] * e * k[i, c]
    return torch.from_numpy(out), k


def test_is_the_axis_update(graph):
    G, x, x0, edge_index = graph
    layer = _layer(message_act='relu')
    want, k = _oracle(G, layer, x, x0, act=lambda u: np.maximum(u, 0))
    assert (k == 0).any()       # the ReLU zeroes some messages
    torch.testing.assert_close(layer(x, edge_index, x0=x0), want)


def test_equals_the_guarded_layer_where_no_message_vanishes(graph):
    G, x, x0, edge_index = graph
    axes = _layer()
    guarded = DeltaConv(D, heads=D, eps=1e-9).double().eval()
    guarded.load_state_dict(axes.state_dict())
    torch.testing.assert_close(axes(x, edge_index, x0=x0),
                               guarded(x, edge_index, x0=x0))


def test_writes_zero_where_the_guard_keeps_the_state(graph):
    """A ReLU'd message of 0: along the axis the layer writes 0 (the state
    moves to (1 - beta) x there); the guarded layer keeps x."""
    G, x, x0, edge_index = graph
    axes = _layer(message_act='relu')
    guarded = DeltaConv(D, heads=D, message_act='relu').double().eval()
    guarded.load_state_dict(axes.state_dict())
    _, k = _oracle(G, axes, x, x0, act=lambda u: np.maximum(u, 0))
    zero = torch.from_numpy(k == 0)
    beta = axes.gate(torch.cat([x, x0], -1))
    out_a = axes(x, edge_index, x0=x0)
    out_g = guarded(x, edge_index, x0=x0)
    torch.testing.assert_close(out_a[zero], ((1 - beta) * x)[zero])
    torch.testing.assert_close(out_g[zero], x[zero])


def test_gate_at_one_is_a_gcnii_step(graph):
    """beta = 1 everywhere (fixed): x' = relu((1 - a) Â x W + a x0), the
    state replaced by the anchored, activated message."""
    G, x, x0, edge_index = graph
    layer = DeltaConv(D, heads=D, channel_axes=True, beta_mode='fixed',
                      beta_init=1.0, message_act='relu').double().eval()
    _, k = _oracle(G, layer, x, x0, act=lambda u: np.maximum(u, 0))
    torch.testing.assert_close(layer(x, edge_index, x0=x0),
                               torch.from_numpy(k))


def test_gradients_match_the_torch_op_chain(graph):
    G, x, x0, edge_index = graph
    layer = _layer(message_act='relu')
    xs = x.clone().requires_grad_()
    torch.autograd.gradcheck(
        lambda t: layer(t, edge_index, x0=x0), (xs,), eps=1e-6, atol=1e-5)


def test_model_takes_the_option():
    model = build_model('delta', 5, 16, 3, 2, heads=16, channel_axes=True)
    assert all(layer.channel_axes for layer in model.layers)
    out = model(torch.randn(12, 5), torch.randint(0, 12, (2, 40)))
    assert out.shape == (12, 2) and torch.isfinite(out).all()


@pytest.mark.parametrize('kw', [dict(heads=4), dict(heads=D, d_v=2),
                                dict(heads=D, v_source='diffuse'),
                                dict(heads=D, erase=False),
                                dict(heads=D, k_source='conv'),
                                dict(heads=D, scale_message=True)])
def test_needs_one_channel_per_head_and_the_message(kw):
    with pytest.raises(ValueError, match="'channel_axes'"):
        DeltaConv(D, channel_axes=True, **kw)


def test_bad_channel_axes_is_named():
    with pytest.raises(ValueError, match="'channel_axes' must be a bool"):
        DeltaConv(D, heads=D, channel_axes=1)
