"""Builds the message-passing conv every model family shares, by name.

Each conv maps ``channels -> channels`` so states stay square; the
``call_conv`` helper passes ``edge_weight`` or ``edge_attr`` only to convs
that accept them.
"""
from __future__ import annotations

import inspect
from typing import Dict, Optional, Tuple, Union

from torch import Tensor, nn
from torch_geometric.nn import (MLP, GATConv, GCNConv, GENConv, GINConv,
                                GINEConv, MessagePassing, SAGEConv)

CONVS = ('gcn', 'sage', 'gat', 'gin', 'gine', 'gen')


def make_conv(conv: Union[str, MessagePassing], channels: int,
              **kwargs) -> MessagePassing:
    """A PyG conv mapping ``channels -> channels``.

    Args:
        conv: ``'gcn'`` (:class:`GCNConv`), ``'sage'`` (:class:`SAGEConv`),
            ``'gat'`` (:class:`GATConv`, ``heads`` concatenated to
            ``channels``), ``'gin'`` (:class:`GINConv` with a 2-layer MLP),
            ``'gine'`` (:class:`GINEConv`, needs ``edge_attr`` of width
            ``channels``), ``'gen'`` (:class:`GENConv`, softmax aggregation
            with learnable temperature, as DeeperGCN), or a conv instance.
        channels (int): Width of the node state.
        **kwargs: Passed to the PyG conv.
    """
    if isinstance(conv, nn.Module):
        return conv
    if conv == 'gcn':
        return GCNConv(channels, channels, **kwargs)
    if conv == 'sage':
        return SAGEConv(channels, channels, **kwargs)
    if conv == 'gat':
        heads = kwargs.pop('heads', 1)
        if channels % heads:
            raise ValueError(f"'heads' ({heads}) must divide the hidden "
                             f"width ({channels}) for conv='gat'")
        return GATConv(channels, channels // heads, heads=heads, **kwargs)
    if conv == 'gin':
        return GINConv(MLP([channels, channels, channels], norm=None),
                       **kwargs)
    if conv == 'gine':
        return GINEConv(MLP([channels, channels, channels], norm=None),
                        **kwargs)
    if conv == 'gen':
        kwargs.setdefault('aggr', 'softmax')
        kwargs.setdefault('learn_t', True)
        kwargs.setdefault('num_layers', 2)
        kwargs.setdefault('norm', 'layer')
        return GENConv(channels, channels, **kwargs)
    raise ValueError(f"'conv' must be one of {CONVS} or a PyG conv instance,"
                     f" got {conv!r}")


_EDGE_ARGS: Dict[type, Tuple[bool, bool]] = {}


def _edge_args(conv_type: type) -> Tuple[bool, bool]:
    """(accepts edge_weight, accepts edge_attr), read once per conv class."""
    if conv_type not in _EDGE_ARGS:
        params = inspect.signature(conv_type.forward).parameters
        _EDGE_ARGS[conv_type] = ('edge_weight' in params, 'edge_attr'
                                 in params)
    return _EDGE_ARGS[conv_type]


def call_conv(conv: nn.Module, x: Tensor, edge_index,
              edge_weight: Optional[Tensor] = None,
              edge_attr: Optional[Tensor] = None) -> Tensor:
    """Calls ``conv`` with the edge information its ``forward`` accepts
    (``edge_weight`` first, else ``edge_attr``)."""
    takes_weight, takes_attr = _edge_args(type(conv))
    if takes_weight and edge_weight is not None:
        return conv(x, edge_index, edge_weight=edge_weight)
    if takes_attr and edge_attr is not None:
        return conv(x, edge_index, edge_attr=edge_attr)
    return conv(x, edge_index)
