r"""The deep-stack skeleton every model family shares.

All families are built the same way so depth comparisons are matched:

.. code-block:: text

    h0 = act(encoder(x))                       # Linear(in -> d) or a custom encoder
    X0 = init_state(h0)                        # delta with d_v > 1: repeat to d_v columns
    X_l = layers[l](X_{l-1}, graph, x0=h0)     # l = 1..L message-passing layers
    y  = decoder(drop(pool(final(read_state(X_L)))))

``num_layers`` counts message-passing layers only (not the encoder or the
decoder). ``model.encoder`` and ``model.layers`` are what the metrics probe
hooks: the encoder output is layer 0.
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint as _checkpoint
from torch_geometric.nn import global_add_pool, global_mean_pool
from torch_geometric.nn.resolver import activation_resolver
from torch_geometric.typing import Adj, OptTensor
from torch_geometric.utils import dropout_edge, is_sparse

from .._validate import (check_features, check_graph, check_rate,
                         check_readout_batch, values_checked)
from ..nn._hetero import reject_hetero
from ..nn.adjacency import normalize_adjacency
from ..nn.norms import make_norm
from ..ops.dropout import dropout

READOUTS = {'mean': global_mean_pool, 'sum': global_add_pool}


class DeepGNN(nn.Module):
    r"""Base class of the deep model families (see the module docstring).

    Args:
        in_channels (int): Input feature width (ignored by a custom
            ``encoder``).
        hidden_channels (int): State width :math:`d`.
        num_layers (int): Number of message-passing layers :math:`L`.
        out_channels (int): Output width.
        conv (str, optional): Conv name shared by every layer, see
            :func:`ddl_gnn.nn.make_conv`. (default: :obj:`'gcn'`)
        dropout (float, optional): Dropout inside the layers, on the encoder
            input and before the decoder. (default: :obj:`0.`)
        norm (str, optional): Norm used by the family. (default: family's)
        act (str, optional): Activation. (default: :obj:`'relu'`)
        readout (str, optional): :obj:`None` for node-level outputs,
            ``'mean'`` or ``'sum'`` to pool per graph (needs ``batch``).
            (default: :obj:`None`)
        encoder (torch.nn.Module, optional): Replaces the input linear, e.g.
            OGB's ``AtomEncoder(hidden_channels)``. (default: :obj:`None`)
        edge_encoder (torch.nn.Module, optional): Maps ``edge_attr`` to the
            features the conv reads, e.g. ``BondEncoder``. (default: :obj:`None`)
        checkpoint (bool, optional): Activation checkpointing by segments of
            :math:`\lceil\sqrt{L}\rceil` layers (``use_reentrant=False``; the
            RNG state is restored so dropout is identical in the recompute).
            (default: :obj:`False`)
        checkpoint_segment (int, optional): Layers per checkpointed segment.
            (default: :obj:`None`, i.e. :math:`\lceil\sqrt{L}\rceil`)
        edge_dropout (float, optional): DropEdge: in training, each forward
            drops every edge with this probability
            (:func:`~torch_geometric.utils.dropout_edge`) before the
            adjacency is normalised, so the propagation keeps its scale
            while the graph each layer reads is noisy. Needs an
            ``edge_index`` tensor. (default: :obj:`0.`)
        **conv_kwargs: Passed to every conv.
    """
    family: str = 'base'
    default_norm: Optional[str] = None
    final_norm: bool = False       # norm -> act before the decoder (pre-act)

    def __init__(self, in_channels: int, hidden_channels: int,
                 num_layers: int, out_channels: int, conv: str = 'gcn',
                 dropout: float = 0.0, norm: Union[str, None] = 'default',
                 act: str = 'relu', readout: Optional[str] = None,
                 encoder: Optional[nn.Module] = None,
                 edge_encoder: Optional[nn.Module] = None,
                 checkpoint: bool = False,
                 checkpoint_segment: Optional[int] = None,
                 edge_dropout: float = 0.0, **conv_kwargs):
        super().__init__()
        name = type(self).__name__
        for arg, val in (('hidden_channels', hidden_channels),
                         ('out_channels', out_channels)):
            if not isinstance(val, int) or val < 1:
                raise ValueError(f"{name}: '{arg}' must be a positive int, "
                                 f"got {val!r}")
        if not isinstance(num_layers, int) or num_layers < 0:
            raise ValueError(f"{name}: 'num_layers' must be an int >= 0, got "
                             f"{num_layers!r}")
        if encoder is None and (not isinstance(in_channels, int)
                                or in_channels < 1):
            raise ValueError(f"{name}: 'in_channels' must be a positive int, "
                             f"got {in_channels!r}")
        if readout is not None and readout not in READOUTS:
            raise ValueError(f"{name}: 'readout' must be None, 'mean' or "
                             f"'sum', got {readout!r}")
        check_rate(dropout, 'dropout', name)
        self.edge_dropout = check_rate(edge_dropout, 'edge_dropout', name)
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.num_layers, self.out_channels = num_layers, out_channels
        self.conv_name, self.dropout, self.readout = conv, dropout, readout
        self.norm_name = self.default_norm if norm == 'default' else norm
        self.act = activation_resolver(act)
        self.checkpoint = checkpoint
        self.checkpoint_segment = checkpoint_segment
        # GCN normalisation is computed once per forward, not once per layer.
        self.shared_gcn_norm = conv == 'gcn' and conv_kwargs.get(
            'normalize', True)
        if conv == 'gcn':
            conv_kwargs['normalize'] = False
        self.conv_kwargs = conv_kwargs

        self.encoder = encoder or nn.Linear(in_channels, hidden_channels)
        self.edge_encoder = edge_encoder
        self.layers = nn.ModuleList(
            [self.make_layer(i) for i in range(num_layers)])
        self.out_norm = (make_norm(self.norm_name, hidden_channels)
                         if self.final_norm else None)
        self.decoder = nn.Linear(hidden_channels, out_channels)

    # -- hooks for the families -------------------------------------------
    def make_layer(self, i: int) -> nn.Module:
        raise NotImplementedError

    def encode(self, x: Tensor) -> Tensor:
        """The stack's input :math:`x_0` (layer 0 of the probes)."""
        return self.act(self.encoder(x))

    def init_state(self, h0: Tensor) -> Tensor:
        return h0

    def read_state(self, X: Tensor) -> Tensor:
        return X

    def layer_forward(self, layer: nn.Module, x: Tensor, x0: Tensor,
                      edge_index: Adj, edge_weight: OptTensor,
                      edge_attr: OptTensor) -> Tensor:
        return layer(x, edge_index, edge_weight, edge_attr)

    # -- shared machinery ---------------------------------------------------
    def param_groups(self, weight_decay_conv: float = 0.01,
                     weight_decay_lin: float = 5e-4) -> list:
        """Optimizer parameter groups: the message-passing layers and the
        rest (encoder, decoder, norms) decayed separately, as GCNII's paper
        and PyG example do for its convs and linears."""
        # dict: a parameter shared by several layers is listed once
        convs = list({id(p): p for layer in self.layers
                      for p in layer.parameters()}.values())
        ids = {id(p) for p in convs}
        rest = [p for p in self.parameters() if id(p) not in ids]
        return [dict(params=convs, weight_decay=weight_decay_conv),
                dict(params=rest, weight_decay=weight_decay_lin)]

    def reset_parameters(self):
        for m in [self.encoder, self.edge_encoder, *self.layers,
                  self.out_norm, self.decoder]:
            if m is not None and hasattr(m, 'reset_parameters'):
                m.reset_parameters()

    def _run_layers(self, start: int, end: int, X: Tensor, x0: Tensor,
                    edge_index: Adj, edge_weight: OptTensor,
                    edge_attr: OptTensor) -> Tensor:
        for layer in self.layers[start:end]:
            X = self.layer_forward(layer, X, x0, edge_index, edge_weight,
                                   edge_attr)
        return X

    def _checked_layers(self, *args) -> Tensor:
        # forward() checked x once: the layers' ops skip their value
        # checks, also when a checkpointed segment is recomputed.
        with values_checked():
            return self._run_layers(*args)

    def forward(self, x: Tensor, edge_index: Adj,
                edge_weight: OptTensor = None, edge_attr: OptTensor = None,
                batch: OptTensor = None) -> Tensor:
        """Returns node-level outputs :math:`(|\\mathcal{V}|, C)`, or
        graph-level outputs :math:`(B, C)` when ``readout`` is set."""
        name = type(self).__name__
        reject_hetero(x, name)
        if isinstance(self.encoder, nn.Linear):
            check_features(x, self.in_channels, 'x', name,
                           dtype=self.encoder.weight.dtype)
        N = x.size(0)
        check_graph(edge_index, N, name, edge_weight)
        if self.readout is not None and batch is None:
            batch = x.new_zeros(N, dtype=torch.long)
        elif self.readout is not None:
            check_readout_batch(batch, edge_index, N, name)

        if self.training and self.edge_dropout > 0:
            edge_index, edge_weight, edge_attr = self._drop_edges(
                edge_index, edge_weight, edge_attr)
        if edge_attr is not None and self.edge_encoder is not None:
            edge_attr = self.edge_encoder(edge_attr)

        if isinstance(self.encoder, nn.Linear):
            x = dropout(x, p=self.dropout, training=self.training)
        x0 = self.encode(x)
        if self.shared_gcn_norm:  # in the state's dtype (x may hold ids)
            edge_index, edge_weight = normalize_adjacency(
                edge_index, edge_weight, N, x0.dtype)
        X = self.init_state(x0)
        L = len(self.layers)
        if self.checkpoint and torch.is_grad_enabled() and L > 0:
            seg = self.checkpoint_segment or math.ceil(math.sqrt(L))
            for start in range(0, L, seg):
                X = _checkpoint(self._checked_layers, start, start + seg, X,
                                x0, edge_index, edge_weight, edge_attr,
                                use_reentrant=False)
        else:
            X = self._checked_layers(0, L, X, x0, edge_index, edge_weight,
                                     edge_attr)

        h = self.read_state(X)
        if self.out_norm is not None:
            h = self.act(self.out_norm(h))
        if self.readout is not None:
            h = READOUTS[self.readout](h, batch)
        h = dropout(h, p=self.dropout, training=self.training)
        return self.decoder(h)

    def _drop_edges(self, edge_index: Adj, edge_weight: OptTensor,
                    edge_attr: OptTensor):
        if not isinstance(edge_index, Tensor) or is_sparse(edge_index):
            raise ValueError(f"{type(self).__name__}: 'edge_dropout' drops "
                             f"edges of an edge_index tensor [2, E]; got a "
                             f"sparse adjacency")
        edge_index, mask = dropout_edge(edge_index, p=self.edge_dropout,
                                        training=True)
        return (edge_index,
                None if edge_weight is None else edge_weight[mask],
                None if edge_attr is None else edge_attr[mask])

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.in_channels}, '
                f'{self.out_channels}, hidden={self.hidden_channels}, '
                f'num_layers={self.num_layers}, conv={self.conv_name})')
