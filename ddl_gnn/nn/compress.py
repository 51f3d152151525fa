r"""Read-out of a matrix node state :math:`X_i \in \mathbb{R}^{d \times d_v}`."""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import Module, Parameter

from ..ops.compress import compress_state


class StateCompressor(Module):
    r"""Per-feature mix over the :math:`d_v` value columns (DDL's "CC"
    compressor): :math:`x_{i,f} = \sum_j c_{f,j} X_{i,f,j}`.

    Initialised as the exact mean :math:`c_{f,j} = 1/d_v` (the official code
    starts from a random mix; the paper describes the mean). With
    :math:`d_v = 1` the state is already a vector and this is the identity.

    Args:
        channels (int): State width :math:`d`.
        d_v (int): Number of value columns.

    Shapes:
        - **input:** :math:`(|\mathcal{V}|, d, d_v)` or :math:`(|\mathcal{V}|, d)`
        - **output:** :math:`(|\mathcal{V}|, d)`
    """

    def __init__(self, channels: int, d_v: int):
        super().__init__()
        self.channels, self.d_v = channels, d_v
        if d_v > 1:
            self.weight = Parameter(torch.empty(channels, d_v))
        else:
            self.register_parameter('weight', None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            torch.nn.init.constant_(self.weight, 1.0 / self.d_v)

    def forward(self, X: Tensor) -> Tensor:
        if self.weight is None:
            return X
        return compress_state(X, self.weight)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.channels}, d_v={self.d_v})'
