"""The fused anchored-message layer (nn/message_path.py, with the kernels of
ops/csrc/message_cpu.cpp) against the layer's generic path and the dense
delta reference: values and every gradient, both recompute settings, fused
kernels on and off, float64 gradcheck and gradgradcheck."""
import pytest
import torch

import ddl_gnn.nn.delta_conv as delta_conv_mod
import ddl_gnn.nn.message_path as message_path
from ddl_gnn.models import build_model
from ddl_gnn.nn import DeltaConv
from ddl_gnn.nn.message_path import (anchored_message_reference,
                                     anchored_message_update,
                                     message_path_ok)
from ddl_gnn.ops import cpu_kernels, delta_update_reference
from ddl_gnn.ops.recompute import recompute_in_backward, set_recompute

MSG = dict(v_source='message', k_source='anchor', beta_source='anchor',
           norm=None, beta_init=0.1, heads=8)


@pytest.fixture(params=[True, False], ids=['recompute', 'save'])
def recompute(request):
    set_recompute(request.param)
    yield request.param
    set_recompute(None)


def _inputs(N, d, H, anchor, dtype=torch.float64, seed=0, zero_rows=True,
            block=False):
    g = torch.Generator().manual_seed(seed)
    x, h, x0 = (torch.randn(N, d, generator=g, dtype=dtype)
                for _ in range(3))
    if zero_rows:                      # k = 0 rows: the eps guard
        h[:2] = 0.0
        x0[:2] = 0.0
    F = (2 * d if anchor else d) // (H if block else 1)
    W = 0.3 * torch.randn(H, F, generator=g, dtype=dtype)
    b = torch.randn(H, generator=g, dtype=dtype)
    return [t.requires_grad_() for t in (x, h, x0, W, b)]


def _dense_gate_weight(W, d, anchor):
    """A block gate's weight ``[H, P w]`` as the dense ``[H, P d]`` one."""
    H, P = W.size(0), 2 if anchor else 1
    w = d // H
    rows = []
    for h in range(H):
        row = W.new_zeros(P * d)
        for p in range(P):
            row = row.index_put(
                (torch.arange(p * d + h * w, p * d + (h + 1) * w),),
                W[h, p * w:(p + 1) * w])
        rows.append(row)
    return torch.stack(rows)


@pytest.mark.parametrize('anchor', [True, False])
@pytest.mark.parametrize('heads, block', [(1, False), (4, False), (16, False),
                                          (4, True), (16, True)])
def test_function_matches_dense_reference(path, recompute, anchor, heads,
                                          block):
    ins = _inputs(300, 16, heads, anchor, block=block)
    x, h, x0, W, b = ins
    out, beta = anchored_message_update(*ins, anchor, 0.3, heads, 1e-5, 2.0,
                                        block)
    # dense oracle: explicit operators, value k̂ᵀk per head; a block gate
    # is the dense gate with its weight zero outside the head's blocks
    k = torch.lerp(h, x0, 0.3)
    Wd = _dense_gate_weight(W, 16, anchor) if block else W
    logit = (torch.cat([x, x0], -1) @ Wd.t() + b if anchor
             else x @ Wd.t() + b)
    beta_ref = 2 * torch.sigmoid(logit)
    kb = k.view(300, heads, -1)
    v = (kb * kb).sum(-1) / torch.sqrt((kb * kb).sum(-1) + 1e-10)
    ref = delta_update_reference(x, k, beta_ref, v, 1e-5, heads)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(beta, beta_ref.view_as(beta).detach())
    w = torch.randn_like(ref)
    got = torch.autograd.grad((out * w).sum(), ins)
    want = torch.autograd.grad((ref * w).sum(), ins)
    for name, a, e in zip(['x', 'h', 'x0', 'W', 'b'], got, want):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize('d, heads', [(64, 8), (128, 16), (32, 4),
                                      (64, 16), (64, 64)])
