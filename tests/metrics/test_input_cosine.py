import math

import numpy as np
import pytest
import torch

from ddl_gnn.metrics import input_cosine


def _np_cos(a, b, centered):
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    if centered:
        a, b = a - a.mean(0), b - b.mean(0)
    return float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize('centered', [False, True])
@pytest.mark.parametrize('shape', [(30, 8), (30, 4, 3)])
def test_matches_numpy(centered, shape):
    g = torch.Generator().manual_seed(0)
    x, x0 = torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)
    x = 0.5 * x + x0            # correlated with the input
    got = float(input_cosine(x, x0, centered=centered))
    assert math.isclose(got, _np_cos(x.numpy(), x0.numpy(), centered),
                        rel_tol=1e-12)


def test_shared_component_counts_only_uncentred():
    g = torch.Generator().manual_seed(1)
    kw = dict(generator=g, dtype=torch.float64)
    x0 = torch.randn(50, 6, **kw)
    bias = 10 * torch.randn(6, **kw)
    x = torch.randn(50, 6, **kw)              # independent of x0 per node
    # A large shared row makes the plain cosine near 1 ...
    assert float(input_cosine(x + bias, x0 + bias)) > 0.95
    # ... while the centred one ignores it: the same value with or without.
    assert math.isclose(float(input_cosine(x + bias, x0 + bias,
                                           centered=True)),
                        float(input_cosine(x, x0, centered=True)),
                        rel_tol=1e-9, abs_tol=1e-12)
    assert float(input_cosine(x0 + 3.0, x0, centered=True)) == \
        pytest.approx(1.0)


def test_batch_is_the_mean_over_graphs():
    g = torch.Generator().manual_seed(2)
    x, x0 = torch.randn(12, 5, generator=g), torch.randn(12, 5, generator=g)
    batch = torch.tensor([0] * 5 + [2] * 7)    # graph 1 owns no node
    for centered in (False, True):
        want = np.mean([_np_cos(x[batch == i].numpy(),
                                x0[batch == i].numpy(), centered)
                        for i in (0, 2)])
        got = float(input_cosine(x, x0, centered=centered, batch=batch))
        assert math.isclose(got, want, rel_tol=1e-12)


def test_zero_state_is_nan_and_bad_input_is_named():
    x0 = torch.randn(4, 3)
    assert math.isnan(float(input_cosine(torch.zeros(4, 3), x0)))
    with pytest.raises(ValueError, match="'x' and 'x0' must have the same"):
        input_cosine(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(TypeError, match="'x0' must be a floating-point"):
        input_cosine(torch.randn(4, 3), torch.ones(4, 3, dtype=torch.long))
