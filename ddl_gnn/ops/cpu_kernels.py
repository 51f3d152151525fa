r"""Fused C++ kernels for the delta shortcut on CPU (``csrc/delta_cpu.cpp``;
``csrc/message_cpu.cpp``: the anchored-message layer of
:mod:`ddl_gnn.nn.message_path`, and ``csrc/message_function.cpp``: its
default layer's update as an autograd function written in C++;
``csrc/axes_cpu.cpp``, ``csrc/axes_function.cpp``: the same for the
channel-axes layer of :mod:`ddl_gnn.nn.axes_path`;
``csrc/dropout_cpu.cpp``: the dropout masks of :mod:`.dropout`).

Built on first use with :func:`torch.utils.cpp_extension.load` (a C++
compiler and ``ninja`` are needed; about 50 s on 2 cores, announced on
stderr) into a folder keyed by the environment, torch version and sources
under ``$DDL_GNN_KERNELS_DIR`` (default ``~/.cache/ddl_gnn/kernels``; see
:mod:`._build` for the lock that a killed build cannot leave stuck). Build
them up front with ``ddl-gnn build-kernels``. Where the build fails, or
``DDL_GNN_CPU_KERNELS=0`` is set, :func:`kernels` returns ``None`` (with one
warning saying why) and the callers keep their torch-op path, which computes
the same values (tests compare both with the dense reference).

Not used while ``torch.compile`` traces (it fuses the torch-op path
itself). Used for first-order passes only: a backward that must itself be
differentiable (``create_graph=True``, e.g. Jacobian metrics) runs the
torch ops, which autograd can trace.
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Callable, Optional

import torch
from torch import Tensor

from . import _build

_SOURCE = Path(__file__).with_name('csrc') / 'delta_cpu.cpp'
_SOURCES = [_SOURCE.with_name(name) for name in (
    'delta_cpu.cpp', 'message_cpu.cpp', 'message_function.cpp',
    'axes_cpu.cpp', 'axes_function.cpp', 'graph_backward.cpp',
    'dropout_cpu.cpp')]
#: Included by the sources: part of the build folder's key (a changed
#: header rebuilds), not compiled on their own.
_HEADERS = [_SOURCE.with_name(name) for name in (
    'message_cpu.h', 'axes_cpu.h', 'graph_backward.h')]
_state: dict = {}
#: name -> the kernel module whose create_graph backward for the C++
#: function of that name is registered (:func:`cpp_function`).
_graph_backward_in: dict = {}


def enabled() -> bool:
    """False when ``DDL_GNN_CPU_KERNELS`` is ``0``/``false``/``no``/``off``."""
    flag = os.environ.get('DDL_GNN_CPU_KERNELS', '1').strip().lower()
    return flag not in ('0', 'false', 'no', 'off')


def _isa_flags() -> list:
    """``-mavx2 -mfma`` where this x86 CPU has them (read from
    ``/proc/cpuinfo``), else nothing (portable SSE2/baseline build); and
    ``-mavx512f`` too where it also has AVX-512F: the default layer's gate
    products then run on 16-lane vectors (``csrc/message_cpu.cpp``)."""
    try:
        with open('/proc/cpuinfo') as fh:
            flags = next((ln.split(':', 1)[1].split() for ln in fh
                          if ln.startswith('flags')), [])
    except OSError:
        return []
    flags = set(flags)
    if not {'avx2', 'fma'} <= flags:
        return []
    return ['-mavx2', '-mfma'] + (['-mavx512f'] if 'avx512f' in flags
                                  else [])


def _spec():
    """``(name, sources, cflags, ldflags)`` of this CPU's build."""
    isa = _isa_flags()
    # the ISA is part of the name: a cached build never runs on a CPU that
    # lacks its instructions
    name = 'ddl_gnn_delta_cpu' + ''.join('_' + f.lstrip('-m') for f in isa)
    # With AVX-512 only the gate's explicit 16-lane loops use it: the
    # compiler's own vectorisation keeps the 8-lane vectors the other
    # kernels were written and timed with.
    width = ['-mprefer-vector-width=256'] if '-mavx512f' in isa else []
    return name, _SOURCES, ['-O3', '-fopenmp', *isa, *width], ['-fopenmp']