@pytest.mark.parametrize('frozen', [(), ('h', 'x0')], ids=['all', 'x-W-b'])
def test_float32_matches_float64_reference(path, recompute, d, heads,
                                           frozen):
    # float32 vector paths of the kernels: heads of eight features in
    # groups of eight heads (d = 64, 128) and one head per channel (64, 64,
    # no per-head scalars kept for backward); (32, 4) has heads of eight
    # but not a group of eight, (64, 16) heads of four: the row loops.
    # 'x-W-b': h and x0 without gradient (the kernels skip those outputs).
    # One channel per head amplifies float32 rounding near k = 0 by up to
    # 1 / eps, so that case runs at eps = 0.01.
    eps = 1e-2 if d == heads else 1e-5
    ins = _inputs(300, d, heads, True, dtype=torch.float32)
    for i, name in enumerate(['x', 'h', 'x0', 'W', 'b']):
        if name in frozen:
            ins[i] = ins[i].detach()
    out, beta = anchored_message_update(*ins, True, 0.3, heads, eps, 2.0)
    ref_ins = [t.detach().double().requires_grad_(t.requires_grad)
               for t in ins]
    ref = anchored_message_reference(*ref_ins, True, 0.3, heads, eps, 2.0)
    tol = dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out, ref.float(), **tol)
    torch.testing.assert_close(beta.double(), 2 * torch.sigmoid(
        torch.cat([ref_ins[0], ref_ins[2]], -1) @ ref_ins[3].t()
        + ref_ins[4]).detach(), **tol)
    w = torch.randn(300, d, dtype=torch.float64)
    live = [i for i, t in enumerate(ins) if t.requires_grad]
    got = torch.autograd.grad((out * w.float()).sum(), [ins[i] for i in live])
    want = torch.autograd.grad((ref * w).sum(), [ref_ins[i] for i in live])
    for i, a, e in zip(live, got, want):
        torch.testing.assert_close(a.double(), e, rtol=1e-4,
                                   atol=1e-4 * e.abs().max().item(),
                                   msg=['x', 'h', 'x0', 'W', 'b'][i])


@pytest.mark.parametrize('heads', [4, 16])
def test_backward_without_the_kernels_after_a_fused_forward(monkeypatch,
                                                           heads):
    # one head per channel (16): the fused forward keeps no per-head
    # scalars, and a backward off the kernels rebuilds them
    if cpu_kernels.kernels() is None:
        pytest.skip('fused CPU kernels not buildable here')
    ins = _inputs(50, 16, heads, True)
    out, _ = anchored_message_update(*ins, True, 0.3, heads, 1e-2, 2.0)
    monkeypatch.setenv('DDL_GNN_CPU_KERNELS', '0')
    w = torch.randn_like(out)
    got = torch.autograd.grad((out * w).sum(), ins)
    ref = anchored_message_reference(*ins, True, 0.3, heads, 1e-2, 2.0)
    want = torch.autograd.grad((ref * w).sum(), ins)
    for name, a, e in zip(['x', 'h', 'x0', 'W', 'b'], got, want):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize('anchor', [True, False])
@pytest.mark.parametrize('heads, block', [(2, False), (2, True), (8, True)])
def test_gradcheck_and_gradgradcheck(path, recompute, anchor, heads, block):
    # no k = 0 rows: finite differences there are off by O(1 / eps)
    ins = _inputs(23, 8, heads, anchor, seed=1, zero_rows=False,
                  block=block)

    def fn(*t):
        return anchored_message_update(*t, anchor, 0.2, heads, 1e-5, 2.0,
                                       block)[0]

    assert torch.autograd.gradcheck(fn, ins)
    assert torch.autograd.gradgradcheck(fn, ins)
    ref = anchored_message_reference(*ins, anchor, 0.2, heads, 1e-5, 2.0,
                                     block)
    torch.testing.assert_close(fn(*ins), ref)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('beta_source', ['anchor', 'context'])
@pytest.mark.parametrize('heads, block', [(1, False), (8, False), (8, True),
                                          (32, True), (32, False)])
