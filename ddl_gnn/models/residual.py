r"""Plain, residual and pre-activation residual (DeeperGCN res+) stacks,
built from PyG's :class:`~torch_geometric.nn.models.DeepGCNLayer`."""
from __future__ import annotations

from typing import Optional

from torch import Tensor, nn
from torch_geometric.nn import DeepGCNLayer
from torch_geometric.typing import Adj, OptTensor

from ..nn.conv_resolver import call_conv, make_conv
from ..nn.norms import make_norm
from ..ops.dropout import dropout
from .base import DeepGNN


class EdgeAwareConv(nn.Module):
    """Adapts a PyG conv to the ``(x, edge_index, edge_weight, edge_attr)``
    call of :class:`DeepGCNLayer`, forwarding only the edge data the conv
    accepts; ``input_dropout`` drops its input in training (res+ drops
    there: after the norm and activation, before the conv)."""

    def __init__(self, conv: nn.Module, input_dropout: float = 0.0):
        super().__init__()
        self.conv, self.input_dropout = conv, input_dropout

    def reset_parameters(self):
        self.conv.reset_parameters()

    def forward(self, x: Tensor, edge_index: Adj,
                edge_weight: OptTensor = None,
                edge_attr: OptTensor = None) -> Tensor:
        x = dropout(x, p=self.input_dropout, training=self.training)
        return call_conv(self.conv, x, edge_index, edge_weight, edge_attr)

    def __repr__(self) -> str:
        return repr(self.conv)


class _DeepGCNStack(DeepGNN):
    block: str = 'plain'

    def make_layer(self, i: int) -> nn.Module:
        # The layers' dropout is this package's (ddl_gnn.ops.dropout, hashed
        # CPU masks), not DeepGCNLayer's F.dropout: res+ drops the conv's
        # input, res and plain the layer's output (layer_forward), where
        # DeepGCNLayer would.
        d = self.hidden_channels
        conv = EdgeAwareConv(make_conv(self.conv_name, d,
                                       **dict(self.conv_kwargs)),
                             self.dropout if self.block == 'res+' else 0.0)
        return DeepGCNLayer(conv, make_norm(self.norm_name, d), self.act,
                            block=self.block, dropout=0.0)

    def layer_forward(self, layer, x, x0, edge_index, edge_weight,
                      edge_attr):
        out = layer(x, edge_index, edge_weight, edge_attr)
        if self.block == 'res+':
            return out
        return dropout(out, p=self.dropout, training=self.training)

    def reset_parameters(self):
        # DeepGCNLayer.reset_parameters calls norm.reset_parameters() even
        # when norm is None, so reset its parts here instead.
        for layer in self.layers:
            layer.conv.reset_parameters()
            if layer.norm is not None:
                layer.norm.reset_parameters()
        for m in (self.encoder, self.edge_encoder, self.out_norm,
                  self.decoder):
            if m is not None and hasattr(m, 'reset_parameters'):
                m.reset_parameters()


class PlainGNN(_DeepGCNStack):
    r"""No shortcut: :math:`x \leftarrow \mathrm{drop}(\sigma(\mathrm{norm}(
    \mathrm{conv}(x))))` (``norm`` defaults to :obj:`None`, the GCN paper's
    setting)."""
    family, block = 'plain', 'plain'


class ResGNN(_DeepGCNStack):
    r"""Additive residual: :math:`x \leftarrow \mathrm{drop}(x + \sigma(
    \mathrm{norm}(\mathrm{conv}(x))))` (ResGCN; ``norm`` defaults to
    :obj:`None`)."""
    family, block = 'res', 'res'


class ResPlusGNN(_DeepGCNStack):
    r"""DeeperGCN pre-activation residual (`res+
    <https://arxiv.org/abs/2006.07739>`_): :math:`x \leftarrow x +
    \mathrm{conv}(\mathrm{drop}(\sigma(\mathrm{norm}(x))))`, then a final
    norm and activation before the decoder (``norm`` defaults to
    ``'layer_norm'``)."""
    family, block = 'res+', 'res+'
    default_norm: Optional[str] = 'layer_norm'
    final_norm = True
