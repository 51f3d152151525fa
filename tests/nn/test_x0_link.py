"""x0's link (anchored_message_update's and DeltaConv's ``x0_link``, and
DeltaGNN's linked layers): the C++ update adds the link's gradient to its
own gradient of x0 in the backward pass; values and every gradient are
the same bit for bit as with each layer reading x0 itself, which autograd
sums."""
import pytest
import torch

import ddl_gnn.models.delta_gnn as delta_gnn
import ddl_gnn.nn.message_path as message_path
from ddl_gnn.experiment.recommended import recommended_settings
from ddl_gnn.models import build_model
from ddl_gnn.nn import DeltaConv
from ddl_gnn.nn.message_path import anchored_message_update
from ddl_gnn.ops import cpu_kernels
from ddl_gnn.ops.dropout import set_hash_dropout

D, H = 64, 8


@pytest.fixture(autouse=True)
def kernels():
    k = cpu_kernels.kernels()
    if k is None or not k.message_gate_in_rows(torch.zeros(1, D), H):
        pytest.skip('the AVX2 kernels with the gate in the rows are not '
                    'built here')
    return k


def _layers(n, context, bias, seed=0):
    """``n`` layers' ``(h, W, b, c, hb)`` and the shared ``(x, x0)``."""
    g = torch.Generator().manual_seed(seed)
    N = 300

    def r(*shape, s=1.0):
        return (s * torch.randn(*shape, generator=g)).requires_grad_()
    x, x0 = r(N, D), r(N, D)
    layers = [(r(N, D), r(H, 2 * D, s=0.3), r(H),
               r(N, D) if context else None, r(D) if bias else None)
              for _ in range(n)]
    return x, x0, layers


def _stack(x, x0, layers, link):
    """The updates in turn, each on the last one's output; with ``link``
    the second on passes x0's link on (the first reads x0, as DeltaGNN)."""
    anchor = x0
    for i, (h, W, b, c, hb) in enumerate(layers):
        chain = link and 0 < i < len(layers) - 1
        out = anchored_message_update(x, h, anchor, W, b, True, 0.3, H,
                                      1e-5, 2.0, context=c, h_bias=hb,
                                      x0_link=chain)
        x = out[0]
        if chain:
            assert out[2].grad_fn is not None
            assert 'ddl_gnn::AnchoredMessage' in out[2].grad_fn.name()
            anchor = out[2]
    return x


def _leaves(x, x0, layers):
    return [x, x0] + [t for layer in layers for t in layer if t is not None]


@pytest.mark.parametrize('context', [False, True], ids=['x', 'context'])
@pytest.mark.parametrize('bias', [False, True], ids=['', 'bias'])
@pytest.mark.parametrize('n', [3, 5])
def test_linked_updates_match_unlinked_bit_for_bit(context, bias, n):
    x, x0, layers = _layers(n, context, bias)
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    runs = []
    for link in (True, False):
        out = _stack(x, x0, layers, link)
        runs.append((out, torch.autograd.grad((out * w).sum(),
                                              _leaves(x, x0, layers))))
    (out, grads), (out_u, grads_u) = runs
    assert torch.equal(out, out_u)
    for got, want in zip(grads, grads_u):
        assert torch.equal(got, want)


def test_the_link_holds_x0_and_its_gradient_reaches_x0():
    x, x0, [(h, W, b, c, hb)] = _layers(1, False, True)
    out, beta, link = anchored_message_update(x, h, x0, W, b, True, 0.3, H,
                                              1e-5, 2.0, h_bias=hb,
                                              x0_link=True)
    assert torch.equal(link, x0) and link.requires_grad
    assert link._base is x0
    # only the link used: x0's gradient is the link's
    g = torch.randn(x0.shape)
    (gx0,) = torch.autograd.grad((link * g).sum(), [x0], retain_graph=True)
    assert torch.equal(gx0, g)
    # only the output used: the same gradients as without a link
    plain, _ = anchored_message_update(x, h, x0, W, b, True, 0.3, H, 1e-5,
                                       2.0, h_bias=hb)
    assert torch.equal(out, plain)
    want = torch.autograd.grad(plain.sum(), [x, h, x0, W, b, hb])
    got = torch.autograd.grad(out.sum(), [x, h, x0, W, b, hb])
    for a, e in zip(got, want):
        assert torch.equal(a, e)


