"""The optimizer every training run uses."""
from __future__ import annotations

from typing import Any, Dict, Iterable, Union

import torch
from torch import Tensor


def adam(params: Union[Iterable[Tensor], Iterable[Dict[str, Any]]],
         lr: float) -> torch.optim.Adam:
    """:class:`torch.optim.Adam` over ``params`` (tensors or parameter
    groups), with its multi-tensor (``foreach``) implementation on every
    device.

    On the CPU torch defaults to the per-tensor loop, whose cost grows
    with the number of parameter tensors rather than their size: on small
    graphs it is a visible part of a deep stack's step, and more so for
    the delta stack, whose gates add two tensors per layer
    (``benchmarks/README.md``, small graphs). The updates are the same
    arithmetic in the same order (``tests/experiment/test_optimizer.py``
    compares them bit for bit); on CUDA ``foreach`` is torch's default.
    """
    return torch.optim.Adam(params, lr=lr, foreach=True)
