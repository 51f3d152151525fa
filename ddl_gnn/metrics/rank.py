r"""Rank-collapse measures: numerical rank and effective rank.

Both read the singular values of :math:`\mathbf{X} \in \mathbb{R}^{N \times
d}` from the eigenvalues of the :math:`d \times d` Gram matrix
:math:`\mathbf{X}^{\top}\mathbf{X}` (formed in float64), so the cost is
:math:`O(N d^2 + d^3)` and no :math:`N \times N` matrix is built. Singular
values with :math:`\sigma_k^2 \le 10^3 \, d \, \epsilon_{64} \sigma_{\max}^2`
(about :math:`\sigma_k \lesssim 5 \cdot 10^{-6} \sigma_{\max}` for
:math:`d = 128`) are below the Gram's rounding level and are set to 0, so a rank-one
:math:`\mathbf{X}` gives exactly 1.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from .._validate import check_batch, check_x
from .batched import graph_mean, graph_slices, num_graphs

#: Relative (per feature) rounding level of the Gram's eigenvalues.
GRAM_RTOL = 1e3 * torch.finfo(torch.float64).eps
#: Rows per chunk when forming the Gram matrix.
ROW_CHUNK = 1 << 16


def _gram_eigvals(x: Tensor) -> Tensor:
    r"""Eigenvalues :math:`\sigma_k^2` of :math:`\mathbf{X}^{\top}\mathbf{X}`
    (float64, clamped at 0, ascending)."""
    d = x.size(-1)
    gram = torch.zeros(d, d, dtype=torch.float64, device=x.device)
    for s in range(0, x.size(0), ROW_CHUNK):
        chunk = x[s:s + ROW_CHUNK].to(torch.float64)
        gram += chunk.t() @ chunk
    ev = torch.linalg.eigvalsh(gram)
    # Eigenvalues below the Gram's rounding level are noise: set them to 0.
    tol = ev[-1].clamp(min=0) * d * GRAM_RTOL
    return torch.where(ev > tol, ev, torch.zeros_like(ev))


def _numerical_rank(x: Tensor) -> Tensor:
    ev = _gram_eigvals(x)
    top = ev[-1]
    return torch.where(top > 0, ev.sum() / top.clamp(min=1e-300),
                       torch.zeros_like(top))


def _effective_rank(x: Tensor) -> Tensor:
    sigma = _gram_eigvals(x).sqrt()
    total = sigma.sum()
    if not bool(total > 0):
        return total.new_zeros(())
    p = sigma / total
    ent = -(p * torch.log(p.clamp(min=1e-300))).sum()
    return ent.exp()


def _per_graph(fn: Callable[[Tensor], Tensor], x: Tensor,
               batch: Optional[Tensor]) -> Tensor:
    if batch is None:
        return fn(x)
    perm, ptr = graph_slices(batch)
    xs = x[perm]
    vals = torch.zeros(num_graphs(batch), dtype=torch.float64,
                       device=x.device)
    for g in range(vals.numel()):
        if ptr[g + 1] > ptr[g]:
            vals[g] = fn(xs[ptr[g]:ptr[g + 1]])
    return graph_mean(vals, ptr[1:] > ptr[:-1])


def numerical_rank(x: Tensor, batch: Optional[Tensor] = None) -> Tensor:
    r"""The numerical (stable) rank from the `"Are We Measuring
    Oversmoothing in Graph Neural Networks Correctly?"
    <https://arxiv.org/abs/2502.04591>`_ paper:

    .. math::
        \mathrm{NR}(\mathbf{X}) = \frac{\|\mathbf{X}\|_F^2}
        {\|\mathbf{X}\|_2^2} = \frac{\sum_k \sigma_k^2}{\sigma_1^2}
        \in [1, \operatorname{rank}(\mathbf{X})]

    Scale-invariant; :obj:`0` for :math:`\mathbf{X} = 0`.

    Args:
        x (torch.Tensor): Node features.
        batch (torch.Tensor, optional): Graph assignment; computed per graph
            and averaged. (default: :obj:`None`)

    Shapes:
        - **input:** :math:`(|\mathcal{V}|, F)`
        - **output:** scalar (0-dim float64 tensor)
    """
    check_x(x)
    check_batch(batch, x.size(0))
    return _per_graph(_numerical_rank, x, batch)


def effective_rank(x: Tensor, batch: Optional[Tensor] = None) -> Tensor:
    r"""The effective rank of `"The Effective Rank: A Measure of Effective
    Dimensionality" <https://ieeexplore.ieee.org/document/7098875>`_
    (Roy & Vetterli, 2007):

    .. math::
        \mathrm{erank}(\mathbf{X}) = \exp\Big(-\sum_k p_k \log p_k\Big),
        \qquad p_k = \frac{\sigma_k}{\sum_m \sigma_m}

    with :math:`0 \log 0 = 0`. Lies in :math:`[1, \operatorname{rank}]`,
    scale-invariant; :obj:`0` for :math:`\mathbf{X} = 0`.

    Args:
        x (torch.Tensor): Node features.
        batch (torch.Tensor, optional): Graph assignment; computed per graph
            and averaged. (default: :obj:`None`)

    Shapes:
        - **input:** :math:`(|\mathcal{V}|, F)`
        - **output:** scalar (0-dim float64 tensor)
    """
    check_x(x)
    check_batch(batch, x.size(0))
    return _per_graph(_effective_rank, x, batch)
