r"""Compiled regions: the torch-op chains of the fused functions, fused by
``torch.compile`` where the CPU kernels do not serve.

The delta update (:func:`~ddl_gnn.ops.delta_update`), the update with its
compressed read (:func:`~ddl_gnn.ops.delta_update_read`) and the
anchored-message update (:mod:`ddl_gnn.nn.message_path`) each have a
forward and a closed-form backward written in torch ops. On the CPU the
fused kernels (:mod:`ddl_gnn.ops.cpu_kernels`) run them in one pass over
the rows; elsewhere those torch-op chains are about a dozen elementwise
kernels each way. Here each chain is compiled once per function
(``torch.compile(dynamic=True)``; on CUDA Inductor emits Triton kernels)
and called in its place, with the same inputs, outputs and autograd
wiring: a region computes the same function as the plain chain (tests
compare values and every gradient with the dense reference).

``DDL_GNN_COMPILE`` chooses: ``auto`` (or unset) compiles on CUDA when
Triton is importable, and nowhere else (the CPU has its kernels; a
compile costs seconds per region and shape family); ``1`` (or
``always``) compiles on every device, ``0`` (or ``never``) on none.
:func:`set_compile` does the same from Python (:obj:`None` restores the
variable's choice).
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Union

import torch

from ._flags import forced

_override: dict = {}
_compiled: Dict[Callable, Callable] = {}


def set_compile(value: Optional[bool]) -> None:
    r"""Forces the compiled regions on (:obj:`True`) or off (:obj:`False`)
    on every device; :obj:`None` restores ``DDL_GNN_COMPILE``'s choice."""
    if value is None:
        _override.pop('value', None)
    else:
        _override['value'] = bool(value)


def _has_triton() -> bool:
    try:
        from torch.utils._triton import has_triton
    except ImportError:   # pragma: no cover - older torch
        return False
    return has_triton()


def compile_enabled(device: Union[torch.device, str, None] = None) -> bool:
    r"""Whether the fused functions run their compiled regions on
    ``device`` (see the module docstring)."""
    if torch.compiler.is_compiling():
        return False      # an enclosing torch.compile traces the ops itself
    value = forced(_override, 'DDL_GNN_COMPILE')
    if value is not None:
        return value
    kind = torch.device(device).type if device is not None else 'cpu'
    return kind == 'cuda' and _has_triton()


def region(fn: Callable, device: Union[torch.device, str, None]
           ) -> Callable:
    r"""``fn`` compiled (once; ``dynamic=True``, so the node count does
    not recompile) where :func:`compile_enabled` says so, else ``fn``."""
    if not compile_enabled(device):
        return fn
    if fn not in _compiled:
        _compiled[fn] = torch.compile(fn, dynamic=True, fullgraph=True)
    return _compiled[fn]
