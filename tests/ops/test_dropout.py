"""Hashed dropout masks: the kernel, the torch-op reference and a numpy
oracle of the hash agree bit for bit; the masks have dropout's law; the
function keeps ``F.dropout``'s contract."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ddl_gnn.ops import cpu_kernels, saved_tensor_bytes
from ddl_gnn.ops.dropout import (dropout, dropout_mask,
                                 dropout_mask_reference, keep_mask,
                                 set_hash_dropout)

SHAPES = [(1,), (7,), (3, 5), (2708, 64), (4, 3, 2)]


def numpy_mask(numel: int, p: float, seed: int) -> np.ndarray:
    """splitmix64 on the counter in numpy's wrapping uint64 arithmetic."""
    j = np.arange(1, (numel + 1) // 2 + 1, dtype=np.uint64)
    with np.errstate(over='ignore'):
        z = np.uint64(seed) + j * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    bits = np.empty(2 * len(j), dtype=np.uint64)
    bits[0::2] = z & np.uint64(0xFFFFFFFF)
    bits[1::2] = z >> np.uint64(32)
    threshold = min(2 ** 32 - 1, int(np.floor(p * 2 ** 32)))
    return np.where(bits[:numel] >= threshold, 1.0 / (1.0 - p), 0.0)


@pytest.fixture
def hashed():
    set_hash_dropout(True)
    yield
    set_hash_dropout(None)


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('p', [0.0, 0.1, 0.5, 0.6, 0.99])
def test_reference_matches_numpy_oracle(shape, p):
    seed = 0x7FFF_FFFF_1234_5678
    got = dropout_mask_reference(shape, p, seed, torch.float64)
    want = numpy_mask(int(np.prod(shape)), p, seed).reshape(shape)
    assert got.shape == shape
    np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.skipif(cpu_kernels.kernels() is None,
                    reason='the fused CPU kernels are not built here')
@pytest.mark.parametrize('shape', SHAPES + [(1_000_001,)])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_kernel_matches_reference(shape, dtype):
    for p, seed in [(0.5, 1), (0.6, 123456789123), (0.05, 2 ** 62 + 17)]:
        like = torch.ones(shape, dtype=dtype)       # the mask itself
        got = cpu_kernels.kernels().dropout_apply(like, p, seed)
        assert got.dtype == dtype and got.shape == like.shape
        assert torch.equal(got, dropout_mask_reference(shape, p, seed,
                                                       dtype))


@pytest.mark.skipif(cpu_kernels.kernels() is None,
                    reason='the fused CPU kernels are not built here')
@pytest.mark.parametrize('shape', [(1,), (7,), (2708, 64), (300_001,)])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_kernel_applies_the_reference_mask(shape, dtype):
    x = torch.randn(shape, dtype=dtype)
    got = cpu_kernels.kernels().dropout_apply(x, 0.6, 424242)
    assert torch.equal(got, x * dropout_mask_reference(shape, 0.6, 424242,
                                                       dtype))


@pytest.mark.skipif(cpu_kernels.kernels() is None,
                    reason='the fused CPU kernels are not built here')
def test_kernel_mask_does_not_depend_on_threads():
    like = torch.ones(600_000)       # several grains of 64k words
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = cpu_kernels.kernels().dropout_apply(like, 0.3, 99)
        torch.set_num_threads(2)
        two = cpu_kernels.kernels().dropout_apply(like, 0.3, 99)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)


