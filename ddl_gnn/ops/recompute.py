r"""Recompute or save in backward: a per-device choice.

A fused function can either keep an :math:`N \times d` intermediate for
backward or rebuild it there from tensors that are kept anyway. The
anchored direction :math:`k = (1 - \alpha) h + \alpha x_0` of
:mod:`ddl_gnn.nn.message_path` and the layer context of
:func:`~ddl_gnn.nn.context.context_linear` follow this choice.
Recomputing costs an elementwise pass (the context: the norm's re-run)
and saves one activation per layer.

- On the CPU (default: recompute) memory is the scarce resource at depth
  and an elementwise pass is cheap next to the conv.
- On a GPU (default: save) the extra kernel launches and the norm's
  re-run cost time that the memory (a fraction of the conv's own
  activations) does not buy back.

``DDL_GNN_RECOMPUTE`` overrides the default for every device: ``1`` (or
``always``) recomputes, ``0`` (or ``never``) saves, ``auto`` (or unset)
is the per-device default above; :func:`set_recompute` does the same from
Python (``None`` restores the default). The values are the same either
way (tests run both).
"""
from __future__ import annotations

from typing import Optional, Union

import torch

from ._flags import forced

_override: dict = {}


def set_recompute(value: Optional[bool]) -> None:
    r"""Forces recompute (:obj:`True`) or save (:obj:`False`) on every
    device; :obj:`None` restores the per-device default (and the
    ``DDL_GNN_RECOMPUTE`` variable)."""
    if value is None:
        _override.pop('value', None)
    else:
        _override['value'] = bool(value)


def recompute_in_backward(device: Union[torch.device, str, None] = None
                          ) -> bool:
    r"""Whether fused functions on ``device`` recompute their
    intermediates in backward (see the module docstring)."""
    value = forced(_override, 'DDL_GNN_RECOMPUTE')
    if value is not None:
        return value
    kind = torch.device(device).type if device is not None else 'cpu'
    return kind == 'cpu'
