"""Small resolvers shared by the delta layer and the baselines."""
from __future__ import annotations

from typing import Optional, Union

from torch import nn

NORMS = ('layer_norm', 'rms_norm', 'batch_norm', None)


def make_norm(norm: Union[str, nn.Module, None], channels: int
              ) -> Optional[nn.Module]:
    """``'layer_norm'``, ``'rms_norm'``, ``'batch_norm'``, ``None`` or a
    module (returned as is)."""
    if norm is None or norm == 'none':
        return None
    if isinstance(norm, nn.Module):
        return norm
    if norm == 'layer_norm':
        return nn.LayerNorm(channels)
    if norm == 'rms_norm':
        return nn.RMSNorm(channels)
    if norm == 'batch_norm':
        return nn.BatchNorm1d(channels)
    raise ValueError(f"'norm' must be one of {NORMS} or a module, got "
                     f"{norm!r}")
