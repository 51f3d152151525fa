r"""ddl_gnn: Deep Delta Learning shortcuts for graph neural networks.

Layout, from the math up: :mod:`ddl_gnn.ops` (the delta operator) →
:mod:`ddl_gnn.nn` (layers) → :mod:`ddl_gnn.models` (deep stacks and
baselines) → :mod:`ddl_gnn.metrics` → :mod:`ddl_gnn.data` →
:mod:`ddl_gnn.experiment` (training, sweeps, reports, saved models) →
:mod:`ddl_gnn.cli`.

The experiment API is at the top level: :func:`train`, :func:`sweep`,
:func:`report`, :func:`results` (a pandas DataFrame), :func:`write_csv`,
:func:`load_records` and :func:`load_model` (see
:mod:`ddl_gnn.experiment.api` and :mod:`ddl_gnn.experiment.model_io`);
:func:`limit_heap_growth` / :func:`restore_heap_growth` set glibc malloc's
thresholds so that the resident memory follows the live tensors
(:mod:`ddl_gnn._allocator`).

Subpackages load on first use (``ddl_gnn.models`` imports torch and PyG;
``import ddl_gnn`` alone does not), which keeps ``ddl-gnn --help`` fast.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = '0.1.0'

_SUBPACKAGES = ('ops', 'nn', 'models', 'metrics', 'data', 'experiment')
#: Top-level names and the module each comes from.
_NAMES = {'load_model': 'ddl_gnn.experiment.model_io',
          'limit_heap_growth': 'ddl_gnn._allocator',
          'restore_heap_growth': 'ddl_gnn._allocator',
          **{name: 'ddl_gnn.experiment.api' for name in (
              'train', 'sweep', 'report', 'results', 'write_csv',
              'load_records')}}

__all__ = ['ops', 'nn', 'models', 'metrics', 'data', 'experiment',
           'load_model', 'train', 'sweep', 'report', 'results', 'write_csv',
           'load_records', 'limit_heap_growth', 'restore_heap_growth',
           '__version__']


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f'{__name__}.{name}')
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return sorted(set(globals()) | set(__all__))
