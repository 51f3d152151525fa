"""The ``create_graph=True`` backward of the fused autograd functions."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor


def vjp_with_graph(needs: Sequence[bool], fn: Callable[..., Tensor],
                   inputs: Sequence, cotangents: Tensor,
                   trailing: int = 0) -> tuple:
    """Vector-Jacobian product of ``fn(*inputs)`` recorded with a graph
    (a backward that must itself be differentiable: the closed forms use
    values saved without history), for the inputs whose flag in ``needs``
    is set (an autograd function's ``ctx.needs_input_grad``); ``None`` for
    the others, then ``trailing`` ``None``s for the function's non-tensor
    arguments.

    Each input needed is read through a view of its own, and the product
    taken with respect to the view: the partial derivative in that input
    alone. With respect to the input itself autograd would also follow the
    input's own history where another input descends from it (a deep
    stack's ``x`` from its ``x0``) and count those paths twice, once here
    and once in the outer backward."""
    idx = [i for i, n in enumerate(needs[:len(inputs)]) if n]
    inputs = list(inputs)
    for i in idx:
        inputs[i] = inputs[i].view_as(inputs[i])
    got = torch.autograd.grad(fn(*inputs), [inputs[i] for i in idx],
                              cotangents, create_graph=True,
                              allow_unused=True)
    full = [None] * (len(inputs) + trailing)
    for i, gi in zip(idx, got):
        full[i] = gi
    return tuple(full)