@pytest.mark.parametrize('dropout', [0.0, 0.5])
def test_layer_fast_path_matches_generic_path(path, recompute, monkeypatch,
                                             dtype, beta_source, heads,
                                             block, dropout):
    """Values, gates and every gradient; with dropout (training mode) both
    paths draw the same mask from the same seed, and the conv and the gate
    read the dropped state while the update writes the clean one."""
    torch.manual_seed(0)
    N, d = 200, 32
    # one channel per head with eps = 1e-5: a near-zero message amplifies
    # float32 rounding by up to 1 / eps, so that case runs at eps = 0.01
    kw = dict(MSG, beta_source=beta_source, heads=heads, block_gate=block,
              eps=1e-2 if d // heads == 1 else 1e-5, dropout=dropout)
    layer = DeltaConv(d, **kw).to(dtype)
    with torch.no_grad():               # a gate that depends on its input
        layer.gate.weight.normal_(0, 0.2)
    x = torch.randn(N, d, dtype=dtype, requires_grad=True)
    x0 = torch.randn(N, d, dtype=dtype, requires_grad=True)
    ei = torch.randint(0, N, (2, 800))
    assert message_path_ok(layer, x, None, None)

    def run():
        torch.manual_seed(1)            # the same dropout mask both times
        out = layer(x, ei, x0=x0)
        grads = torch.autograd.grad(
            (out * torch.linspace(-1, 1, out.numel(), dtype=dtype
                                  ).view_as(out)).sum(),
            [x, x0, *layer.parameters()])
        return out, layer.last_beta, grads

    fast = run()
    monkeypatch.setattr(delta_conv_mod, 'message_path_ok',
                        lambda *a: False)
    slow = run()
    # float32, one channel per head: eps = 0.01 still scales rounding by up
    # to 1 / eps, and the weights' gradients sum it over the nodes (float64
    # checks the two paths to 1e-11)
    tol = (dict(rtol=1e-11, atol=1e-11) if dtype == torch.float64 else
           dict(rtol=1e-4, atol=1e-5) if d // heads > 1 else
           dict(rtol=1e-3, atol=1e-3))
    torch.testing.assert_close(fast[0], slow[0], **tol)
    torch.testing.assert_close(fast[1], slow[1], **tol)
    names = ['x', 'x0'] + [n for n, _ in layer.named_parameters()]
    for name, a, b in zip(names, fast[2], slow[2]):
        torch.testing.assert_close(a, b, **tol, msg=name)


@pytest.mark.parametrize('dropout', [0.0, 0.5])
def test_model_fast_path_matches_generic_path(path, monkeypatch, dropout):
    torch.manual_seed(0)
    model = build_model('delta', 12, 32, 6, 3, dropout=dropout,
                        **MSG).double()
    x = torch.randn(150, 12, dtype=torch.float64)
    ei = torch.randint(0, 150, (2, 600))
    torch.manual_seed(1)                # the same dropout masks both times
    fast = model(x, ei)
    gf = torch.autograd.grad(fast.square().sum(), list(model.parameters()))
    monkeypatch.setattr(delta_conv_mod, 'message_path_ok',
                        lambda *a: False)
    torch.manual_seed(1)
    slow = model(x, ei)
    gs = torch.autograd.grad(slow.square().sum(), list(model.parameters()))
    torch.testing.assert_close(fast, slow, rtol=1e-11, atol=1e-11)
    for a, b in zip(gf, gs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_not_taken_where_the_function_differs():
    x = torch.randn(5, 16)
    for kw in (dict(norm='layer_norm'), dict(k_source='conv'),
               dict(erase=False), dict(d_v=2)):
        layer = DeltaConv(16, **dict(MSG, **kw))
        assert not message_path_ok(layer, x, None, None), kw
    layer = DeltaConv(16, **MSG, dropout=0.5, dropout_value=True)
    assert not message_path_ok(layer, x, None, None)   # training: dropout
    layer.eval()                                       # on the value only
    assert message_path_ok(layer, x, None, None)
    # plain dropout is taken (the gate reads the dropped state)
    assert message_path_ok(DeltaConv(16, **MSG, dropout=0.5), x, None, None)


@pytest.mark.parametrize('anchor', [True, False])
@pytest.mark.parametrize('heads, block', [(1, False), (4, False), (16, False),
                                          (4, True)])
def test_gate_context_matches_reference(path, recompute, anchor, heads,
                                        block):
    """A gate that reads a separate context ``c`` (the layer's dropped
    read): values and every gradient, ``c``'s included, against the plain
    chain."""
    x, h, x0, W, b = _inputs(300, 16, heads, anchor, block=block)
    g = torch.Generator().manual_seed(5)
    c = (torch.randn(300, 16, generator=g, dtype=x.dtype)
         .requires_grad_())
    ins = [x, h, x0, W, b, c]
    out, beta = anchored_message_update(x, h, x0, W, b, anchor, 0.3, heads,
                                        1e-5, 2.0, block, context=c)
    ref = anchored_message_reference(x, h, x0, W, b, anchor, 0.3, heads,
                                     1e-5, 2.0, block, context=c)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    # the gate reads c: another context gives other gates
    other = anchored_message_update(x, h, x0, W, b, anchor, 0.3, heads,
                                    1e-5, 2.0, block)[1]
    assert not torch.allclose(beta, other)
    w = torch.randn_like(ref)
    got = torch.autograd.grad((out * w).sum(), ins)
    want = torch.autograd.grad((ref * w).sum(), ins)
    for name, a, e in zip(['x', 'h', 'x0', 'W', 'b', 'c'], got, want):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-10, msg=name)
    with pytest.raises(ValueError, match="'context' must have the state"):
        anchored_message_update(x, h, x0, W, b, anchor, 0.3, heads,
                                context=c[:10])


@pytest.mark.parametrize('anchor', [True, False])
@pytest.mark.parametrize('block', [False, True])
def test_gate_context_gradcheck(path, anchor, block):
    # no k = 0 rows: finite differences there are off by O(1 / eps)
    ins = _inputs(10, 8, 4, anchor, seed=1, zero_rows=False, block=block)
    g = torch.Generator().manual_seed(2)
    ins.append(torch.randn(10, 8, generator=g, dtype=torch.float64)
               .requires_grad_())

    def fn(*t):
        return anchored_message_update(*t[:5], anchor, 0.3, 4, 1e-5, 2.0,
                                       block, context=t[5])[0]
    assert torch.autograd.gradcheck(fn, ins)
    assert torch.autograd.gradgradcheck(fn, ins)


@pytest.mark.parametrize('heads', [1, 4, 16])
def test_fixed_gate_matches_dense_reference(path, recompute, heads):
    x, h, x0, _, _ = _inputs(300, 16, heads, True)
    ins = [x, h, x0]
    out, beta = anchored_message_update(x, h, x0, None, None, True, 0.3,
                                        heads, 1e-2, 2.0, fixed=0.25)
    k = torch.lerp(h, x0, 0.3)
    kb = k.view(300, heads, -1)
    v = (kb * kb).sum(-1) / torch.sqrt((kb * kb).sum(-1) + 1e-4)
    beta_ref = torch.full((300, heads), 0.25, dtype=x.dtype)
    ref = delta_update_reference(x, k, beta_ref, v, 1e-2, heads)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(beta, beta_ref.view_as(beta))
    w = torch.randn_like(ref)
    got = torch.autograd.grad((out * w).sum(), ins)
    want = torch.autograd.grad((ref * w).sum(), ins)
    for name, a, e in zip(['x', 'h', 'x0'], got, want):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-10, msg=name)
    assert torch.autograd.gradcheck(
        lambda *t: anchored_message_update(*t, None, None, True, 0.3, heads,
                                           1e-2, 2.0, fixed=0.25)[0],
        [t.detach()[:20].clone().requires_grad_() for t in ins])


