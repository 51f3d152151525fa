r"""Over-smoothing, rank-collapse and signal-propagation metrics for GNNs.

Conventions (see each docstring): edges are the directed pairs of
``edge_index`` (an undirected graph stores both directions); scalar results
are 0-dim float64 tensors; with a ``batch`` vector a metric is computed per
graph and averaged over graphs; no function builds an ``N x N`` matrix.
"""
from .beta_audit import beta_audit, beta_summary, find_beta_modules
from .mad_gap import mad_gap
from .probe import (DEFAULT_METRICS, METRICS, LayerProbe, probe_model,
                    resolve_layers)
from .rank import effective_rank, numerical_rank
from .signal import (fit_decay_rate, influence_per_hop, input_cosine,
                     representation_norm, state_gradient_norms)
from .smoothing import (dirichlet_energy, mad, normalized_dirichlet_energy,
                        relative_dirichlet_energy)

__all__ = [
    'dirichlet_energy',
    'relative_dirichlet_energy',
    'normalized_dirichlet_energy',
    'mad',
    'mad_gap',
    'numerical_rank',
    'effective_rank',
    'representation_norm',
    'input_cosine',
    'state_gradient_norms',
    'influence_per_hop',
    'fit_decay_rate',
    'beta_summary',
    'beta_audit',
    'find_beta_modules',
    'LayerProbe',
    'probe_model',
    'resolve_layers',
    'METRICS',
    'DEFAULT_METRICS',
]
