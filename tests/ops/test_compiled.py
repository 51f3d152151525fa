"""The compiled regions (ddl_gnn.ops.compiled): the torch-op chains of the
fused functions under torch.compile compute the dense reference's values
and every gradient. Here on the CPU with the fused kernels off, so the
regions run (Inductor's C++ backend); tests/test_cuda.py checks the same
on a GPU, where they are on by default (Triton)."""
import pytest
import torch

from ddl_gnn.models import DeltaGNN
from ddl_gnn.nn.message_path import (anchored_message_reference,
                                     anchored_message_update)
from ddl_gnn.ops import (compiled, delta_update, delta_update_read,
                         delta_update_reference)
from ddl_gnn.ops.compress import compress_state
from ddl_gnn.ops.recompute import set_recompute

TOL = dict(rtol=1e-9, atol=1e-9)


@pytest.fixture
def regions(monkeypatch):
    """Compiled regions on, fused CPU kernels off."""
    monkeypatch.setenv('DDL_GNN_CPU_KERNELS', '0')
    compiled.set_compile(True)
    yield
    compiled.set_compile(None)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _grads(out, inputs, seed=1):
    outs = out if isinstance(out, tuple) else (out,)
    ws = [torch.randn(o.shape, generator=_gen(seed + i), dtype=o.dtype)
          for i, o in enumerate(outs)]
    loss = sum((o * w).sum() for o, w in zip(outs, ws))
    return torch.autograd.grad(loss, inputs)


def _close(got, ref):
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize('d_v,heads', [(1, 1), (3, 1), (1, 4)])
def test_delta_update_region_matches_reference(regions, d_v, heads):
    N, d = 37, 16
    g = _gen()
    shape = (N, d) if d_v == 1 else (N, d, d_v)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    k = torch.randn(N, d, generator=g, dtype=torch.float64)
    b = torch.rand((N, heads) if heads > 1 else (N,), generator=g,
                   dtype=torch.float64) * 2
    v = torch.randn((N, heads) if heads > 1 else
                    ((N,) if d_v == 1 else (N, d_v)), generator=g,
                    dtype=torch.float64)
    ins = [t.requires_grad_() for t in (x, k, b, v)]
    out = delta_update(*ins, heads=heads)
    if heads == 1:
        ref = delta_update_reference(*ins)
    else:   # per head block: the reference on each block
        s = d // heads
        ref = torch.cat([delta_update_reference(
            x[:, h * s:(h + 1) * s], k[:, h * s:(h + 1) * s], b[:, h],
            v[:, h]) for h in range(heads)], 1)
    torch.testing.assert_close(out, ref, **TOL)
    _close(_grads(out, ins), _grads(ref, ins))


def test_delta_update_read_region_matches_reference(regions):
    N, d, d_v = 29, 12, 3
    g = _gen(3)
    ins = [torch.randn(N, d, d_v, generator=g, dtype=torch.float64),
           torch.randn(N, d, generator=g, dtype=torch.float64),
           torch.rand(N, generator=g, dtype=torch.float64) * 2,
           torch.randn(N, d_v, generator=g, dtype=torch.float64),
           torch.randn(d, d_v, generator=g, dtype=torch.float64)]
    ins = [t.requires_grad_() for t in ins]
    out, read = delta_update_read(*ins)
    ref = delta_update_reference(*ins[:4])
    ref_read = compress_state(ref, ins[4])
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(read, ref_read, **TOL)
    _close(_grads((out, read), ins), _grads((ref, ref_read), ins))


@pytest.mark.parametrize('anchor', [True, False])
@pytest.mark.parametrize('recompute', [True, False])
def test_message_region_matches_reference(regions, anchor, recompute):
    N, d, H = 41, 16, 4
    g = _gen(5)
    x, h, x0 = (torch.randn(N, d, generator=g, dtype=torch.float64)
                for _ in range(3))
    W = torch.randn(H, 2 * d if anchor else d, generator=g,
                    dtype=torch.float64) * 0.3
    b = torch.randn(H, generator=g, dtype=torch.float64)
    ins = [t.requires_grad_() for t in (x, h, x0, W, b)]
    set_recompute(recompute)
    try:
        out, _ = anchored_message_update(*ins, anchor, 0.1, H, 1e-2, 1.0)
        ref = anchored_message_reference(*ins, anchor, 0.1, H, 1e-2, 1.0)
        torch.testing.assert_close(out, ref, **TOL)
        _close(_grads(out, ins), _grads(ref, ins))
    finally:
        set_recompute(None)


def test_model_with_regions_matches_eager(monkeypatch):
    """A matrix-state DeltaGNN chains its reads through the compiled region
    (as on a GPU); outputs and parameter gradients equal the eager ops'."""
    monkeypatch.setenv('DDL_GNN_CPU_KERNELS', '0')
    torch.manual_seed(0)
    model = DeltaGNN(8, 16, 3, 2, d_v=2, k_source='conv',
                     beta_source='context', v_source='context', heads=1,
                     norm='layer_norm').double()
    x = torch.randn(30, 8, dtype=torch.float64)
    ei = torch.randint(0, 30, (2, 90))
    params = list(model.parameters())
    compiled.set_compile(False)
    assert not model._fused_reads(0, 3)
    ref = model(x, ei)
    ref_g = torch.autograd.grad(ref.square().sum(), params)
    compiled.set_compile(True)
    try:
        assert model._fused_reads(0, 3)
        out = model(x, ei)
        got = torch.autograd.grad(out.square().sum(), params)
    finally:
        compiled.set_compile(None)
    torch.testing.assert_close(out, ref, **TOL)
    _close(got, ref_g)


def test_policy(monkeypatch):
    monkeypatch.delenv('DDL_GNN_COMPILE', raising=False)
    assert not compiled.compile_enabled('cpu')     # the CPU has its kernels
    monkeypatch.setenv('DDL_GNN_COMPILE', 'always')
    assert compiled.compile_enabled('cpu')
    monkeypatch.setenv('DDL_GNN_COMPILE', 'never')
    assert not compiled.compile_enabled('cuda')
    compiled.set_compile(True)
    assert compiled.compile_enabled('cpu')
    compiled.set_compile(None)
    monkeypatch.setenv('DDL_GNN_COMPILE', 'sometimes')
    with pytest.raises(ValueError, match='DDL_GNN_COMPILE must be'):
        compiled.compile_enabled('cpu')
    monkeypatch.setenv('DDL_GNN_COMPILE', 'auto')
    fn = compiled.region(delta_update_reference, 'cpu')
    assert fn is delta_update_reference
