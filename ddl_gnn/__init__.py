r"""ddl_gnn: Deep Delta Learning shortcuts for graph neural networks.

Layout, from the math up: :mod:`ddl_gnn.ops` (the delta operator) →
:mod:`ddl_gnn.nn` (layers) → :mod:`ddl_gnn.models` (deep stacks and
baselines) → :mod:`ddl_gnn.metrics` → :mod:`ddl_gnn.data` →
:mod:`ddl_gnn.experiment` → :mod:`ddl_gnn.cli`.
"""
__version__ = '0.1.0'

from . import models, nn, ops  # noqa: E402

__all__ = ['ops', 'nn', 'models', '__version__']
