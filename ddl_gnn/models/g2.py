r"""Gradient gating (G², `Rusch et al., 2023
<https://arxiv.org/abs/2210.00513>`_)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.typing import Adj, OptTensor

from ..nn.conv_resolver import call_conv, make_conv
from ..ops.dropout import dropout
from .base import DeepGNN


class GradientGate(MessagePassing):
    r"""Per-node, per-channel rate
    :math:`\tau_i = \tanh\big(\frac{1}{|\mathcal{N}_i|}\sum_{j\in\mathcal{N}_i}
    |\hat x_i - \hat x_j|^p\big)`, aggregated through ``propagate``."""

    def __init__(self, p: float = 2.0):
        super().__init__(aggr='mean')
        self.p = p

    def forward(self, x_hat: Tensor, edge_index: Adj) -> Tensor:
        if not isinstance(edge_index, Tensor) or edge_index.is_sparse or \
                edge_index.layout != torch.strided:
            raise ValueError("G2: the gradient gate needs 'edge_index' as a "
                             "[2, E] Tensor (not a sparse adjacency)")
        return torch.tanh(self.propagate(edge_index, x=x_hat))

    def message(self, x_i: Tensor, x_j: Tensor) -> Tensor:
        return (x_i - x_j).abs().pow(self.p)


class G2Block(nn.Module):
    r""":math:`X \leftarrow (1-\tau) \odot X + \tau \odot \sigma(\mathrm{conv}(X))`
    with :math:`\tau` from :math:`\hat X = \sigma(\mathrm{conv}_g(X))`;
    ``gate_conv=None`` reads the gate from the update itself,
    :math:`\hat X = \sigma(\mathrm{conv}(X))` (the official code's default,
    ``use_G2_conv=False``)."""

    def __init__(self, conv: nn.Module, gate_conv: Optional[nn.Module],
                 act: nn.Module, p: float, dropout: float):
        super().__init__()
        self.conv, self.gate_conv, self.act = conv, gate_conv, act
        self.gate = GradientGate(p)
        self.dropout = dropout

    def reset_parameters(self):
        self.conv.reset_parameters()
        if self.gate_conv is not None:
            self.gate_conv.reset_parameters()

    def forward(self, x: Tensor, edge_index: Adj, edge_weight: OptTensor = None,
                edge_attr: OptTensor = None) -> Tensor:
        # Dropout on what the convs read, never on the carried state: a
        # mask on the (1 - tau) * x path would compound over depth.
        x_in = dropout(x, p=self.dropout, training=self.training)
        h = self.act(call_conv(self.conv, x_in, edge_index, edge_weight,
                               edge_attr))
        x_hat = h if self.gate_conv is None else self.act(call_conv(
            self.gate_conv, x_in, edge_index, edge_weight, edge_attr))
        # The gate reads raw neighbour differences: drop the self loops and
        # weights a GCN normalisation may have added.
        ei = edge_index
        if isinstance(ei, Tensor) and ei.layout == torch.strided:
            ei = ei[:, ei[0] != ei[1]]
        tau = self.gate(x_hat, ei)
        return (1 - tau) * x + tau * h


class G2(DeepGNN):
    """G² gating stack; extra args ``p`` (default 2.0), ``share_weights`` and
    ``gate_conv``.

    ``share_weights=True`` is the official code's design (one conv and one
    gating conv reused by every layer: parameters do not grow with depth,
    and the gating conv's gradient sums over all layers); ``False`` gives
    every layer its own pair, like the other families here.
    ``gate_conv=True`` (default) gives the gate its own conv; ``False`` reads
    it from the update conv's output (the official default)."""
    family = 'g2'

    def __init__(self, *args, p: float = 2.0, share_weights: bool = False,
                 gate_conv: bool = True, **kwargs):
        self.p = p
        self.share_weights = share_weights
        self.gate_conv = gate_conv
        self._shared = None
        super().__init__(*args, **kwargs)

    def _conv_pair(self):
        d, kw = self.hidden_channels, self.conv_kwargs
        return (make_conv(self.conv_name, d, **dict(kw)),
                make_conv(self.conv_name, d, **dict(kw))
                if self.gate_conv else None)

    def make_layer(self, i: int) -> nn.Module:
        if not self.share_weights:
            pair = self._conv_pair()
        else:
            if self._shared is None:
                self._shared = self._conv_pair()
            pair = self._shared
        return G2Block(*pair, self.act, self.p, self.dropout)
