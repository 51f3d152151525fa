r"""Dropout whose CPU masks come from a counter-based hash.

:func:`torch.nn.functional.dropout` draws its CPU mask with ``bernoulli_``
at about 12 ns an element: on a Cora-size state (2,708 × 64) one mask
costs about 2 ms, as much as the layer's conv, and a 64-layer stack that
drops in every layer spends half its training step drawing masks.
:func:`dropout` computes the same kind of mask (each element kept with
probability :math:`1 - p` and scaled by :math:`1 / (1 - p)`, independently)
from a hash of its position instead:

.. math::
    z_j = \mathrm{splitmix64}(s + (j + 1)\, \varphi), \qquad
    \text{keep element } 2j + r \iff
    \lfloor z_j / 2^{32 r} \rfloor \bmod 2^{32} \ge \lfloor p\, 2^{32}
    \rfloor \quad (r \in \{0, 1\})

with :math:`\varphi` = ``0x9E3779B97F4A7C15`` and one seed :math:`s` per
call drawn from torch's default CPU generator. ``torch.manual_seed``
therefore fixes the masks, and a checkpointed segment, which restores that
generator before its recompute, draws the same ones. The fused kernel
(``csrc/dropout_cpu.cpp``) applies a mask in about 0.1 ms at that size
and its backward applies the same mask again, regenerated from the seed
(no mask is kept for backward); :func:`dropout_mask_reference` computes
the same bits in torch ops (the path without the kernels, and the tests'
reference).

The masks are other random numbers than torch's, so a run differs from the
same run with :func:`torch.nn.functional.dropout` as one seed differs from
another. ``DDL_GNN_HASH_DROPOUT=0`` (or :func:`set_hash_dropout`) uses
torch's dropout everywhere; on other devices than the CPU, and while
``torch.compile`` traces, :func:`dropout` is torch's (fused and fast on a
GPU).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from . import cpu_kernels
from ._flags import forced

_override: dict = {}
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def set_hash_dropout(value: Optional[bool]) -> None:
    r"""Forces hashed CPU masks (:obj:`True`) or torch's dropout
    (:obj:`False`); :obj:`None` restores the default (hashed on the CPU)
    and the ``DDL_GNN_HASH_DROPOUT`` variable."""
    if value is None:
        _override.pop('value', None)
    else:
        _override['value'] = bool(value)


def hash_dropout_enabled() -> bool:
    """Whether :func:`dropout` draws hashed masks on the CPU."""
    value = forced(_override, 'DDL_GNN_HASH_DROPOUT')
    return True if value is None else value


def _signed(c: int) -> int:
    """A 64-bit constant as the int64 with the same bits."""
    return c - (1 << 64) if c >= 1 << 63 else c


def _shift_right(z: Tensor, k: int) -> Tensor:
    """Logical right shift of int64 words (torch's ``>>`` is arithmetic)."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def mask_threshold(p: float) -> int:
    r""":math:`\lfloor p\, 2^{32} \rfloor` (capped at :math:`2^{32} - 1`):
    an element whose 32 bits are at least this is kept."""
    return min((1 << 32) - 1, int(p * 4294967296.0))


def dropout_mask_reference(shape: Sequence[int], p: float, seed: int,
                           dtype: torch.dtype = torch.float32,
                           device=None) -> Tensor:
    r"""The mask of :func:`dropout` (the module docstring's hash) in torch
    ops on int64 words, whose products wrap modulo :math:`2^{64}`:
    :math:`1 / (1 - p)` where kept, 0 where dropped. Bit for bit what the
    fused kernel draws."""
    numel = 1
    for s in shape:
        numel *= int(s)
    j = torch.arange(1, (numel + 1) // 2 + 1, dtype=torch.int64,
                     device=device)
    z = j * _signed(_GOLDEN) + _signed(seed % (1 << 64))
    z = (z ^ _shift_right(z, 30)) * _signed(_MIX1)
    z = (z ^ _shift_right(z, 27)) * _signed(_MIX2)
    z = z ^ _shift_right(z, 31)
    bits = torch.stack([z & 0xFFFFFFFF, _shift_right(z, 32)], 1)
    bits = bits.reshape(-1)[:numel]
    keep = torch.tensor(1.0 / (1.0 - p), dtype=dtype, device=device)
    return torch.where(bits >= mask_threshold(p), keep,
                       torch.zeros((), dtype=dtype, device=device)
                       ).reshape(tuple(shape))


def draw_seed() -> int:
    """One mask seed from torch's default CPU generator (63 bits)."""
    return int(torch.empty((), dtype=torch.int64).random_())


def _apply_mask(x: Tensor, p: float, seed: int) -> Tensor:
    """``x`` times the mask of ``(p, seed)`` (in ``x``'s logical order): the
    fused kernel where it is built, else :func:`dropout_mask_reference`."""
    if cpu_kernels.usable(x):
        return cpu_kernels.kernels().dropout_apply(x.contiguous(), float(p),
                                                   int(seed))
    return x * dropout_mask_reference(x.shape, p, seed, x.dtype, x.device)


def dropout_mask(x: Tensor, p: float, seed: int) -> Tensor:
    """The scaled keep-mask of :func:`dropout` in ``x``'s shape, dtype and
    device (the kernel applied to ones)."""
    return _apply_mask(torch.ones_like(x), p, seed)


def _hashed(device: torch.device) -> bool:
    return (device.type == 'cpu' and not torch.compiler.is_compiling()
            and hash_dropout_enabled())


def keep_mask(shape: Sequence[int], p: float,
              device=None) -> Tensor:
    r"""A boolean keep-mask (each entry :obj:`True` with probability
    :math:`1 - p`, ``0 <= p < 1``), drawn as :func:`dropout` draws its
    masks: hashed on the CPU, ``bernoulli_`` elsewhere. For functions
    that keep the mask themselves (1 byte an entry)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"keep_mask: p must lie in [0, 1), got {p}")
    device = torch.device('cpu') if device is None else torch.device(device)
    if _hashed(device):
        return _apply_mask(torch.ones(tuple(shape)), p, draw_seed()) != 0
    return torch.empty(tuple(shape), dtype=torch.bool,
                       device=device).bernoulli_(1.0 - p)


class _HashedDropout(torch.autograd.Function):
    """``x * mask`` whose backward regenerates the mask from its seed:
    nothing is saved for backward (torch's dropout keeps an ``x``-sized
    mask)."""

    @staticmethod
    def forward(ctx, x: Tensor, p: float, seed: int) -> Tensor:
        ctx.p, ctx.seed = p, seed
        return _apply_mask(x, p, seed)

    @staticmethod
    def backward(ctx, g: Tensor):
        # the same linear map again (differentiable for double backward)
        return _HashedDropout.apply(g, ctx.p, ctx.seed), None, None


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    r"""Inverted dropout, :func:`torch.nn.functional.dropout`'s contract:
    in training each element is zeroed with probability ``p`` and the rest
    are scaled by :math:`1 / (1 - p)`; the identity otherwise. On the CPU
    the mask is hashed (see the module docstring), about 15× faster than
    torch's at a Cora-size state, and regenerated from its seed in
    backward, so nothing is saved for it; elsewhere it is torch's.

    Args:
        x (torch.Tensor): Input of any shape.
        p (float): Probability of an element being zeroed, in
            :math:`[0, 1]`. (default: :obj:`0.5`)
        training (bool): Apply dropout (else return ``x``).
            (default: :obj:`True`)
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, "
                         f"but got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0 or not x.is_floating_point() or not _hashed(x.device):
        return F.dropout(x, p=p, training=True)
    return _HashedDropout.apply(x, p, draw_seed())
