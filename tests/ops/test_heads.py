"""Multi-head delta update: the block-diagonal operator against the dense
oracle (values and every gradient), and a numpy oracle for the per-head
components."""
import numpy as np
import pytest
import torch

from ddl_gnn.ops import (delta_operator, delta_update, delta_update_reference,
                         delta_write, head_components)


def _inputs(N, d, d_v, heads, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    shape = (N, d) if d_v is None else (N, d, d_v)
    vshape = (N, heads) if d_v is None else (N, heads, d_v)
    x = torch.randn(shape, generator=g, dtype=dtype)
    k = torch.randn(N, d, generator=g, dtype=dtype)
    beta = 2 * torch.rand(N, heads, generator=g, dtype=dtype)
    v = torch.randn(vshape, generator=g, dtype=dtype)
    return x, k, beta, v


@pytest.mark.parametrize('d_v', [None, 1, 3])
@pytest.mark.parametrize('heads', [2, 4, 8])
def test_matches_dense_block_diagonal_reference(d_v, heads):
    x, k, beta, v = _inputs(6, 8, d_v, heads, seed=heads)
    out = delta_update(x, k, beta, v, heads=heads)
    torch.testing.assert_close(
        out, delta_update_reference(x, k, beta, v, heads=heads))


@pytest.mark.parametrize('d_v', [None, 3])
def test_every_gradient_matches_reference(d_v):
    x, k, beta, v = _inputs(5, 8, d_v, 4, seed=1)
    ins = [t.requires_grad_() for t in (x, k, beta, v)]
    g = torch.randn_like(x)
    fast = torch.autograd.grad((delta_update(*ins, heads=4) * g).sum(), ins)
    ref = torch.autograd.grad(
        (delta_update_reference(*ins, heads=4) * g).sum(), ins)
    for a, b in zip(fast, ref):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradcheck(
        lambda *t: delta_update(*t, heads=4), ins)


def test_operator_is_block_diagonal_with_per_head_spectrum():
    x, k, beta, _ = _inputs(3, 8, None, 4, seed=2)
    A = delta_operator(k, beta, heads=4)
    w = 2
    for h in range(4):
        for j in range(4):
            block = A[:, h * w:(h + 1) * w, j * w:(j + 1) * w]
            if h != j:
                assert block.abs().max() == 0
            else:   # eigenvalues {1, 1 - beta_h} on the block
                ev = torch.linalg.eigvalsh(block)
                want = torch.stack([1 - beta[:, h],
                                    torch.ones_like(beta[:, h])], -1)
                torch.testing.assert_close(ev, want.sort(-1).values)


def test_beta_one_writes_every_head():
    x, k, _, v = _inputs(4, 12, None, 3, seed=3)
    out = delta_update(x, k, torch.ones(4, 3, dtype=x.dtype), v, eps=0.0,
                       heads=3)
    torch.testing.assert_close(head_components(k, out, 3, eps=0.0), v)


def test_one_head_equals_the_single_operator():
    x, k, beta, v = _inputs(4, 6, None, 1, seed=4)
    torch.testing.assert_close(delta_update(x, k, beta, v, heads=1),
                               delta_update(x, k, beta[:, 0], v[:, 0]))


def test_write_only_heads():
    x, k, beta, v = _inputs(4, 8, None, 2, seed=5)
    K = torch.nn.functional.normalize(k.view(4, 2, 4), dim=-1, eps=0)
    want = x + (K * (beta * v).unsqueeze(-1)).reshape(4, 8)
    torch.testing.assert_close(delta_write(x, k, beta, v, eps=0.0, heads=2),
                               want)


def test_head_components_numpy_oracle():
    rng = np.random.default_rng(0)
    k, u = rng.normal(size=(5, 12)), rng.normal(size=(5, 12))
    want = np.stack([[kb @ ub / np.linalg.norm(kb)
                      for kb, ub in zip(np.split(ki, 4), np.split(ui, 4))]
                     for ki, ui in zip(k, u)])
    got = head_components(torch.tensor(k), torch.tensor(u), 4, eps=0.0)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


@pytest.mark.parametrize('kw, match', [
    (dict(heads=3), 'divisible'),
    (dict(heads=0), "'heads' must be a positive int"),
    (dict(heads=2, beta=torch.rand(4, 3)), "'beta' must have shape"),
    (dict(heads=2, v=torch.rand(4, 3)), "'v' must have shape"),
])
def test_bad_heads_name_the_problem(kw, match):
    x, k, beta, v = _inputs(4, 8, None, 2, seed=6, dtype=torch.float32)
    args = dict(beta=beta, v=v)
    args.update({n: kw[n] for n in ('beta', 'v') if n in kw})
    with pytest.raises(ValueError, match=match):
        delta_update(x, k, args['beta'], args['v'], heads=kw['heads'])
