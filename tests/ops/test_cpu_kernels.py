"""The fused C++ CPU kernels (ops/csrc/delta_cpu.cpp) against independent
oracles: the dense reference (explicit d x d operators), numpy column sums,
and autograd of the plain expressions. Kernel and torch-op paths are also
compared with each other, and so are models with and without fused reads."""
import numpy as np
import pytest
import torch

from ddl_gnn.metrics import LayerProbe
from ddl_gnn.models import build_model
from ddl_gnn.ops import (compress_state, cpu_kernels, delta_update,
                         delta_update_read, delta_update_reference)

pytestmark = pytest.mark.skipif(
    cpu_kernels.kernels() is None,
    reason='fused CPU kernels not buildable here (torch-op path only)')

# 1100 nodes: more than one 1024-node block of the partial weight sums
N, D = 1100, 12
DVS = [0, 1, 2, 3, 4, 8, 5]        # 0: vector state; 3, 5: generic d_v
TOL = {torch.float64: dict(atol=1e-12, rtol=1e-10),
       torch.float32: dict(atol=2e-5, rtol=2e-5)}


def _inputs(dv, dtype, seed=0, width=D):
    g = torch.Generator().manual_seed(seed)
    shape = (N, width) if dv == 0 else (N, width, dv)
    x = torch.randn(*shape, generator=g, dtype=dtype)
    k = torch.randn(N, width, generator=g, dtype=dtype)
    k[:3] = 0.0                          # the eps guard: k = 0 rows
    b = 2 * torch.rand(N, generator=g, dtype=dtype)
    v = torch.randn(*((N, ) if dv == 0 else (N, dv)), generator=g,
                    dtype=dtype)
    return [x, k, b, v]


def _close(a, b, dtype, name=''):
    """Tolerances scaled by the magnitude of the oracle (sums over N nodes,
    e.g. the compressor weight's gradient, reach ~100)."""
    scale = max(1.0, float(b.abs().max()))
    tol = TOL[dtype]
    torch.testing.assert_close(a, b, atol=tol['atol'] * scale,
                               rtol=tol['rtol'], msg=name or None)


def _grads(fn, inputs, seed=1):
    leaves = [t.clone().requires_grad_() for t in inputs]
    outs = fn(*leaves)
    outs = outs if isinstance(outs, tuple) else (outs, )
    g = torch.Generator().manual_seed(seed)
    cot = [torch.randn(o.shape, generator=g, dtype=o.dtype) for o in outs]
    grads = torch.autograd.grad(outs, leaves, cot)
    return [o.detach() for o in outs], list(grads)


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('dv', DVS)
def test_delta_update_kernel_matches_dense_reference(dv, dtype):
    inputs = _inputs(dv, dtype)
    (out, ), grads = _grads(delta_update, inputs)
    (ref, ), ref_grads = _grads(delta_update_reference, inputs)
    _close(out, ref, dtype)
    for name, a, b in zip('x k beta v'.split(), grads, ref_grads):
        _close(a, b, dtype, name)


