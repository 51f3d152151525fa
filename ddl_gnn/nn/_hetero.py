"""What ddl_gnn's layers and models do not take: heterogeneous and
bipartite graphs. They fail here, first, with what to use instead (rather
than deep inside with ``'x' must be a Tensor``).

The delta update edits each node's own state with the message it
aggregates, so a layer needs one node set that is both source and target:
a bipartite relation (``x = (x_src, x_dst)``) has no state to edit on one
side. :func:`torch_geometric.nn.to_hetero` traces a model symbolically
(``torch.fx``), and the families' forwards check shapes and branch on them
in Python, which tracing cannot follow.
"""
from __future__ import annotations

from typing import Any

from torch.fx import Proxy

INSTEAD = ('for a heterogeneous graph, train on data.to_homogeneous() (node '
           'and edge types can enter as features), or build the model from '
           'PyG convs that take (x_src, x_dst), e.g. HeteroConv({...: '
           'SAGEConv((-1, -1), C)})')


def reject_hetero(x: Any, who: str) -> None:
    """Raises :class:`TypeError` when ``x`` is what a heterogeneous or
    bipartite use passes: a ``torch.fx`` proxy (``to_hetero`` tracing),
    a ``(x_src, x_dst)`` pair, or an ``x_dict``."""
    if isinstance(x, Proxy):
        raise TypeError(f'{who} does not support torch_geometric.nn.'
                        f'to_hetero (its forward checks shapes in Python, '
                        f'which symbolic tracing cannot follow); {INSTEAD}')
    if isinstance(x, (tuple, list)):
        raise TypeError(f'{who} does not support bipartite input (x_src, '
                        f'x_dst): the delta update edits the state of the '
                        f'nodes it aggregates into, so sources and targets '
                        f'must be one node set; {INSTEAD}')
    if isinstance(x, dict):
        raise TypeError(f'{who} takes one node set (x: Tensor), got a dict '
                        f'(x_dict of a HeteroData); {INSTEAD}')
