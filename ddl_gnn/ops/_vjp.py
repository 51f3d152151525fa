"""The ``create_graph=True`` backward of the fused autograd functions."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor


def vjp_with_graph(ctx, fn: Callable[..., Tensor], inputs: Sequence,
                   cotangents: Tensor, trailing: int = 0) -> tuple:
    """Vector-Jacobian product of ``fn(*inputs)`` recorded with a graph
    (a backward that must itself be differentiable: the closed forms use
    values saved without history); ``None`` for the inputs that need no
    gradient, then ``trailing`` ``None``s for the function's non-tensor
    arguments."""
    idx = [i for i, n in enumerate(ctx.needs_input_grad[:len(inputs)]) if n]
    got = torch.autograd.grad(fn(*inputs), [inputs[i] for i in idx],
                              cotangents, create_graph=True,
                              allow_unused=True)
    full = [None] * (len(inputs) + trailing)
    for i, gi in zip(idx, got):
        full[i] = gi
    return tuple(full)