def test_create_graph_through_the_link():
    """Second derivatives through a linked pair (the registered Python
    reference) against the unlinked pair's."""
    x, x0, layers = _layers(3, False, True, seed=2)
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    res = []
    for link in (True, False):
        out = _stack(x, x0, layers, link)
        gx0, gW = torch.autograd.grad((out * w).sum(), [x0, layers[1][1]],
                                      create_graph=True)
        second = torch.autograd.grad(gx0.square().sum() + gW.sum(),
                                     _leaves(x, x0, layers))
        res.append((gx0, second))
    (gx0, second), (gx0_u, second_u) = res
    torch.testing.assert_close(gx0, gx0_u, rtol=1e-5, atol=1e-6)
    for a, e in zip(second, second_u):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-5)


def test_python_function_link_is_x0(monkeypatch):
    monkeypatch.setattr(message_path, 'CPP_FUNCTION', False)
    x, x0, [(h, W, b, c, hb)] = _layers(1, False, False)
    out, beta, link = anchored_message_update(x, h, x0, W, b, True, 0.3, H,
                                              1e-5, 2.0, x0_link=True)
    assert link is x0


def _conv(**kw):
    torch.manual_seed(0)
    return DeltaConv(D, heads=H, **kw)


def test_delta_conv_x0_link():
    conv = _conv()
    g = torch.Generator().manual_seed(0)
    x, x0 = torch.randn(50, D, generator=g), torch.randn(50, D, generator=g)
    ei = torch.randint(0, 50, (2, 200), generator=g)
    out, link = conv(x, ei, x0=x0, x0_link=True)
    assert torch.equal(out, conv(x, ei, x0=x0))
    assert torch.equal(link, x0)
    with pytest.raises(ValueError, match='x0_link'):
        conv(x, ei, x0_link=True)
    with pytest.raises(ValueError, match='x0_link'):
        conv(x, ei, x0=x0, x0_link=True, next_weight=torch.ones(D, 1))


def test_delta_conv_link_off_the_message_path_is_x0():
    # the channel-axes layer (the Cora layer) has no link of its own
    kw = recommended_settings('cora', 'delta')['model_kwargs']
    conv = build_model('delta', D, D, 3, 4, **kw).layers[1]
    assert conv.channel_axes
    g = torch.Generator().manual_seed(0)
    x, x0 = torch.randn(50, D, generator=g), torch.randn(50, D, generator=g)
    ei = torch.randint(0, 50, (2, 200), generator=g)
    out, link = conv(x, ei, x0=x0, x0_link=True)
    assert link is x0
    assert torch.equal(out, conv(x, ei, x0=x0))


def _model_grads(monkeypatch, link, **kw):
    monkeypatch.setattr(delta_gnn, 'LINK_X0', link)
    torch.manual_seed(0)
    model = build_model('delta', 32, D, 7, 5, **kw)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 32, generator=g)
    ei = torch.randint(0, 120, (2, 500), generator=g)
    torch.manual_seed(1)        # the dropout masks' seed
    out = model(x, ei)
    grads = torch.autograd.grad((out * out).sum(), list(model.parameters()))
    return model, out, grads


@pytest.mark.parametrize('kw', [dict(dropout=0.0), dict(dropout=0.5),
                                dict(dropout=0.0, checkpoint=True,
                                     checkpoint_segment=4),
                                dict(dropout=0.3, update_dropout=0.2)],
                         ids=['plain', 'dropout', 'checkpoint',
                              'update-dropout'])
@pytest.mark.parametrize('hashed', [True, False], ids=['hash', 'torch'])
def test_linked_model_matches_unlinked_bit_for_bit(monkeypatch, kw, hashed):
    set_hash_dropout(hashed)
    try:
        model, out, grads = _model_grads(monkeypatch, True, **kw)
        assert model._linked_x0(list(model.layers), len(model.layers),
                                torch.zeros(1, D))
        _, out_u, grads_u = _model_grads(monkeypatch, False, **kw)
    finally:
        set_hash_dropout(None)
    assert torch.equal(out, out_u)
    for got, want in zip(grads, grads_u):
        assert torch.equal(got, want)


def test_model_links_no_layer_a_hook_watches(monkeypatch):
    monkeypatch.setattr(delta_gnn, 'LINK_X0', True)
    model = build_model('delta', 32, D, 5, 5, dropout=0.0)
    x0 = torch.zeros(1, D)

    def linked(start, end):
        return model._linked_x0(list(model.layers)[start:end], end, x0)
    assert linked(0, 5)
    assert not linked(3, 5)      # too few layers to link
    # a checkpointed segment before the last: its sum would enter x0's
    # gradient after the last segment's terms
    assert not linked(0, 3)
    assert linked(2, 5)
    seen = []
    handle = model.layers[2].register_forward_hook(
        lambda mod, args, out: seen.append(out))
    try:
        assert not linked(0, 5)
        model(torch.randn(20, 32), torch.randint(0, 20, (2, 60)))
    finally:
        handle.remove()
    assert len(seen) == 1 and isinstance(seen[0], torch.Tensor)
