r"""Memory-lean context + linear heads of :class:`~ddl_gnn.nn.DeltaConv`.

The layer reads its state through ``c = drop(norm(compress(X)))`` and feeds
``c`` to linear maps only (the GCN conv's weight, the gate and the value
head). Plain autograd would keep ``c`` (an extra :math:`N \times d` tensor per
layer) for the weight gradients, on top of the norm's own input. The
function here saves only ``X`` (already kept by the delta update), the
dropout mask (1 byte per entry, drawn as :func:`~ddl_gnn.ops.dropout.dropout`
draws its masks) and the weights, and
recomputes ``c`` in backward: one elementwise pass instead of an
:math:`N \times d` activation per layer.

Whether to recompute is chosen per device
(:func:`~ddl_gnn.ops.recompute.recompute_in_backward`: recompute on the CPU,
save on a GPU, ``DDL_GNN_RECOMPUTE`` to force either). When saving, the
same chain runs through plain autograd, which keeps ``c`` (and the norm's
own saved tensors) and spares backward the norm's re-run and its extra
kernel launches. The values are the same either way.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..ops._vjp import vjp_with_graph
from ..ops.dropout import keep_mask
from ..ops.recompute import recompute_in_backward

ContextFn = Callable[..., Tensor]


def _drop(t: Tensor, mask: Optional[Tensor], scale: float) -> Tensor:
    # Dropout with a fixed mask: the forward's and backward's (and the
    # saving path's) products must be the same ops to give the same values.
    return t if mask is None else t * mask * scale


def _heads(X: Tensor, mask: Optional[Tensor], scale: float, fn: ContextFn,
           Wa: Tensor, Wb: Tensor, bb: Tensor,
           *params: Tensor) -> Tuple[Tensor, Tensor]:
    """``(c W_aᵀ, c W_bᵀ + b_b)`` with ``c = drop(fn(X, *params))``, in
    plain autograd ops (the saving path, and the recomputing function's
    differentiable backward)."""
    c = _drop(fn(X, *params), mask, scale)
    return F.linear(c, Wa), F.linear(c, Wb, bb)


class _ContextLinear(torch.autograd.Function):
    r"""``(c W_aᵀ, c W_bᵀ + b_b)`` with ``c = fn(X, *params) * mask``,
    recomputing ``c`` in backward (see the module docstring)."""

    @staticmethod
    def forward(ctx, X: Tensor, mask: Optional[Tensor], scale: float,
                fn: ContextFn, Wa: Tensor, Wb: Tensor, bb: Tensor,
                *params: Tensor) -> Tuple[Tensor, Tensor]:
        ctx.fn, ctx.scale = fn, scale
        ctx.save_for_backward(X, mask, Wa, Wb, bb, *params)
        return _heads(X, mask, scale, fn, Wa, Wb, bb, *params)

    @staticmethod
    def backward(ctx, ga: Tensor, gb: Tensor):
        X, mask, Wa, Wb, bb, *params = ctx.saved_tensors
        need = ctx.needs_input_grad
        if torch.is_grad_enabled():
            # create_graph=True: differentiate the plain chain with a graph
            # (the closed form below detaches what it recomputes)
            return vjp_with_graph(need, _heads, (X, mask, ctx.scale, ctx.fn,
                                                 Wa, Wb, bb, *params),
                                  (ga, gb))
        with torch.enable_grad():
            Xd = X.detach().requires_grad_(need[0])
            pd = [p.detach().requires_grad_(n)
                  for p, n in zip(params, need[7:])]
            c = ctx.fn(Xd, *pd)
        cm = _drop(c.detach(), mask, ctx.scale)
        gWa = ga.t().mm(cm) if need[4] else None
        gWb = gb.t().mm(cm) if need[5] else None
        gbb = gb.sum(0) if need[6] else None
        inputs = [t for t in [Xd, *pd] if t.requires_grad]
        grads = [None] * (1 + len(params))
        if inputs:
            gc = _drop(torch.addmm(ga.mm(Wa), gb, Wb), mask, ctx.scale)
            got = iter(torch.autograd.grad(c, inputs, gc))
            grads = [next(got) if t.requires_grad else None
                     for t in [Xd, *pd]]
        return (grads[0], None, None, None, gWa, gWb, gbb, *grads[1:])


def context_linear(X: Tensor, fn: ContextFn, params: Sequence[Tensor],
                   Wa: Tensor, Wb: Tensor, bb: Tensor, p: float = 0.0,
                   training: bool = False) -> Tuple[Tensor, Tensor]:
    r"""Computes :math:`c = \mathrm{drop}_p(\mathrm{fn}(X, \ldots))` and
    returns :math:`(c W_a^\top,\; c W_b^\top + b_b)`, recomputing
    :math:`c` in backward or saving it as
    :func:`~ddl_gnn.ops.recompute.recompute_in_backward` chooses for
    ``X``'s device.

    Args:
        X (torch.Tensor): Node state, :obj:`[N, d]` or :obj:`[N, d, d_v]`.
        fn (callable): ``fn(X, *params) -> [N, d]``, a pure function
            (compress and norm; it is re-run in backward, so it must not
            update buffers such as BatchNorm running statistics).
        params (sequence of torch.Tensor): The tensors ``fn`` differentiates.
        Wa (torch.Tensor): :obj:`[F_a, d]` weight without bias (the conv's).
        Wb (torch.Tensor): :obj:`[F_b, d]` weight of the heads.
        bb (torch.Tensor): :obj:`[F_b]` bias of the heads.
        p (float, optional): Dropout probability on :math:`c`.
            (default: :obj:`0.`)
        training (bool, optional): Whether dropout is active.
            (default: :obj:`False`)
    """
    mask, scale = None, 1.0
    if training and p > 0.0:
        N, d = X.size(0), X.size(1)
        mask = keep_mask((N, d), p, X.device)
        scale = 1.0 / (1.0 - p)
    if recompute_in_backward(X.device):
        return _ContextLinear.apply(X, mask, scale, fn, Wa, Wb, bb, *params)
    # Saving: the same ops under plain autograd (same mask, same scaling),
    # so the values match the recomputing function's.
    return _heads(X, mask, scale, fn, Wa, Wb, bb, *params)
