r"""Fused C++ kernels for the delta shortcut on CPU (``csrc/delta_cpu.cpp``).

Built on first use with :func:`torch.utils.cpp_extension.load` (a C++
compiler and ``ninja`` are needed; the build is cached under
``TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``). Where
the build fails, or ``DDL_GNN_CPU_KERNELS=0`` is set, :func:`kernels`
returns ``None`` and the callers keep their torch-op path, which computes
the same values (tests compare both with the dense reference).

Not used while ``torch.compile`` traces (it fuses the torch-op path
itself). Used for first-order passes only: a backward that must itself be
differentiable (``create_graph=True``, e.g. Jacobian metrics) runs the
torch ops, which autograd can trace.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from types import ModuleType
from typing import Optional

import torch
from torch import Tensor

_SOURCE = Path(__file__).with_name('csrc') / 'delta_cpu.cpp'
_state: dict = {}


def enabled() -> bool:
    """False when ``DDL_GNN_CPU_KERNELS`` is ``0``/``false``/``no``/``off``."""
    flag = os.environ.get('DDL_GNN_CPU_KERNELS', '1').strip().lower()
    return flag not in ('0', 'false', 'no', 'off')


def _isa_flags() -> list:
    """``-mavx2 -mfma`` where this x86 CPU has them (read from
    ``/proc/cpuinfo``), else nothing (portable SSE2/baseline build)."""
    try:
        with open('/proc/cpuinfo') as fh:
            flags = next((ln.split(':', 1)[1].split() for ln in fh
                          if ln.startswith('flags')), [])
    except OSError:
        return []
    return ['-mavx2', '-mfma'] if {'avx2', 'fma'} <= set(flags) else []


def kernels() -> Optional[ModuleType]:
    """The compiled kernel module, or ``None`` (disabled or not buildable;
    the reason is warned once)."""
    if not enabled():
        return None
    if 'module' not in _state:
        try:
            from torch.utils.cpp_extension import load
            isa = _isa_flags()
            # the ISA is part of the name: a cached build never runs on a
            # CPU that lacks its instructions
            name = 'ddl_gnn_delta_cpu' + ''.join(
                '_' + f.lstrip('-m') for f in isa)
            _state['module'] = load(
                name=name, sources=[str(_SOURCE)],
                extra_cflags=['-O3', '-fopenmp', *isa],
                extra_ldflags=['-fopenmp'], verbose=False)
        except Exception as err:  # no compiler / ninja / headers
            _state['module'] = None
            warnings.warn(f"ddl_gnn: the fused CPU delta kernels could not "
                          f"be built ({type(err).__name__}: {err}); using "
                          f"the torch-op path (same values, slower for "
                          f"d_v > 1)", RuntimeWarning, stacklevel=2)
    return _state['module']


def usable(*tensors: Tensor) -> bool:
    """Whether the kernels apply: CPU floating tensors of one dtype
    (float32/float64), kernels available. Call it where no graph is being
    recorded (inside ``autograd.Function.forward``, or a backward run
    without ``create_graph``)."""
    t0 = tensors[0]
    if torch.compiler.is_compiling():
        # torch.compile traces (and fuses) the torch-op path instead of
        # breaking its graph at an opaque extension call
        return False
    if t0.device.type != 'cpu' or t0.dtype not in (torch.float32,
                                                   torch.float64):
        return False
    if any(t.device.type != 'cpu' or t.dtype != t0.dtype for t in tensors):
        return False
    return kernels() is not None
