import math

import numpy as np
import pytest
import torch

from ddl_gnn.metrics import effective_rank, numerical_rank


def svd_ranks(x):
    s = np.linalg.svd(x.numpy(), compute_uv=False)
    nr = (s**2).sum() / s[0]**2
    p = s / s.sum()
    p = p[p > 0]
    return nr, math.exp(-(p * np.log(p)).sum())


@pytest.mark.parametrize('shape', [(50, 8), (6, 10), (200, 3)])
def test_ranks_match_numpy_svd(shape):
    torch.manual_seed(0)
    # Decaying column scales give a non-trivial spectrum.
    x = torch.randn(*shape, dtype=torch.float64)
    x = x * torch.logspace(0, -2, shape[1], dtype=torch.float64)
    nr, er = svd_ranks(x)
    assert math.isclose(float(numerical_rank(x)), nr, rel_tol=1e-8)
    assert math.isclose(float(effective_rank(x)), er, rel_tol=1e-8)


def test_rank_limits_and_invariances():
    torch.manual_seed(0)
    x = torch.randn(40, 6, dtype=torch.float64)
    u = torch.randn(40, 1, dtype=torch.float64)
    rank_one = u @ torch.randn(1, 6, dtype=torch.float64)
    assert math.isclose(float(numerical_rank(rank_one)), 1.0, rel_tol=1e-6)
    assert math.isclose(float(effective_rank(rank_one)), 1.0, rel_tol=1e-6)
    q, _ = torch.linalg.qr(torch.randn(40, 6, dtype=torch.float64))
    assert math.isclose(float(numerical_rank(q)), 6.0, rel_tol=1e-10)
    assert math.isclose(float(effective_rank(q)), 6.0, rel_tol=1e-10)
    perm = torch.randperm(40)
    for fn in (numerical_rank, effective_rank):
        assert math.isclose(float(fn(3.3 * x)), float(fn(x)), rel_tol=1e-10)
        assert math.isclose(float(fn(x[perm])), float(fn(x)), rel_tol=1e-10)
        assert float(fn(torch.zeros(5, 3))) == 0.0


def test_ranks_float32_input():
    torch.manual_seed(0)
    x = torch.randn(100, 16)
    nr, er = svd_ranks(x.double())
    assert math.isclose(float(numerical_rank(x)), nr, rel_tol=1e-5)
    assert math.isclose(float(effective_rank(x)), er, rel_tol=1e-5)
