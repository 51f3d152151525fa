"""delta_update against the dense reference and independent linear algebra."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddl_gnn.ops import (delta_operator, delta_update, delta_update_eager,
                         delta_update_reference, delta_write)

shapes = st.tuples(st.integers(1, 6), st.integers(2, 7), st.integers(1, 4))


def _inputs(N, d, d_v, seed, dtype=torch.float64, beta=None):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, d, d_v, generator=g, dtype=dtype)
    k = torch.randn(N, d, generator=g, dtype=dtype)
    b = 2 * torch.rand(N, generator=g, dtype=dtype) if beta is None else \
        torch.full((N, ), float(beta), dtype=dtype)
    v = torch.randn(N, d_v, generator=g, dtype=dtype)
    if d_v == 1 and seed % 2 == 0:  # exercise the vector-state form too
        return x.squeeze(-1), k, b, v.squeeze(-1)
    return x, k, b, v


def _unit(k):
    return k / k.norm(dim=-1, keepdim=True)


@settings(max_examples=40, deadline=None)
@given(shapes, st.integers(0, 10_000))
def test_matches_dense_reference(shape, seed):
    x, k, b, v = _inputs(*shape, seed)
    ref = delta_update_reference(x, k, b, v)
    torch.testing.assert_close(delta_update(x, k, b, v), ref)
    torch.testing.assert_close(delta_update_eager(x, k, b, v), ref)


@settings(max_examples=30, deadline=None)
@given(shapes, st.integers(0, 10_000))
def test_beta_zero_is_identity(shape, seed):
    x, k, b, v = _inputs(*shape, seed, beta=0.0)
    torch.testing.assert_close(delta_update(x, k, b, v), x)


@settings(max_examples=30, deadline=None)
@given(shapes, st.integers(0, 10_000))
def test_beta_one_overwrites_readout(shape, seed):
    x, k, b, v = _inputs(*shape, seed, beta=1.0)
    out = delta_update(x, k, b, v, eps=0.0)
    X = out if out.dim() == 3 else out.unsqueeze(-1)
    read = torch.einsum('nd,ndv->nv', _unit(k), X)
    torch.testing.assert_close(read, v.reshape(read.shape))


@settings(max_examples=30, deadline=None)
@given(shapes, st.integers(0, 10_000))
def test_beta_two_reflects(shape, seed):
    x, k, b, v = _inputs(*shape, seed, beta=2.0)
    v = torch.zeros_like(v)
    out = delta_update(x, k, b, v, eps=0.0)
    X = x if x.dim() == 3 else x.unsqueeze(-1)
    Y = out if out.dim() == 3 else out.unsqueeze(-1)
    torch.testing.assert_close(Y.norm(dim=1), X.norm(dim=1))
    u = _unit(k)
    torch.testing.assert_close(torch.einsum('nd,ndv->nv', u, Y),
                               -torch.einsum('nd,ndv->nv', u, X))
    # The orthogonal complement is untouched.
    perp = X - u.unsqueeze(-1) * torch.einsum('nd,ndv->nv', u, X).unsqueeze(1)
    perp_y = Y - u.unsqueeze(-1) * torch.einsum('nd,ndv->nv', u,
                                                Y).unsqueeze(1)
    torch.testing.assert_close(perp_y, perp)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.integers(1, 3),
       st.floats(0.0, 2.0, allow_subnormal=False),
       st.integers(0, 10_000))
def test_spectrum_and_determinant(d, d_v, beta, seed):
    """The map X -> delta_update(X) (k, beta, v fixed) is affine; its linear
    part, read off the fast op's Jacobian, has eigenvalues 1 (d-1 times) and
    1 - beta, and determinant (1 - beta)^d_v on the lifted d*d_v state."""
    g = torch.Generator().manual_seed(seed)
    k = torch.randn(1, d, generator=g, dtype=torch.float64)
    v = torch.randn(1, d_v, generator=g, dtype=torch.float64)
    b = torch.tensor([beta], dtype=torch.float64)
    x = torch.randn(1, d, d_v, generator=g, dtype=torch.float64)
    J = torch.autograd.functional.jacobian(
        lambda X: delta_update(X, k, b, v, eps=0.0), x)
    J = J.reshape(d * d_v, d * d_v).numpy()
    eig = np.sort(np.linalg.eigvals(J).real)
    expected = np.sort(np.r_[np.ones((d - 1) * d_v), np.full(d_v, 1 - beta)])
    np.testing.assert_allclose(eig, expected, atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(J), (1 - beta)**d_v, atol=1e-9)
    # The dense operator has the same spectrum.
    A = delta_operator(k, b, eps=0.0)[0].numpy()
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(A)),
                               np.sort(np.r_[np.ones(d - 1), 1 - beta]),
                               atol=1e-9)


@pytest.mark.parametrize('d_v,vector', [(1, True), (1, False), (3, False)])
def test_gradcheck_float64(d_v, vector):
    x, k, b, v = _inputs(5, 4, d_v, seed=1 if not vector else 2)
    args = [t.clone().requires_grad_() for t in (x, k, b, v)]
    assert torch.autograd.gradcheck(delta_update, args)
    assert torch.autograd.gradgradcheck(delta_update_eager, args)


@pytest.mark.parametrize('dtype,tol', [(torch.float64, 1e-10),
                                       (torch.float32, 1e-5)])
@pytest.mark.parametrize('d_v', [1, 4])
def test_every_gradient_matches_reference(dtype, tol, d_v):
    x, k, b, v = _inputs(64, 16, d_v, seed=3, dtype=dtype)
    grads = []
    for fn in (delta_update, delta_update_reference):
        args = [t.clone().requires_grad_() for t in (x, k, b, v)]
        out = fn(*args)
        cot = torch.randn(out.shape, dtype=dtype,
                          generator=torch.Generator().manual_seed(0))
        grads.append(torch.autograd.grad(out, args, cot) + (out, ))
    for fast, ref in zip(*grads):
        err = (fast - ref).norm() / ref.norm().clamp_min(1e-30)
        assert err < tol


def test_write_only_has_no_erase_term():
    x, k, b, v = _inputs(4, 5, 2, seed=5)
    out = delta_write(x, k, b, v, eps=0.0)
    expected = x + b.reshape(-1, 1, 1) * _unit(k).unsqueeze(-1) * \
        v.unsqueeze(1)
    torch.testing.assert_close(out, expected)


def test_zero_direction_is_finite():
    x, k, b, v = _inputs(3, 4, 2, seed=7)
    k = torch.zeros_like(k).requires_grad_()
    out = delta_update(x, k, b, v)
    out.sum().backward()
    torch.testing.assert_close(out, x)
    assert torch.isfinite(k.grad).all()


@pytest.mark.parametrize('bad,match', [
    (dict(x=torch.randn(4)), "'x' must be"),
    (dict(k=torch.randn(4, 6)), "'k' must have shape"),
    (dict(k=torch.randn(3, 5)), "'k' must have shape"),
    (dict(beta=torch.rand(3)), "'beta' must have shape"),
    (dict(v=torch.randn(4, 2)), "'v' must have shape"),
])
def test_bad_shapes_name_the_argument(bad, match):
    args = dict(x=torch.randn(4, 5), k=torch.randn(4, 5), beta=torch.rand(4),
                v=torch.randn(4))
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        delta_update(**args)


def test_dtype_mismatch_is_an_error():
    with pytest.raises(TypeError, match="'k' has dtype"):
        delta_update(torch.randn(4, 5), torch.randn(4, 5).double(),
                     torch.rand(4), torch.randn(4))


def test_matrix_state_value_width_mismatch():
    with pytest.raises(ValueError, match=r"'v' must have shape \[N, d_v\]"):
        delta_update(torch.randn(4, 5, 3), torch.randn(4, 5), torch.rand(4),
                     torch.randn(4, 2))
