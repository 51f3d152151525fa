r"""Per-node gate :math:`\beta_i` of the delta shortcut.

Modes (``beta_mode``):

- ``'learned'`` (default): :math:`\beta = 2\,\sigma(w^\top c + b)\in(0, 2)`,
  so a layer can keep (β≈0), erase-and-rewrite (β≈1) or reflect (β≈2).
- ``'learned01'``: :math:`\beta = \sigma(w^\top c + b)\in(0, 1)` (no
  reflection, ablation).
- ``'fixed'``: :math:`\beta = \beta_0` for every node (ablations at 0, 1, 2).

The bias starts at :math:`\operatorname{logit}(\beta_0 / s)` (``s`` = 2 or 1)
and the weight at zero, so at initialisation every node's gate equals
``beta_init`` exactly while the weight still receives gradient.

With ``heads = H > 1`` each head's gate reads the whole context (a dense
:math:`H \times F` weight) or, with ``block=True``, only its own block of
each of the context's ``parts`` (``[c ‖ c0]``: 2 parts): the head-:math:`h`
logit is :math:`\sum_p w_{h,p}^\top c_{p,h} + b_h`, :math:`F` weights per
layer instead of :math:`H F`. With one head per channel that is a gate
per channel from the channel's own state and input value.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor
from torch.nn import Module, Parameter

BETA_MODES = ('learned', 'learned01', 'fixed')
#: The default gate at initialisation, :math:`\beta_0`, of every layer and
#: model that builds a :class:`BetaGate` (written once, here).
BETA_INIT = 0.1


def _logit(p: float) -> float:
    # Clamped like the official DDL code, so beta_init = 0 or 2 is finite.
    p = min(max(p, 1e-6), 1.0 - 1e-6)
    return math.log(p / (1.0 - p))


def channel_logit(parts: Sequence[Tensor], weight: Tensor,
                  bias: Tensor) -> Tensor:
    r"""The logits ``[N, H]`` of a block gate with one channel per head:
    :math:`b + \sum_p W_{:, p} \odot c_p` over its parts :math:`c_p`
    ``[N, H]`` (the state, then the input), ``weight`` ``[H, P]``. Each
    part times a weight column is a contiguous broadcast; the general
    blocks form (``[N, H, 1]`` times ``[H, 1]``) runs several times
    slower."""
    logit = torch.addcmul(bias, parts[0], weight[:, 0])
    for p in range(1, len(parts)):
        logit = logit.addcmul_(parts[p], weight[:, p])
    return logit


class BetaGate(Module):
    r"""Computes the gate :math:`\beta_i` from a per-node context.

    Args:
        in_channels (int): Width of the context :math:`c_i`.
        beta_init (float, optional): :math:`\beta_0`, the gate at
            initialisation. (default: :obj:`BETA_INIT`)
        beta_mode (str, optional): ``'learned'``, ``'learned01'`` or
            ``'fixed'``. (default: :obj:`'learned'`)
        heads (int, optional): Gates per node, one per head of the
            multi-head update. (default: :obj:`1`)
        block (bool, optional): Each head's gate reads only its own block
            of every part of the context. (default: :obj:`False`)
        parts (int, optional): Number of equal-width vectors concatenated
            in the context (``block`` splits each into ``heads`` blocks).
            (default: :obj:`1`)

    Shapes:
        - **input:** context :math:`(|\mathcal{V}|, F)`
        - **output:** gates :math:`(|\mathcal{V}|)`, or
          :math:`(|\mathcal{V}|, H)` for ``heads = H > 1``
    """

    def __init__(self, in_channels: int, beta_init: float = BETA_INIT,
                 beta_mode: str = 'learned', heads: int = 1,
                 block: bool = False, parts: int = 1):
        super().__init__()
        if beta_mode not in BETA_MODES:
            raise ValueError(f"BetaGate: 'beta_mode' must be one of "
                             f"{BETA_MODES}, got {beta_mode!r}")
        hi = 1.0 if beta_mode == 'learned01' else 2.0
        if not (0.0 <= float(beta_init) <= hi):
            raise ValueError(f"BetaGate: 'beta_init' must lie in [0, {hi:g}] "
                             f"for beta_mode={beta_mode!r}, got {beta_init}")
        if not isinstance(heads, int) or heads < 1:
            raise ValueError(f"BetaGate: 'heads' must be a positive int, got "
                             f"{heads!r}")
        if not isinstance(block, bool):
            raise ValueError(f"BetaGate: 'block' must be a bool, got "
                             f"{block!r}")
        if not isinstance(parts, int) or parts < 1 or in_channels % parts:
            raise ValueError(f"BetaGate: 'parts' must be a positive int "
                             f"dividing in_channels = {in_channels}, got "
                             f"{parts!r}")
        if block and (in_channels // parts) % heads:
            raise ValueError(f"BetaGate: with block=True, heads = {heads} "
                             f"must divide the part width "
                             f"{in_channels // parts}")
        self.in_channels, self.heads = in_channels, heads
        self.block, self.parts = block and heads > 1, parts
        self.beta_init = float(beta_init)
        self.beta_mode = beta_mode
        self.scale = hi
        if beta_mode == 'fixed':
            self.register_parameter('weight', None)
            self.register_parameter('bias', None)
        else:
            # One head: a vector weight (the gate is w·c + b, shape [N]).
            shape = ((in_channels, ) if heads == 1 else
                     (heads, in_channels // heads if self.block
                      else in_channels))
            self.weight = Parameter(torch.empty(shape))
            self.bias = Parameter(torch.empty(heads))
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            torch.nn.init.zeros_(self.weight)
            torch.nn.init.constant_(self.bias,
                                    _logit(self.beta_init / self.scale))

    def forward(self, c: Tensor) -> Tensor:
        if self.weight is None:
            return self.from_logit(None, c)
        # Logits in float32 at least, as the official code does.
        dt = c.dtype if c.dtype == torch.float64 else torch.float32
        if self.block and self.weight.size(1) == self.parts:
            H, cd = self.heads, c.to(dt)
            return self.from_logit(channel_logit(
                [cd[:, p * H:(p + 1) * H] for p in range(self.parts)],
                self.weight.to(dt), self.bias.to(dt)), c)
        if self.block:
            logit = (self.blocks(c.to(dt)) * self.weight.to(dt)).sum(-1)
            return self.from_logit(logit + self.bias.to(dt), c)
        logit = c.to(dt) @ self.weight.to(dt).t() + self.bias.to(dt)
        return self.from_logit(logit, c)

    def blocks(self, c: Tensor) -> Tensor:
        r"""The context ``[N, F]`` rearranged as ``[N, H, F / H]``: row
        :math:`h` holds head :math:`h`'s block of every part, in the order
        of the block gate's weight row."""
        N, H, P = c.size(0), self.heads, self.parts
        w = self.in_channels // (P * H)
        return c.reshape(N, P, H, w).transpose(1, 2).reshape(N, H, P * w)

    def from_logit(self, logit: Optional[Tensor], like: Tensor) -> Tensor:
        r"""The gate :math:`\beta` from its logit ``w·c + b`` (``[N]``, or
        ``[N, heads]``; ``None`` for a fixed gate), in ``like``'s dtype and
        with one row per row of ``like``: the map :meth:`forward` applies,
        for callers that compute the logit inside a fused product."""
        if self.weight is None:
            n = like.size(0)
            return like.new_full((n, ) if self.heads == 1 else
                                 (n, self.heads), self.beta_init)
        return (self.scale * torch.sigmoid(logit)).to(like.dtype)

    def __repr__(self) -> str:
        heads = '' if self.heads == 1 else f', heads={self.heads}'
        if self.block:
            heads += ', block=True'
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'beta_init={self.beta_init:g}, beta_mode={self.beta_mode}'
                f'{heads})')