def test_fixed_gate_layer_fast_path_matches_generic_path(path, monkeypatch):
    torch.manual_seed(0)
    layer = DeltaConv(32, **dict(MSG, heads=32, eps=1e-2, beta_mode='fixed',
                                 beta_init=0.25)).double()
    x = torch.randn(200, 32, dtype=torch.float64, requires_grad=True)
    x0 = torch.randn(200, 32, dtype=torch.float64, requires_grad=True)
    ei = torch.randint(0, 200, (2, 800))
    assert message_path_ok(layer, x, None, None)

    def run():
        out = layer(x, ei, x0=x0)
        return out, torch.autograd.grad(out.square().sum(),
                                        [x, x0, *layer.parameters()])

    fast = run()
    monkeypatch.setattr(delta_conv_mod, 'message_path_ok',
                        lambda *a: False)
    slow = run()
    torch.testing.assert_close(fast[0], slow[0], rtol=1e-11, atol=1e-11)
    for a, b in zip(fast[1], slow[1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_gate_weight_and_fixed_gate_are_exclusive():
    x, h, x0, W, b = _inputs(5, 8, 2, True)
    with pytest.raises(ValueError, match="or neither and a fixed gate"):
        anchored_message_update(x, h, x0, W, b, True, 0.1, 2, fixed=0.3)
    with pytest.raises(ValueError, match="or neither and a fixed gate"):
        anchored_message_update(x, h, x0, None, None, True, 0.1, 2)


def test_gate_weight_has_one_row_per_head():
    x, h, x0, W, b = _inputs(5, 8, 2, True)
    with pytest.raises(ValueError, match=r"one row per head \(4\)"):
        anchored_message_update(x, h, x0, W, b, True, 0.1, 4)
    with pytest.raises(ValueError, match="one row per head"):
        anchored_message_update(x, h, x0, W.view(-1), b, True, 0.1, 2)


def test_recompute_default_per_device(monkeypatch):
    monkeypatch.delenv('DDL_GNN_RECOMPUTE', raising=False)
    assert recompute_in_backward('cpu') is True
    assert recompute_in_backward('cuda') is False
    monkeypatch.setenv('DDL_GNN_RECOMPUTE', 'never')
    assert recompute_in_backward('cpu') is False
    monkeypatch.setenv('DDL_GNN_RECOMPUTE', '1')
    assert recompute_in_backward('cuda') is True
    monkeypatch.setenv('DDL_GNN_RECOMPUTE', 'sometimes')
    with pytest.raises(ValueError, match='DDL_GNN_RECOMPUTE'):
        recompute_in_backward('cpu')


def _gate_in_rows_available():
    k = cpu_kernels.kernels()
    return k is not None and k.message_gate_in_rows(torch.zeros(1, 64), 8)


@pytest.mark.parametrize('gate', ['in rows', 'given'])
def test_rows_rebuild_head_scalars(gate):
    # Float heads of eight keep no per-head scalars: the forward returns
    # rho2, n and q as None and the backward row pass rebuilds them from k
    # and x. Its gradients equal those from the scalars computed apart (as
    # torch ops, float64 rounded to float32: within rounding); other heads
    # still keep them, and a backward without them is refused.
    if not _gate_in_rows_available():
        pytest.skip('no AVX2 build of the fused CPU kernels here')
    kernels = cpu_kernels.kernels()
    x, h, x0, W, b = (t.detach().float() for t in _inputs(300, 64, 8, True,
                                                          seed=6))
    hb = torch.randn(64)
    in_rows = gate == 'in rows'
    beta = None if in_rows else torch.rand(300, 8) * 2
    Wk, bk = (W, b) if in_rows else (None, None)
    out, beta, k, rho2, n, q = kernels.message_forward(
        x, h, x0, beta, Wk, bk, 0.3, 1e-5, 2.0, False, None, hb)
    assert k is None and rho2 is None and n is None and q is None
    k64 = torch.lerp((h + hb).double(), x0.double(), 0.3)
    rho2, n, q = (t.float() for t in message_path._head_scalars(
        x.double(), k64, 8, 1e-5))
    g = torch.randn(300, 64)
    needs = [True] * 5 + [False, True] if in_rows else [True] * 3 + [False] * 4
    rebuilt = kernels.message_backward(g, x, h, x0, None, beta, None, None,
                                       None, Wk, 0.3, 1e-5, 2.0, needs, None,
                                       hb, None)
    given = kernels.message_backward(g, x, h, x0, None, beta, rho2, n, q, Wk,
                                     0.3, 1e-5, 2.0, needs, None, hb, None)
    names = ['dx', 'dh', 'dx0', 'dW', 'db', 'dl', 'dc', 'dhb']
    for name, a, e in zip(names, rebuilt, given):
        assert (a is None) == (e is None), name
        if a is not None:
            torch.testing.assert_close(a, e, rtol=1e-4,
                                       atol=1e-5 * e.abs().max().item(),
                                       msg=name)
    with pytest.raises(RuntimeError, match='rho2, n and q together'):
        kernels.message_backward(g, x, h, x0, None, beta, rho2, None, q, Wk,
                                 0.3, 1e-5, 2.0, needs, None, hb, None)
    # heads of four: the forward keeps them and the backward needs them
    x4 = x[:, :32].contiguous()
    kept = kernels.message_forward(x4, x4, x4, torch.rand(300, 8), None,
                                   None, 0.3, 1e-5, 2.0, False, None, None)
    assert all(t is not None and t.shape == (300, 8) for t in kept[3:])
    with pytest.raises(RuntimeError, match='rho2, n and q are needed'):
        kernels.message_backward(g[:, :32].contiguous(), x4, x4, x4, None,
                                 kept[1], None, None, None, None, 0.3, 1e-5,
                                 2.0, [True] * 3 + [False] * 4, None, None,
                                 None)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('N, d, heads', [(600, 64, 8), (300, 128, 16),
                                         (37, 64, 8)])
@pytest.mark.parametrize('live', [('x', 'h', 'x0', 'W', 'b'),
                                  ('x', 'W', 'b'), ('h', 'x0'), ('W',),
                                  ('x0', 'b'), ('x', 'h', 'x0', 'W', 'b', 'c'),
                                  ('c',), ('x', 'W', 'c')],
                         ids=lambda t: '-'.join(t))
def test_gate_in_rows_matches_reference(recompute, monkeypatch, dtype, N, d,
                                        heads, live):
    # The dense anchored gate over float32 heads of eight channels in
    # groups of eight is computed in the kernels' row passes (AVX2); in
    # float64 the same call keeps the gate as torch ops around the kernels.
    # Both against the reference in float64 and against each other: values,
    # beta and every gradient that is asked for. N = 600: three blocks of
    # rows whose dW partial sums are added up; 37 rows: one short block.
    # With 'c' the gate reads a context c (the dropped state in training)
    # instead of x, and its input gradient goes to c.
    if cpu_kernels.kernels() is None:
        pytest.skip('fused CPU kernels not buildable here')
    names = ['x', 'h', 'x0', 'W', 'b', 'c']
    base = _inputs(N, d, heads, True, seed=3)
    ctx = 'c' in live
    c = (torch.randn(N, d, generator=torch.Generator().manual_seed(4),
                     dtype=torch.float64) if ctx else None)
    ins = [t.detach().to(dtype).requires_grad_(n in live)
           for n, t in zip(names, base + ([c] if ctx else []))]
    in_rows = cpu_kernels.kernels().message_gate_in_rows(ins[0], heads)
    assert in_rows == (dtype == torch.float32 and _gate_in_rows_available())
    ref_ins = [t.detach().double().requires_grad_(t.requires_grad)
               for t in ins]
    ref = anchored_message_reference(*ref_ins[:5], True, 0.3, heads, 1e-5,
                                     2.0, context=ref_ins[5] if ctx else None)
    gate_in = ref_ins[5] if ctx else ref_ins[0]
    beta_ref = 2 * torch.sigmoid(torch.cat([gate_in, ref_ins[2]], -1)
                                 @ ref_ins[3].t() + ref_ins[4]).detach()
    w = torch.randn(N, d, dtype=torch.float64)
    want = torch.autograd.grad((ref * w).sum(),
                               [t for t in ref_ins if t.requires_grad])
    runs = []
    for gate_in_rows in (True, False):
        monkeypatch.setattr(message_path, 'GATE_IN_ROWS', gate_in_rows)
        out, beta = anchored_message_update(
            *ins[:5], True, 0.3, heads, 1e-5, 2.0,
            context=ins[5] if ctx else None)
        got = torch.autograd.grad((out * w.to(dtype)).sum(),
                                  [t for t in ins if t.requires_grad])
        runs.append((out, beta, got))
    if dtype == torch.float32:
        tol, gtol = dict(rtol=1e-4, atol=1e-5), 1e-4
    else:
        tol, gtol = dict(rtol=1e-12, atol=1e-12), 1e-10
    live_names = [n for n in names if n in live]
    for out, beta, got in runs:
        torch.testing.assert_close(out.double(), ref.detach(), **tol)
        torch.testing.assert_close(beta.double(), beta_ref, **tol)
        for name, a, e in zip(live_names, got, want):
            torch.testing.assert_close(a.double(), e, rtol=gtol,
                                       atol=gtol * e.abs().max().item(),
                                       msg=name)
    if not in_rows:       # the same path twice: the same numbers
        for a, e in zip(runs[0][2], runs[1][2]):
            assert torch.equal(a, e)


@pytest.mark.parametrize('anchor, block, d, heads', [
    (False, False, 64, 8),     # context gate
    (True, True, 64, 8),       # block gate
    (True, False, 32, 4),      # heads of eight, not a group of eight
    (True, False, 64, 16),     # heads of four
    (True, False, 128, 8),     # heads of sixteen
])
def test_gate_in_rows_fallback_shapes(anchor, block, d, heads):
    # every other float32 gate keeps its products as torch ops around the
    # kernels: the same values and gradients as the reference
    if cpu_kernels.kernels() is None:
        pytest.skip('fused CPU kernels not buildable here')
    ins = [t.detach().float().requires_grad_()
           for t in _inputs(300, d, heads, anchor, seed=4, block=block)]
    assert not message_path._gate_in_rows(cpu_kernels.kernels(), ins[0],
                                          ins[3], anchor, block)
    out, beta = anchored_message_update(*ins, anchor, 0.3, heads, 1e-5, 2.0,
                                        block)
    ref_ins = [t.detach().double().requires_grad_() for t in ins]
    ref = anchored_message_reference(*ref_ins, anchor, 0.3, heads, 1e-5,
                                     2.0, block)
    torch.testing.assert_close(out.double(), ref.detach(), rtol=1e-4,
                               atol=1e-5)
    w = torch.randn(300, d, dtype=torch.float64)
    got = torch.autograd.grad((out * w.float()).sum(), ins)
    want = torch.autograd.grad((ref * w).sum(), ref_ins)
    for name, a, e in zip(['x', 'h', 'x0', 'W', 'b'], got, want):
        torch.testing.assert_close(a.double(), e, rtol=1e-4,
                                   atol=1e-4 * e.abs().max().item(), msg=name)


@pytest.mark.parametrize('threads', [1, 2])
def test_gate_in_rows_sums_are_deterministic(threads):
    # dW and db: partial sums over fixed shares of the rows, one per
    # thread, added in thread order: the same bits on every run
    if not _gate_in_rows_available():
        pytest.skip('no AVX2 build of the fused CPU kernels here')
    ins = [t.detach().float().requires_grad_()
           for t in _inputs(1000, 64, 8, True, seed=5)]
    before = torch.get_num_threads()
    grads = []
    try:
        torch.set_num_threads(threads)
        for _ in range(3):
            out, _ = anchored_message_update(*ins, True, 0.3, 8)
            grads.append(torch.autograd.grad(out.square().sum(), ins))
    finally:
        torch.set_num_threads(before)
    for run in grads[1:]:
        for a, b in zip(grads[0], run):
            assert torch.equal(a, b)


def test_gate_in_rows_rejects_other_shapes():
    if not _gate_in_rows_available():
        pytest.skip('no AVX2 build of the fused CPU kernels here')
    kernels = cpu_kernels.kernels()
    x = torch.randn(10, 64, dtype=torch.float64)
    W, b = torch.randn(8, 128, dtype=torch.float64), torch.zeros(8).double()
    with pytest.raises(RuntimeError, match='only for float heads of eight'):
        kernels.message_forward(x, x, x, None, W, b, 0.3, 1e-5, 2.0, False,
                                None, None)
    with pytest.raises(RuntimeError, match='gate weight must be'):
        kernels.message_forward(x.float(), x.float(), x.float(), None,
                                W[:, :64].float(), b.float(), 0.3, 1e-5,
                                2.0, False, None, None)
    with pytest.raises(RuntimeError, match='pass the gates beta, or'):
        kernels.message_forward(x, x, x, None, None, None, 0.3, 1e-5, 2.0,
                                False, None, None)
    xf, Wf, bf = x.float(), W.float(), b.float()
    with pytest.raises(RuntimeError, match="context must have x's shape"):
        kernels.message_forward(xf, xf, xf, None, Wf, bf, 0.3, 1e-5, 2.0,
                                False, xf[:5], None)
    with pytest.raises(RuntimeError, match='read by the gate the row pass'):
        kernels.message_forward(xf, xf, xf, torch.rand(10, 8), None, None,
                                0.3, 1e-5, 2.0, False, xf, None)
    with pytest.raises(RuntimeError, match="h's bias must be"):
        kernels.message_forward(xf, xf, xf, None, Wf, bf, 0.3, 1e-5, 2.0,
                                False, None, bf)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('d, heads', [(64, 8), (64, 64), (16, 4)])
@pytest.mark.parametrize('ctx', [False, True], ids=['x', 'context'])
def test_h_bias_matches_adding_it_first(path, recompute, dtype, d, heads,
                                        ctx):
    # The conv's bias added in the fused pass (h_bias) against the plain
    # chain on h + bias in float64: values and every gradient, the bias's
    # (h's column sum) included. (64, 8) in float32 is the kernels' AVX2
    # row pass with the gate in it, (64, 64) their one-head-per-channel
    # pass (eps 0.01 there, as above), (16, 4) their generic rows.
    N = 300
    eps = 1e-2 if d == heads else 1e-5
    ins = _inputs(N, d, heads, True, dtype=dtype, seed=7)
    g = torch.Generator().manual_seed(8)
    hb = torch.randn(d, generator=g, dtype=dtype).requires_grad_()
    c = (torch.randn(N, d, generator=g, dtype=dtype).requires_grad_()
         if ctx else None)
    live = ins + [hb] + ([c] if ctx else [])
    out, beta = anchored_message_update(*ins, True, 0.3, heads, eps, 2.0,
                                        context=c, h_bias=hb)
    ref_live = [t.detach().double().requires_grad_() for t in live]
    x, h, x0, W, b, hb64 = ref_live[:6]
    ref = anchored_message_reference(x, h + hb64, x0, W, b, True, 0.3, heads,
                                     eps, 2.0,
                                     context=ref_live[6] if ctx else None)
    single = dtype == torch.float32
    tol = dict(rtol=1e-4, atol=1e-5) if single else dict(rtol=1e-12,
                                                          atol=1e-12)
    torch.testing.assert_close(out.double(), ref.detach(), **tol)
    w = torch.randn(N, d, generator=g, dtype=torch.float64)
    got = torch.autograd.grad((out * w.to(dtype)).sum(), live)
    want = torch.autograd.grad((ref * w).sum(), ref_live)
    gtol = 1e-4 if single else 1e-10
    names = ['x', 'h', 'x0', 'W', 'b', 'h_bias', 'c']
    for name, a, e in zip(names, got, want):
        torch.testing.assert_close(a.double(), e, rtol=gtol,
                                   atol=gtol * e.abs().max().item(),
                                   msg=name)
    with pytest.raises(ValueError, match="'h_bias' must have shape"):
        anchored_message_update(*ins, True, 0.3, heads, h_bias=hb[:3])
    other = torch.float64 if single else torch.float32
    with pytest.raises(ValueError, match="and the state's dtype"):
        anchored_message_update(*ins, True, 0.3, heads, h_bias=hb.to(other))


def test_h_bias_gradcheck(path):
    ins = _inputs(10, 8, 4, True, seed=1, zero_rows=False)
    hb = torch.randn(8, dtype=torch.float64).requires_grad_()

    def fn(*t):
        return anchored_message_update(*t[:5], True, 0.3, 4, 1e-5, 2.0,
                                       h_bias=t[5])[0]
    assert torch.autograd.gradcheck(fn, ins + [hb])
    assert torch.autograd.gradgradcheck(fn, ins + [hb])


@pytest.mark.parametrize('kw, split', [
    (dict(), True),                          # GCNConv: bias in the pass
    (dict(identity_map=0.3), True),          # GCNII's identity mapping
    (dict(map_anchor=True), True),           # the anchored mix mapped
    (dict(cached=True), False),              # the conv adds its own bias
    (dict(conv='sage'), False),
    (dict(bias=False), True),                # no bias to add
])
@pytest.mark.parametrize('dropout', [0.0, 0.5])
def test_layer_bias_in_the_fused_pass(path, kw, split, dropout,
                                      monkeypatch):
    # unbiased_message gives the message before the conv's bias where it
    # can (the fused pass adds it) and the message itself elsewhere; either
    # way the layer computes its generic path's function and gradients.
    torch.manual_seed(0)
    N, d = 120, 32
    layer = DeltaConv(d, **dict(MSG, dropout=dropout), **kw).double()
    with torch.no_grad():
        layer.gate.weight.normal_(0, 0.2)
        if getattr(layer.conv, 'bias', None) is not None:
            layer.conv.bias.normal_(0, 0.5)
    x = torch.randn(N, d, dtype=torch.float64, requires_grad=True)
    x0 = torch.randn(N, d, dtype=torch.float64, requires_grad=True)
    ei = torch.randint(0, N, (2, 500))
    assert message_path_ok(layer, x, None, None)
    h, bias = layer.unbiased_message(x, x0, ei)
    assert (bias is not None) == (split and kw.get('bias', True))
    want = (layer.anchored_map(x, x0, ei) if kw.get('map_anchor')
            else layer.message_conv(x, ei))
    torch.testing.assert_close(h if bias is None else h + bias, want)

    def run():
        torch.manual_seed(1)
        out = layer(x, ei, x0=x0)
        w = torch.linspace(-1, 1, out.numel(), dtype=out.dtype)
        return out, torch.autograd.grad((out * w.view_as(out)).sum(),
                                        [x, x0, *layer.parameters()])

    fast = run()
    monkeypatch.setattr(delta_conv_mod, 'message_path_ok',
                        lambda *a: False)
    slow = run()
    tol = dict(rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(fast[0], slow[0], **tol)
    names = ['x', 'x0'] + [n for n, _ in layer.named_parameters()]
    for name, a, b in zip(names, fast[1], slow[1]):
        torch.testing.assert_close(a, b, **tol, msg=name)
