"""Training, sweeps, records, reports and saved models.

The user-facing functions are :mod:`.api`'s (``ddl_gnn.train``,
``ddl_gnn.sweep``, ``ddl_gnn.report``, ``ddl_gnn.results``,
``ddl_gnn.write_csv``) and :func:`~.model_io.load_model`; the names below
load their modules on first use (torch is imported only then).
"""
from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    'RunConfig': 'config',
    'ResultStore': 'records',
    'write_report': 'report',
    'run_sweep': 'sweep',
    'load_model': 'model_io',
    'save_model': 'model_io',
    'read_config': 'model_io',
    'results': 'api',
    'result_rows': 'api',
    'write_csv': 'api',
    'load_records': 'api',
    'adam': 'optimizer',
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        module = importlib.import_module(f'{__name__}.{_NAMES[name]}')
        return getattr(module, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
