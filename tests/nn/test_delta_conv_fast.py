"""The DeltaConv fast path (context recomputed in backward or saved) is the
same function as the plain-autograd path: outputs and every gradient."""
import pytest
import torch

from ddl_gnn.nn import PAPER_DELTA, DeltaConv
from ddl_gnn.nn.gates import BETA_INIT
from ddl_gnn.nn.context import context_linear
from ddl_gnn.ops.recompute import set_recompute
from ddl_gnn.ops.dropout import keep_mask


# The fast path serves the paper's mapping (at the package's beta_0).
PAPER = dict(PAPER_DELTA, beta_init=BETA_INIT)


@pytest.fixture(params=[True, False], ids=['recompute', 'save'])
def recompute(request):
    set_recompute(request.param)
    yield request.param
    set_recompute(None)


def _graph(N=9, d=6, d_v=1, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, N, (2, 30), generator=g)
    shape = (N, d) if d_v == 1 else (N, d, d_v)
    return torch.randn(*shape, generator=g, dtype=dtype), ei


def _run(layer, x, ei, fast):
    layer.zero_grad()
    if not fast:
        layer._fast_path_ok = lambda *a: False
    assert fast == layer._fast_path_ok(x, ei)
    X = x.clone().requires_grad_()
    out = layer(X, ei)
    cot = torch.randn(out.shape, dtype=out.dtype,
                      generator=torch.Generator().manual_seed(1))
    (out * cot).sum().backward()
    grads = [X.grad] + [p.grad for p in layer.parameters()]
    if not fast:
        del layer._fast_path_ok
    return out, grads


@pytest.mark.parametrize('d_v', [1, 3])
@pytest.mark.parametrize('norm', ['layer_norm', 'rms_norm', None])
@pytest.mark.parametrize('kw', [dict(), dict(beta_mode='fixed',
                                             beta_init=1.3),
                                dict(erase=False), dict(normalize=False)])
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_fast_path_equals_plain_autograd(d_v, norm, kw, dtype, recompute):
    x, ei = _graph(d_v=d_v, dtype=dtype)
    torch.manual_seed(0)
    layer = DeltaConv(6, **{**PAPER, 'd_v': d_v, 'norm': norm, **kw}).to(dtype)
    with torch.no_grad():  # non-trivial gate, compressor and norm affine
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    out_f, g_f = _run(layer, x, ei, fast=True)
    out_s, g_s = _run(layer, x, ei, fast=False)
    tol = dict(atol=1e-10, rtol=1e-9) if dtype == torch.float64 else \
        dict(atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(out_f, out_s, **tol)
    assert len(g_f) == len(g_s)
    for a, b in zip(g_f, g_s):
        if b is None:
            assert a is None or not a.any()
        else:
            torch.testing.assert_close(a, b, **tol)


def test_generic_convs_and_sources_take_the_plain_path():
    x, ei = _graph(dtype=torch.float32)
    for kw in (dict(conv='sage'), dict(k_source='proj'),
               dict(beta_source='both'), dict(v_source='conv'),
               dict(norm='batch_norm'), dict(cached=True)):
        assert not DeltaConv(6, **{**PAPER, **kw})._fast_path_ok(x, ei)
    assert DeltaConv(6, **PAPER)._fast_path_ok(x, ei)
    assert not DeltaConv(6, heads=2)._fast_path_ok(x, ei)   # the default


def _context_args(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(7, 5, 2, dtype=dtype, generator=g)
    w = torch.rand(5, 2, dtype=dtype, generator=g)
    ln_w = torch.rand(5, dtype=dtype, generator=g) + 0.5
    Wa = torch.randn(4, 5, dtype=dtype, generator=g)
    Wb = torch.randn(3, 5, dtype=dtype, generator=g)
    bb = torch.randn(3, dtype=dtype, generator=g)
    return [t.requires_grad_() for t in (X, w, ln_w, Wa, Wb, bb)]


def _context_fn(X, w, ln_w):
    return torch.nn.functional.layer_norm((X * w).sum(-1), (5, ), ln_w)


def _context(X, w, ln_w, Wa, Wb, bb, p):
    torch.manual_seed(0)  # the same dropout mask on every call
    return context_linear(X, _context_fn, [w, ln_w], Wa, Wb, bb, p, True)


@pytest.mark.parametrize('p', [0.0, 0.4])
def test_context_linear_gradcheck(p, recompute):
    args = _context_args()
    assert torch.autograd.gradcheck(lambda *a: _context(*a, p), args)
    # second derivatives too: the recomputing backward detaches what it
    # recomputes, and with create_graph differentiates the plain chain
    assert torch.autograd.gradgradcheck(lambda *a: _context(*a, p), args)
    if p > 0:  # dropout is applied, with inverted-dropout scaling
        za, _ = _context(*args, p)
        torch.manual_seed(0)
        mask = keep_mask((7, 5), p)
        c = _context_fn(*args[:3]) * mask / (1 - p)
        torch.testing.assert_close(za, c @ args[3].t())


@pytest.mark.parametrize('p', [0.0, 0.4])
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_context_linear_save_equals_recompute(p, dtype):
    """Saving the context and recomputing it in backward give the same
    outputs (bitwise: the same forward ops) and the same gradients."""
    got = {}
    for mode in (True, False):
        set_recompute(mode)
        try:
            args = _context_args(dtype)
            za, zb = _context(*args, p)
            cot = torch.Generator().manual_seed(1)
            loss = sum((z * torch.randn(z.shape, generator=cot,
                                        dtype=dtype)).sum() for z in (za, zb))
            loss.backward()
            got[mode] = ([za.detach(), zb.detach()],
                         [t.grad for t in args])
        finally:
            set_recompute(None)
    for a, b in zip(got[True][0], got[False][0]):
        assert torch.equal(a, b)
    for a, b in zip(got[True][1], got[False][1]):
        torch.testing.assert_close(a, b)