def build() -> ModuleType:
    """Builds (if needed) and imports the kernels; raises on failure."""
    name, sources, cflags, ldflags = _spec()
    folder = _build.build_folder(name, [*sources, *_HEADERS],
                                 cflags + ldflags)
    return _build.load(name, sources, folder, cflags, ldflags,
                       what='the fused CPU delta kernels', seconds=50)


def _why(err: Exception) -> str:
    """The first and last lines of a build error (a failed compile's
    output runs to hundreds of lines)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    text = ' ... '.join(lines[:1] + lines[-2:]) if len(lines) > 3 else \
        ' '.join(lines)
    return f'{type(err).__name__}: {text[:400]}'


def kernels() -> Optional[ModuleType]:
    """The compiled kernel module, or ``None`` (disabled or not buildable;
    the reason is warned once)."""
    if not enabled():
        return None
    if 'module' not in _state:
        try:
            _state['module'] = build()
        except Exception as err:  # no compiler / ninja / headers
            _state['module'] = None
            warnings.warn(f"ddl_gnn: the fused CPU delta kernels could not "
                          f"be built ({_why(err)}); using the torch-op path "
                          f"(same values, slower for d_v > 1). Install a C++ "
                          f"compiler, or set DDL_GNN_CPU_KERNELS=0 to skip "
                          f"this build", RuntimeWarning, stacklevel=2)
    return _state['module']


def kernels_for(*tensors: Tensor) -> Optional[ModuleType]:
    """The kernel module where it applies to ``tensors`` (CPU floating
    tensors of one dtype, float32/float64, kernels available), else
    ``None``. Call it where no graph is being recorded (inside
    ``autograd.Function.forward``, or a backward run without
    ``create_graph``), or before an autograd function of the module."""
    if torch.compiler.is_compiling():
        # torch.compile traces (and fuses) the torch-op path instead of
        # breaking its graph at an opaque extension call
        return None
    dtype = tensors[0].dtype
    if dtype is not torch.float32 and dtype is not torch.float64:
        return None
    # a plain loop: this runs twice per layer and step (a generator over
    # the tensors and their device objects cost several microseconds)
    for t in tensors:
        if not t.is_cpu or t.dtype is not dtype:
            return None
    return kernels()


def cpp_function(module: Optional[ModuleType], name: str,
                 graph_backward: Callable[..., list]) -> Optional[Callable]:
    """The kernel ``module``'s autograd function ``name`` written in C++
    (``None`` where there is no module, e.g. :func:`kernels_for` found
    none, or it has no such function). Its closed-form backward is
    first-order; a ``create_graph`` backward calls ``graph_backward``
    (registered here under ``name``), which differentiates the Python
    reference with a graph."""
    if module is None or not hasattr(module, name):
        return None
    if _graph_backward_in.get(name) is not module:
        module.set_graph_backward(name, graph_backward)
        _graph_backward_in[name] = module
    return getattr(module, name)


def usable(*tensors: Tensor) -> bool:
    """Whether the kernels apply to ``tensors`` (:func:`kernels_for`)."""
    return kernels_for(*tensors) is not None


def main() -> int:
    """``ddl-gnn build-kernels``: build now (e.g. at install time) and
    print where the module lives; exit status 1 if it fails."""
    try:
        module = build()
    except Exception as err:
        print(f'ddl_gnn: the fused CPU kernels could not be built '
              f'({_why(err)})', file=sys.stderr)
        return 1
    print(f'fused CPU kernels ready: {module.__file__}')
    return 0