@pytest.mark.parametrize('p', [0.1, 0.5, 0.9])
def test_mask_has_dropouts_law(p):
    n = 1_000_000
    m = dropout_mask(torch.zeros(n, dtype=torch.float64), p, 2024)
    kept = m != 0
    assert torch.all(m[kept] == 1.0 / (1.0 - p))
    q = 1.0 - p
    sd = (p * q / n) ** 0.5
    assert abs(kept.double().mean().item() - q) < 5 * sd
    # the two halves of one hash word are independent, as are neighbours
    # across words
    pairs = kept[0::2] & kept[1::2]
    assert abs(pairs.double().mean().item() - q * q) < 5 * (
        q * q * (1 - q * q) / (n // 2)) ** 0.5
    across = kept[1:-1:2] & kept[2::2]
    assert abs(across.double().mean().item() - q * q) < 5 * (
        q * q * (1 - q * q) / (n // 2)) ** 0.5
    # the mean of a dropped input is the input's (inverted dropout)
    assert abs(m.mean().item() - 1.0) < 5 * (p / q / n) ** 0.5


def test_dropout_is_mask_times_input_and_its_gradient_the_mask(hashed):
    torch.manual_seed(3)
    x = torch.randn(50, 8, dtype=torch.float64, requires_grad=True)
    state = torch.get_rng_state()
    y = dropout(x, 0.4, training=True)
    torch.set_rng_state(state)
    seed = int(torch.empty((), dtype=torch.int64).random_())
    m = dropout_mask_reference(x.shape, 0.4, seed, x.dtype)
    assert torch.equal(y, x * m)
    y.backward(torch.ones_like(y))
    assert torch.equal(x.grad, m)


@pytest.mark.parametrize('kernels', ['1', '0'])
def test_nothing_is_saved_for_backward_and_gradients_check(hashed,
                                                           monkeypatch,
                                                           kernels):
    # the backward regenerates the mask from its seed
    monkeypatch.setenv('DDL_GNN_CPU_KERNELS', kernels)
    x = torch.randn(40, 6, dtype=torch.float64, requires_grad=True)
    _, saved = saved_tensor_bytes(lambda: dropout(x, 0.3))
    assert saved == 0

    def fn(t):
        torch.manual_seed(11)           # the same mask on every call
        return dropout(t, 0.3)
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_seeded_masks_repeat_and_successive_masks_differ(hashed):
    x = torch.ones(1000)
    torch.manual_seed(0)
    a, b = dropout(x, 0.5), dropout(x, 0.5)
    torch.manual_seed(0)
    assert torch.equal(dropout(x, 0.5), a)
    assert not torch.equal(a, b)


def test_non_contiguous_input_is_masked_in_logical_order(hashed):
    x = torch.randn(6, 9).t()                  # [9, 6], not contiguous
    torch.manual_seed(1)
    y = dropout(x, 0.5)
    torch.manual_seed(1)
    seed = int(torch.empty((), dtype=torch.int64).random_())
    assert torch.equal(y, x * dropout_mask_reference(x.shape, 0.5, seed))


def test_contract_of_f_dropout(hashed):
    x = torch.randn(10, 4)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0, training=True) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match='between 0 and 1'):
            dropout(x, p)
    ids = torch.arange(10)                     # not floating: torch's path
    with pytest.raises(RuntimeError):
        F.dropout(ids, 0.5)
    with pytest.raises(RuntimeError):
        dropout(ids, 0.5)


def test_switched_off_it_is_torchs_dropout():
    x = torch.randn(100, 16)
    set_hash_dropout(False)
    try:
        torch.manual_seed(5)
        got = dropout(x, 0.3)
    finally:
        set_hash_dropout(None)
    torch.manual_seed(5)
    assert torch.equal(got, F.dropout(x, 0.3))


def test_environment_variable_switches_it_off(monkeypatch):
    x = torch.randn(100, 16)
    monkeypatch.setenv('DDL_GNN_HASH_DROPOUT', '0')
    torch.manual_seed(5)
    got = dropout(x, 0.3)
    torch.manual_seed(5)
    assert torch.equal(got, F.dropout(x, 0.3))
    monkeypatch.setenv('DDL_GNN_HASH_DROPOUT', 'sometimes')
    with pytest.raises(ValueError, match='DDL_GNN_HASH_DROPOUT'):
        dropout(x, 0.3)


def test_keep_mask_is_the_same_draw(hashed):
    torch.manual_seed(8)
    keep = keep_mask((30, 7), 0.6)
    torch.manual_seed(8)
    seed = int(torch.empty((), dtype=torch.int64).random_())
    assert keep.dtype == torch.bool
    assert torch.equal(keep, dropout_mask_reference((30, 7), 0.6, seed) != 0)
    with pytest.raises(ValueError, match=r'\[0, 1\)'):
        keep_mask((3,), 1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_on_cuda_it_is_torchs_dropout(hashed):
    x = torch.randn(100, 16, device='cuda')
    torch.manual_seed(5)
    got = dropout(x, 0.3)
    torch.manual_seed(5)
    assert torch.equal(got, F.dropout(x, 0.3))