@pytest.mark.parametrize('dv', [2, 4, 5])
def test_compress_kernel_matches_numpy(dv):
    X, _, _, _ = _inputs(dv, torch.float64)
    w = torch.randn(D, dv, dtype=torch.float64)
    g = torch.randn(N, D, dtype=torch.float64)
    Xl, wl = X.clone().requires_grad_(), w.clone().requires_grad_()
    out = compress_state(Xl, wl)
    out.backward(g)
    Xn, wn, gn = X.numpy(), w.numpy(), g.numpy()
    np.testing.assert_allclose(out.detach().numpy(),
                               (Xn * wn[None]).sum(-1), rtol=1e-12,
                               atol=1e-14)
    np.testing.assert_allclose(Xl.grad.numpy(), gn[..., None] * wn[None],
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(wl.grad.numpy(),
                               np.einsum('nf,nfj->fj', gn, Xn),
                               rtol=1e-10, atol=1e-13)


def _plain_read(x, k, b, v, w):
    out = delta_update_reference(x, k, b, v)
    return out, (out * w).sum(-1)


# width 12: whole 8-feature blocks plus a tail of 4 (the AVX2 per-feature
# sums of float and their scalar tail); 13 and 21: flat loops with tails too
@pytest.mark.parametrize('width', [D, 13, 21])
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('dv', [2, 3, 4, 8])
def test_fused_read_matches_update_then_compress(dv, dtype, width):
    inputs = _inputs(dv, dtype, width=width) + [
        torch.randn(width, dv, dtype=dtype)]
    outs, grads = _grads(delta_update_read, inputs)
    refs, ref_grads = _grads(_plain_read, inputs)
    for a, b in zip(outs, refs):
        _close(a, b, dtype)
    for name, a, b in zip('x k beta v weight'.split(), grads, ref_grads):
        _close(a, b, dtype, name)


@pytest.mark.parametrize('dv', [0, 3])
def test_second_derivatives(dv):
    """create_graph backwards take the differentiable path: exact second
    derivatives (the closed form with saved rho, s was wrong here)."""
    inputs = [t[3:8].clone().requires_grad_()      # rows with k != 0
              for t in _inputs(dv, torch.float64)]
    assert torch.autograd.gradgradcheck(delta_update, inputs)
    if dv:
        w = torch.randn(D, dv, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(delta_update_read, (*inputs, w))
        assert torch.autograd.gradgradcheck(delta_update_read, (*inputs, w))


def test_non_contiguous_inputs():
    x, k, b, v = _inputs(3, torch.float64)
    xt = x.transpose(1, 2).contiguous().transpose(1, 2)    # same values
    kt = k.t().contiguous().t()
    assert not xt.is_contiguous() and not kt.is_contiguous()
    torch.testing.assert_close(delta_update(xt, kt, b, v),
                               delta_update_reference(x, k, b, v))


def test_kernels_can_be_turned_off(monkeypatch):
    inputs = _inputs(4, torch.float64)
    on = _grads(delta_update, inputs)
    monkeypatch.setenv('DDL_GNN_CPU_KERNELS', '0')
    assert not cpu_kernels.usable(*inputs)
    off = _grads(delta_update, inputs)
    for a, b in zip(on[0] + on[1], off[0] + off[1]):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


def test_weight_gradient_does_not_depend_on_thread_count():
    inputs = _inputs(4, torch.float32) + [torch.randn(D, 4)]
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _grads(delta_update_read, inputs)[1][-1]
        torch.set_num_threads(2)
        two = _grads(delta_update_read, inputs)[1][-1]
    finally:
        torch.set_num_threads(old)
    assert torch.equal(one, two)


def test_read_bad_weight_shape():
    x, k, b, v = _inputs(3, torch.float64)
    with pytest.raises(ValueError, match=r"'weight' must have shape"):
        delta_update_read(x, k, b, v, torch.zeros(D, 4, dtype=x.dtype))
    with pytest.raises(ValueError, match='matrix state'):
        delta_update_read(x[..., 0], k, b, v[:, 0], torch.zeros(D, 1))


def _model_run(model, x, ei, y, fused):
    if not fused:
        model._fused_reads = lambda start, end: False
    torch.manual_seed(5)
    out = model(x, ei)
    loss = torch.nn.functional.cross_entropy(out, y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    if not fused:
        del model._fused_reads
    return out, grads


@pytest.mark.parametrize('checkpoint', [False, True])
def test_model_with_fused_reads_is_the_same_function(checkpoint):
    g = torch.Generator().manual_seed(0)
    n = 200
    ei = torch.randint(0, n, (2, 800), generator=g)
    x = torch.randn(n, 10, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (n, ), generator=g)
    torch.manual_seed(1)
    model = build_model('delta', 10, 16, 7, 4, d_v=3, dropout=0.3,
                        checkpoint=checkpoint).double().train()
    assert model._fused_reads(0, 7)
    a, b = _model_run(model, x, ei, y, True), _model_run(model, x, ei, y,
                                                         False)
    torch.testing.assert_close(a[0], b[0], atol=1e-12, rtol=1e-10)
    for ga, gb in zip(a[1], b[1]):
        torch.testing.assert_close(ga, gb, atol=1e-12, rtol=1e-10)


def test_probe_turns_fused_reads_off():
    """With fused reads, part of dL/dX' reaches the kernel through the read
    (a second output), so a hook on X' would see only the other part; a
    hooked layer therefore runs unfused, and the probe's gradient norms are
    whole (equal to those of a model with the kernels turned off)."""
    g = torch.Generator().manual_seed(0)
    n = 150
    ei = torch.randint(0, n, (2, 600), generator=g)
    x = torch.randn(n, 10, generator=g, dtype=torch.float64)
    torch.manual_seed(1)
    model = build_model('delta', 10, 16, 4, 4, d_v=2).double()
    probe = LayerProbe(model)
    assert not model._fused_reads(0, 4)
    norms = probe.gradient_norms(model(x, ei).pow(2).sum())
    probe.remove()
    assert model._fused_reads(0, 4)
    model._fused_reads = lambda start, end: False      # oracle: unfused
    probe = LayerProbe(model)
    ref = probe.gradient_norms(model(x, ei).pow(2).sum())
    assert len(norms) >= 4 and norms == pytest.approx(ref, rel=1e-12)


def test_no_fused_reads_without_the_kernels(monkeypatch):
    """Without the kernels the chained read would be the same composition,
    so the model keeps the plain per-layer path (no extra saved read)."""
    model = build_model('delta', 10, 16, 4, 4, d_v=2)
    assert model._fused_reads(0, 4)
    monkeypatch.setenv('DDL_GNN_CPU_KERNELS', '0')
    assert not model._fused_reads(0, 4)



@pytest.mark.parametrize('cpu_flags, isa, width', [
    ('sse2 avx', [], []),
    ('avx2 fma', ['-mavx2', '-mfma'], []),
    ('avx2 fma avx512f avx512bw', ['-mavx2', '-mfma', '-mavx512f'],
     ['-mprefer-vector-width=256']),
    ('avx512f', [], []),               # no AVX2: the portable build
])
def test_isa_flags_follow_the_cpu(monkeypatch, cpu_flags, isa, width):
    # AVX-512F adds the gate's 16-lane loops (and its name to the build's,
    # so a cached build never runs on a CPU without it) while the
    # compiler's own vectors stay at eight lanes.
    import io
    text = f'processor\t: 0\nflags\t\t: fpu {cpu_flags}\n'
    monkeypatch.setattr(cpu_kernels, 'open', lambda *a, **k: io.StringIO(
        text), raising=False)
    assert cpu_kernels._isa_flags() == isa
    name, _, cflags, _ = cpu_kernels._spec()
    assert name == 'ddl_gnn_delta_cpu' + ''.join(
        '_' + f[2:] for f in isa)
    assert cflags == ['-O3', '-fopenmp', *isa, *width]
