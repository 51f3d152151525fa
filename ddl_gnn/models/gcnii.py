r"""GCNII stack from PyG's :class:`~torch_geometric.nn.conv.GCN2Conv`."""
from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import GCN2Conv
from torch_geometric.typing import Adj, OptTensor

from ..ops.dropout import dropout
from .base import DeepGNN


class GCNIIBlock(nn.Module):
    r""":math:`x \leftarrow \sigma(\mathrm{GCN2Conv}(\mathrm{drop}(x), x_0))`,
    as in PyG's ``examples/gcn2_cora.py``."""

    def __init__(self, conv: GCN2Conv, act: nn.Module, dropout: float):
        super().__init__()
        self.conv, self.act, self.dropout = conv, act, dropout

    def reset_parameters(self):
        self.conv.reset_parameters()

    def forward(self, x: Tensor, x0: Tensor, edge_index: Adj,
                edge_weight: OptTensor = None) -> Tensor:
        x = dropout(x, p=self.dropout, training=self.training)
        return self.act(self.conv(x, x0, edge_index, edge_weight))


class GCNII(DeepGNN):
    r"""GCNII (`Chen et al., 2020 <https://arxiv.org/abs/2007.02133>`_):
    :math:`x^{l+1} = \sigma\big(((1-\alpha)\hat P x^l + \alpha x^0)
    ((1-\beta_l) I + \beta_l W^l)\big)`, :math:`\beta_l = \log(\theta/l + 1)`.

    Extra args: ``alpha`` (default 0.1), ``theta`` (default 0.5),
    ``shared_weights`` (default :obj:`True`). Only ``conv='gcn'``.
    The paper decays the convs and the linears separately:
    :meth:`~ddl_gnn.models.base.DeepGNN.param_groups`.
    """
    family = 'gcnii'

    def __init__(self, *args, alpha: float = 0.1, theta: float = 0.5,
                 shared_weights: bool = True, **kwargs):
        self.alpha, self.theta = alpha, theta
        self.shared_weights = shared_weights
        super().__init__(*args, **kwargs)
        if self.conv_name != 'gcn':
            raise ValueError(f"GCNII: only conv='gcn' is supported, got "
                             f"{self.conv_name!r}")

    def make_layer(self, i: int) -> nn.Module:
        kw = dict(self.conv_kwargs)
        kw.pop('cached', None)
        conv = GCN2Conv(self.hidden_channels, self.alpha, self.theta,
                        layer=i + 1, shared_weights=self.shared_weights, **kw)
        return GCNIIBlock(conv, self.act, self.dropout)

    def layer_forward(self, layer, x, x0, edge_index, edge_weight, edge_attr):
        return layer(x, x0, edge_index, edge_weight)
