"""The fused channel-axes update (nn/axes_path.py, with the kernels of
ops/csrc/axes_cpu.cpp and the C++ autograd function of
ops/csrc/axes_function.cpp) against the plain chain, the Python function
and the layer's generic path: values and every gradient, fused kernels on
and off, float64 gradcheck and gradgradcheck."""
import pytest
import torch

import ddl_gnn.nn.axes_path as axes_path
import ddl_gnn.nn.delta_conv as delta_conv_mod
from ddl_gnn.experiment.recommended import recommended_settings
from ddl_gnn.models import build_model
from ddl_gnn.nn import DeltaConv
from ddl_gnn.nn.axes_path import (axes_path_ok, channel_axes_reference,
                                  channel_axes_update)
from ddl_gnn.ops import cpu_kernels

NAMES = ['x', 'u', 'c', 'x0', 'W', 'b']
AXES = dict(heads=16, channel_axes=True, k_source='anchor',
            v_source='message', beta_source='anchor', norm=None)


def _inputs(N, d, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, u, c, x0 = (torch.randn(N, d, generator=g, dtype=dtype)
                   for _ in range(4))
    u[:3] = 0.0                 # ReLU's kink: act'(0) = 0, as torch's
    W = 0.3 * torch.randn(d, 2 * d, generator=g, dtype=dtype)
    b = torch.randn(d, generator=g, dtype=dtype)
    return [t.requires_grad_() for t in (x, u, c, x0, W, b)]


@pytest.mark.parametrize('relu', [True, False])
@pytest.mark.parametrize('scale', [2.0, 1.0])
def test_function_matches_reference(path, relu, scale):
    ins = _inputs(300, 16)
    out, beta = channel_axes_update(*ins, scale, relu)
    ref = channel_axes_reference(*ins, scale, relu)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    x, u, c, x0, W, b = ins
    # the gates from the concatenated context, independently
    want = scale * torch.sigmoid(torch.cat([c, x0], 1) @ W.t() + b)
    torch.testing.assert_close(beta, want.detach())
    assert not beta.requires_grad
    w = torch.randn_like(ref)
    got = torch.autograd.grad((out * w).sum(), ins)
    exp = torch.autograd.grad((ref * w).sum(), ins)
    for name, a, e in zip(NAMES, got, exp):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize('frozen', [(), ('u', 'c', 'x0'), ('W', 'b')],
                         ids=['all', 'x-W-b', 'x-u-c-x0'])
def test_float32_matches_float64_reference(path, frozen):
    ins = _inputs(200, 64, dtype=torch.float32, seed=1)
    for i, name in enumerate(NAMES):
        if name in frozen:
            ins[i] = ins[i].detach()
    out, _ = channel_axes_update(*ins)
    ref_ins = [t.detach().double().requires_grad_(t.requires_grad)
               for t in ins]
    ref = channel_axes_reference(*ref_ins, 2.0, True)
    torch.testing.assert_close(out.double(), ref.detach(), rtol=1e-5,
                               atol=1e-5)
    live = [i for i, t in enumerate(ins) if t.requires_grad]
    w = torch.randn(200, 64, dtype=torch.float64)
    got = torch.autograd.grad((out * w.float()).sum(), [ins[i] for i in live])
    exp = torch.autograd.grad((ref * w).sum(), [ref_ins[i] for i in live])
    for i, a, e in zip(live, got, exp):
        torch.testing.assert_close(a.double(), e, rtol=1e-4,
                                   atol=1e-4 * e.abs().max().item(),
                                   msg=NAMES[i])


@pytest.mark.parametrize('relu', [True, False])
def test_gradcheck_and_gradgradcheck(path, relu):
    ins = _inputs(8, 4, seed=2)
    with torch.no_grad():            # no u at ReLU's kink for finite
        ins[1].abs_().add_(0.1)      # differences; signs mixed below
        ins[1][::2].neg_()

    def fn(*t):
        return channel_axes_update(*t, 2.0, relu)[0]
    assert torch.autograd.gradcheck(fn, ins)
    assert torch.autograd.gradgradcheck(fn, ins)


def test_bad_shapes_are_named():
    x, u, c, x0, W, b = _inputs(10, 4)
    with pytest.raises(ValueError, match="'c' must have the state's shape"):
        channel_axes_update(x, u, c[:5], x0, W, b)
    with pytest.raises(ValueError, match=r"gate weight \[d, 2d\]"):
        channel_axes_update(x, u, c, x0, W[:, :4], b)
    with pytest.raises(ValueError, match="'W' must have the state's dtype"):
        channel_axes_update(x, u, c, x0, W.float(), b)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('kw', [dict(map_anchor=True, identity_map=0.3,
                                     bias=False, message_act='relu'),
                                dict(message_act='relu'), dict()],
                         ids=['gcnii-order', 'relu', 'identity'])
@pytest.mark.parametrize('dropout', [0.0, 0.5])
def test_layer_fused_path_matches_generic_path(path, monkeypatch, dtype, kw,
                                              dropout):
    torch.manual_seed(0)
    N, d = 150, 16
    layer = DeltaConv(d, **AXES, dropout=dropout, beta_init=0.9,
                      **kw).to(dtype)
    with torch.no_grad():
        layer.gate.weight.normal_(0, 0.3)
    x = torch.randn(N, d, dtype=dtype, requires_grad=True)
    x0 = torch.randn(N, d, dtype=dtype, requires_grad=True)
    ei = torch.randint(0, N, (2, 600))
    assert axes_path_ok(layer, x, None)

    def run():
        torch.manual_seed(1)            # the same dropout mask both times
        out = layer(x, ei, x0=x0)
        w = torch.linspace(-1, 1, out.numel(), dtype=dtype).view_as(out)
        return out, layer.last_beta, torch.autograd.grad(
            (out * w).sum(), [x, x0, *layer.parameters()])

    fast = run()
    monkeypatch.setattr(delta_conv_mod, 'axes_path_ok', lambda *a: False)
    slow = run()
    tol = (dict(rtol=1e-11, atol=1e-11) if dtype == torch.float64
           else dict(rtol=1e-4, atol=1e-5))
    torch.testing.assert_close(fast[0], slow[0], **tol)
    torch.testing.assert_close(fast[1], slow[1], **tol)
    names = ['x', 'x0'] + [n for n, _ in layer.named_parameters()]
    for name, a, b in zip(names, fast[2], slow[2]):
        torch.testing.assert_close(a, b, **tol, msg=name)


def test_recommended_cora_layer_takes_the_fused_path():
    kw = recommended_settings('cora', 'delta')['model_kwargs']
    model = build_model('delta', 8, 64, 3, 2, **kw)
    x = torch.randn(5, 64)
    assert all(axes_path_ok(layer, x, None) for layer in model.layers)


@pytest.mark.parametrize('kw', [dict(block_gate=True),
                                dict(beta_mode='fixed'),
                                dict(beta_source='context'),
                                dict(message_act='tanh'),
                                dict(dropout_value=True, dropout=0.5)])
def test_not_taken_where_the_function_differs(kw):
    layer = DeltaConv(16, **dict(AXES, **kw))
    x = torch.randn(5, 16)
    # a separately dropped value shows as the layer's h_value
    h_value = x if kw.get('dropout_value') else None
    assert not axes_path_ok(layer, x, h_value)
    assert not axes_path_ok(DeltaConv(16, **AXES).double(), x, None)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('relu', [True, False])
@pytest.mark.parametrize('live', [NAMES, ['x', 'W', 'b'], ['u', 'c', 'x0'],
                                  ['b'], ['c']], ids=lambda t: '-'.join(t))
def test_cpp_function_matches_the_python_function(monkeypatch, dtype, relu,
                                                  live):
    # On the fused kernels the update runs as the C++ autograd function
    # (ops/csrc/axes_function.cpp): against the Python function over the
    # same kernels and products, bit for bit.
    if cpu_kernels.kernels() is None:
        pytest.skip('fused CPU kernels not buildable here')
    base = _inputs(300, 64, dtype=dtype, seed=5)
    w = torch.randn(300, 64, dtype=dtype)
    runs = {}
    for cpp in (True, False):
        monkeypatch.setattr(axes_path, 'CPP_FUNCTION', cpp)
        ins = [t.detach().clone().requires_grad_(n in live)
               for n, t in zip(NAMES, base)]
        out, beta = channel_axes_update(*ins, 2.0, relu)
        assert ('ddl_gnn::ChannelAxes' in out.grad_fn.name()) == cpp
        assert not beta.requires_grad
        runs[cpp] = (out, beta, torch.autograd.grad(
            (out * w).sum(), [t for t in ins if t.requires_grad]))
    (out, beta, grads), (out_p, beta_p, grads_p) = runs[True], runs[False]
    assert torch.equal(out, out_p) and torch.equal(beta, beta_p)
    assert len(grads) == len(grads_p) == len(live)
    for a, e in zip(grads, grads_p):
        assert torch.equal(a, e)


def test_recommended_cora_layer_runs_the_cpp_function():
    if cpu_kernels.kernels() is None:
        pytest.skip('fused CPU kernels not buildable here')
    kw = recommended_settings('cora', 'delta')['model_kwargs']
    model = build_model('delta', 8, 64, 2, 2, **kw)
    names = []
    model.layers[0].register_forward_hook(
        lambda mod, args, out: names.append(out.grad_fn.name()))
    model(torch.randn(20, 8), torch.randint(0, 20, (2, 60))).sum().backward()
    assert 'ddl_gnn::ChannelAxes' in names[0]
