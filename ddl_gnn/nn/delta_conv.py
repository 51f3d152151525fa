r"""The delta message-passing layer."""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import LayerNorm, Linear, RMSNorm
from torch_geometric.nn import GCNConv, MessagePassing
from torch_geometric.nn.resolver import activation_resolver
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.typing import Adj, OptTensor
from torch_geometric.utils import spmm

from ..ops import (delta_update, delta_update_read, delta_write,
                   head_components)
from ..ops.dropout import dropout
from .._validate import check_features, check_graph
from ._hetero import reject_hetero
from .adjacency import normalize_adjacency
from .compress import StateCompressor, compress_state
from .context import context_linear
from .axes_path import axes_path_ok, channel_axes_update
from .message_path import message_forward, message_path_ok
from .conv_resolver import call_conv, make_conv
from .gates import BETA_INIT, BetaGate
from .norms import make_norm

K_SOURCES = ('conv', 'proj', 'anchor')
SOURCES = ('context', 'both', 'anchor')
V_SOURCES = ('context', 'conv', 'anchor', 'restore', 'diffuse', 'message')
#: Sources that read the input state ``x0`` (the encoder output).
ANCHORED = {('k_source', 'anchor'), ('beta_source', 'anchor'),
            ('v_source', 'anchor'), ('v_source', 'restore'),
            ('v_source', 'diffuse'), ('v_source', 'message')}

#: The paper-faithful mapping (``k = conv(c)``; gate and value read the
#: LayerNorm'd context ``c``; one head; β ∈ (0, 2)) with the official code's
#: :math:`\beta_0 = 1`: ``DeltaConv(d, **PAPER_DELTA)``,
#: ``build_model('delta-paper', ...)``.
PAPER_DELTA = dict(k_source='conv', beta_source='context',
                   v_source='context', heads=1, norm='layer_norm',
                   beta_mode='learned', beta_init=1.0)


class DeltaConv(MessagePassing):
    r"""A message-passing layer with a per-node Deep Delta Learning shortcut
    (`"Deep Delta Learning" <https://arxiv.org/abs/2601.00417>`_), in which
    the aggregated message, anchored to the input, is the edit direction and
    the value written along it.

    With the defaults (heads :math:`h = 1, \dots, H`, each a block of
    :math:`d / H` channels, :math:`x^0` the input state):

    .. math::
        x_i &= \mathrm{compress}(X_i), \qquad
        m = \mathrm{conv}(\mathrm{drop}(x), \mathcal{E}), \qquad
        k_i = (1 - \alpha)\, m_i + \alpha\, x^0_i

        \beta_{i,h} &= \sigma(w_{\beta,h}^\top [x_i \Vert x^0_i]
        + b_{\beta,h}) \in (0, 1), \qquad
        v_{i,h} = \hat k_{i,h}^\top k_{i,h}

        X_{i,h}' &= X_{i,h} + \beta_{i,h} \hat k_{i,h}
        (v_{i,h} - \hat k_{i,h}^\top X_{i,h}),
        \qquad \hat k = k / \sqrt{\lVert k\rVert^2 + \epsilon^2}

    so each head replaces the state's component along its anchored message
    by the message's own (:math:`X' \approx X + \beta (k - \hat k \hat
    k^\top X)`): a GCNII step (:math:`(1 - \alpha) \hat A X W + \alpha
    X^0`) taken along one learned direction per head, gated per node. There
    is no norm on the value path, so the written values have the state's
    scale; at :math:`\beta_0 = 0.1` a deep stack starts near the identity
    and its gradient reaches the input undamped at 64 to 256 layers
    (``study/init_probe.py``).

    The shortcut :math:`I - \beta_i \hat k_i \hat k_i^\top` has eigenvalue 1 on
    :math:`\hat k_i^\perp` and :math:`1 - \beta_i` on :math:`\hat k_i`:
    β≈0 keeps the state, β≈1 erases and rewrites its :math:`\hat k`-component,
    β≈2 reflects it (``beta_mode='learned'``). Neighbour information flows
    only through the inner PyG conv's ``propagate``, so explainers and hooks
    see every edge.

    The paper's mapping (:math:`k = \mathrm{conv}(c)`,
    :math:`\beta = 2\sigma(w^\top c + b)`, :math:`v = W_v c` with the
    LayerNorm'd context :math:`c`, one head) is
    ``DeltaConv(channels, **PAPER_DELTA)`` (``ddl_gnn.nn.PAPER_DELTA``;
    ``build_model('delta-paper', ...)`` for the model family).

    Args:
        channels (int): State width :math:`d` (input and output).
        conv (str or MessagePassing, optional): ``'gcn'``, ``'sage'``,
            ``'gat'``, ``'gin'``, ``'gine'``, ``'gen'`` or a PyG conv mapping
            ``channels -> channels``. (default: :obj:`'gcn'`)
        d_v (int, optional): Value columns of the state; 1 is an ordinary
            feature vector. (default: :obj:`1`)
        beta_init (float, optional): Gate at initialisation, :math:`\beta_0`.
            (default: :obj:`BETA_INIT`, near identity)
        beta_mode (str, optional): ``'learned'`` (β ∈ (0, 2)),
            ``'learned01'`` (β ∈ (0, 1)) or ``'fixed'`` (β = β₀).
            (default: :obj:`'learned01'`)
        norm (str, optional): Norm of the context: ``'layer_norm'``,
            ``'rms_norm'``, ``'batch_norm'`` or :obj:`None`.
            (default: :obj:`None`)
        dropout (float, optional): Dropout on the context. (default: :obj:`0.`)
        k_source (str, optional): ``'conv'`` (paper: :math:`k = h`),
            ``'proj'`` (:math:`k = W_k [c \Vert h]`) or ``'anchor'``
            (:math:`k = (1 - \alpha) h + \alpha c_0`, GCNII's mix with the
            input context :math:`c_0 = \mathrm{norm}(x_0)`).
            (default: :obj:`'anchor'`)
        beta_source (str, optional): Gate input, ``'context'`` (:math:`c`),
            ``'both'`` (:math:`[c \Vert h]`) or ``'anchor'``
            (:math:`[c \Vert c_0]`). (default: :obj:`'anchor'`)
        v_source (str, optional): The value written along :math:`\hat k`:
            ``'context'`` (:math:`W_v c`), ``'conv'`` (:math:`W_v h`),
            ``'anchor'`` (:math:`W_v [c \Vert c_0]`), ``'restore'``
            (:math:`\hat k^\top x_0`: the input's component, so β = 1
            restores it) or ``'diffuse'`` (:math:`\hat k^\top u` with
            :math:`u = (1 - \alpha) \hat A x + \alpha x_0`, the
            propagated, input-anchored state: the write moves the state
            toward one personalised-PageRank step along :math:`\hat k`)
            or ``'message'`` (:math:`\hat k^\top ((1 - \alpha) h +
            \alpha x_0)`: the conv's own output, anchored; at the state's
            scale with ``norm=None``, where the conv reads the raw state).
            ``'restore'`` and ``'diffuse'`` read the raw state, so the
            value has the state's scale whatever the norm.
            (default: :obj:`'message'`)
        heads (int, optional): Number :math:`H` of state blocks, each with
            its own direction (block of :math:`k`), gate and value: the
            block-diagonal operator
            :math:`\mathrm{diag}_h(I - \beta_h \hat k_h \hat k_h^\top)`
            writes :math:`H` scalars per node and layer. Must divide
            ``channels``. (GAT's attention heads: pass a ``GATConv``.)
            (default: :obj:`8`)
        block_gate (bool, optional): Each head's gate reads only its own
            block of the gate's input (of :math:`x` and :math:`x_0` for
            ``beta_source='anchor'``): :math:`2d` gate weights per layer
            instead of :math:`2dH`, so one head per channel gates each
            channel from its own state and input value.
            (default: :obj:`False`)
        scale_message (bool, optional): With ``v_source='message'``, rescale
            the conv output to the per-node norm of the state before writing
            it, so the conv's gain does not compound over the layers.
            (default: :obj:`False`)
        identity_map (float, optional): GCNII's identity mapping of the
            conv weight, :math:`W \to (1 - \gamma) I + \gamma W` with
            :math:`\gamma` = ``identity_map`` (a ``GCNConv`` only);
            :class:`~ddl_gnn.models.DeltaGNN`'s ``theta`` sets
            :math:`\gamma_l = \log(\theta / l + 1)` per layer.
            (default: :obj:`None`, the plain weight)
        message_act (str, optional): Activation applied to the anchored
            mix :math:`(1 - \alpha) h + \alpha c_0` before it gives the
            direction and the message value (GCNII's :math:`\sigma` over
            its mix), e.g. ``'relu'``. (default: :obj:`None`, linear)
        dropout_value (bool, optional): With ``dropout``, let the
            direction and the gate read the clean state and apply dropout
            only to the message whose component along that direction is
            written: the written value is then unbiased (a second
            propagation per layer in training). (default: :obj:`False`,
            the conv reads the dropped state)
        alpha (float, optional): Input weight :math:`\alpha` of the
            ``'anchor'`` direction and the ``'diffuse'`` value.
            (default: :obj:`0.1`)
        erase (bool, optional): If :obj:`False`, the write-only ablation
            :math:`X' = X + \beta \hat k v^\top`. (default: :obj:`True`)
        eps (float, optional): Direction normalisation guard.
            (default: :obj:`1e-5`)
        channel_axes (bool, optional): With one channel per head
            (``heads = channels``) and the message value, take head
            :math:`c`'s direction as its channel's axis :math:`e_c`, the
            projector :math:`\hat k \hat k^\top` of any nonzero message,
            instead of guarding :math:`\hat k = k / \sqrt{k^2 +
            \epsilon^2}`: the update reads
            :math:`x' = x + \beta \odot (k - x)` channel by channel. Where
            the message is 0 (e.g. under ``message_act='relu'``) the guard
            switches the write off and the layer keeps its state; along the
            axis it writes 0, as GCNII does, so that :math:`\beta = 1` is
            GCNII's layer. (default: :obj:`False`)
        map_anchor (bool, optional): With ``k_source='anchor'`` and the
            message value, apply the conv's weight (identity-mapped with
            ``identity_map``) and bias after the anchored mix, as GCNII
            does: :math:`k = ((1 - \alpha) \hat A c + \alpha c_0)
            ((1 - \gamma) I + \gamma W) + b` instead of
            :math:`(1 - \alpha)(\hat A c ((1 - \gamma) I + \gamma W) + b)
            + \alpha c_0`, so the input enters each layer through its
            weight too. With ``channel_axes``, ``message_act='relu'`` and
            β = 1 (a bias-free conv) the layer is GCNII's.
            A ``GCNConv`` only. (default: :obj:`False`)
        **kwargs (optional): Passed to the PyG conv when ``conv`` is a name.

    Shapes:
        - **input:** state :math:`(|\mathcal{V}|, d)` or
          :math:`(|\mathcal{V}|, d, d_v)`, edge indices :math:`(2, |\mathcal{E}|)`
          or a sparse adjacency, edge weights :math:`(|\mathcal{E}|)` *(optional)*,
          edge features :math:`(|\mathcal{E}|, d)` *(optional)*, input
          state ``x0`` :math:`(|\mathcal{V}|, d)` *(needed by the anchored
          sources)*
        - **output:** state of the input's shape

    ``'diffuse'`` propagates with the GCN-normalised adjacency: the given
    edge weights when the conv is a ``GCNConv(normalize=False)`` (the model
    families normalise once per forward), else
    :func:`~torch_geometric.nn.conv.gcn_conv.gcn_norm` of the graph.

    The gate of the last forward pass is kept (detached) in
    :attr:`last_beta` for the β audit.

    Fused reads (matrix states): ``forward(..., read=r, next_weight=w)``
    takes ``r = compress(x)`` precomputed by the previous layer instead of
    compressing ``x`` again, and returns ``(X', compress(X', w))`` — the
    next layer's read, made in the same pass over the state by
    :func:`~ddl_gnn.ops.delta_update_read` (its gradient joins the
    state's inside that kernel). :class:`~ddl_gnn.models.DeltaGNN` chains
    layers this way; the function is the same.

    Linked inputs (vector states): ``forward(..., x0=x0, x0_link=True)``
    returns ``(x', link)``, ``link`` holding ``x0``'s values for the next
    layer to read as its ``x0``. Where the anchored-message update runs as
    its C++ function the link's gradient (the later layers') joins this
    layer's gradient of ``x0`` in the backward row pass, which saves
    autograd's sum of each layer's into ``x0``'s gradient (a pass over
    :math:`N \times d` a layer); elsewhere the link is ``x0``.
    :class:`~ddl_gnn.models.DeltaGNN` links its layers this way; the
    values and gradients are the same bit for bit
    (:func:`~ddl_gnn.nn.message_path.anchored_message_update`).

    Fast path: with a :class:`~torch_geometric.nn.GCNConv` (not ``cached``),
    the default sources, a LayerNorm/RMSNorm/no norm and a float32/float64
    state, the context, the conv's linear map and both heads run through
    :func:`~ddl_gnn.nn.context.context_linear`, which recomputes the context
    in backward instead of saving it; the result is the same function.
    Set :attr:`check_inputs` to :obj:`False` to skip the per-call input
    checks (the model families check their inputs once per forward).
    """
    check_inputs: bool = True

    def __init__(self, channels: int, conv: Union[str, MessagePassing] = 'gcn',
                 d_v: int = 1, beta_init: float = BETA_INIT,
                 beta_mode: str = 'learned01',
                 norm: Optional[str] = None, dropout: float = 0.0,
                 k_source: str = 'anchor', beta_source: str = 'anchor',
                 v_source: str = 'message', erase: bool = True,
                 eps: float = 1e-5, heads: int = 8, alpha: float = 0.1,
                 block_gate: bool = False, scale_message: bool = False,
                 identity_map: Optional[float] = None,
                 message_act: Optional[str] = None,
                 dropout_value: bool = False, channel_axes: bool = False,
                 map_anchor: bool = False, **kwargs):
        super().__init__(aggr='add')
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"DeltaConv: 'channels' must be a positive int, "
                             f"got {channels!r}")
        if not isinstance(d_v, int) or d_v < 1:
            raise ValueError(f"DeltaConv: 'd_v' must be a positive int, got "
                             f"{d_v!r}")
        for name, val, allowed in (('k_source', k_source, K_SOURCES),
                                   ('beta_source', beta_source, SOURCES),
                                   ('v_source', v_source, V_SOURCES)):
            if val not in allowed:
                raise ValueError(f"DeltaConv: '{name}' must be one of "
                                 f"{allowed}, got {val!r}")
        if not isinstance(heads, int) or heads < 1 or channels % heads:
            raise ValueError(f"DeltaConv: 'heads' must be a positive int "
                             f"dividing channels = {channels}, got {heads!r}")
        if (isinstance(eps, bool) or not isinstance(eps, (int, float))
                or not math.isfinite(eps) or eps < 0):
            raise ValueError(f"DeltaConv: 'eps' must be a finite number "
                             f">= 0, got {eps!r}")
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"DeltaConv: 'alpha' must lie in [0, 1], got "
                             f"{alpha!r}")
        if identity_map is not None and not (
                isinstance(identity_map, (int, float))
                and not isinstance(identity_map, bool)
                and 0.0 <= identity_map <= 1.0):
            raise ValueError(f"DeltaConv: 'identity_map' must lie in [0, 1] "
                             f"or be None, got {identity_map!r}")
        self.identity_map = (None if identity_map is None
                             else float(identity_map))
        if message_act is not None and not isinstance(message_act, str):
            raise ValueError(f"DeltaConv: 'message_act' must be an "
                             f"activation name or None, got {message_act!r}")
        if message_act is not None and k_source != 'anchor':
            raise ValueError(f"DeltaConv: 'message_act' acts on the anchored "
                             f"message; it needs k_source='anchor', got "
                             f"{k_source!r}")
        self.message_act = message_act
        if dropout_value and v_source != 'message':
            raise ValueError(f"DeltaConv: 'dropout_value' drops the message "
                             f"written as the value; it needs v_source="
                             f"'message', got {v_source!r}")
        self.dropout_value = bool(dropout_value)
        if not isinstance(channel_axes, bool):
            raise ValueError(f"DeltaConv: 'channel_axes' must be a bool, got "
                             f"{channel_axes!r}")
        if channel_axes and not (heads == channels and d_v == 1
                                 and v_source == 'message'
                                 and k_source == 'anchor' and erase
                                 and not scale_message):
            raise ValueError(f"DeltaConv: 'channel_axes' writes each "
                             f"channel's anchored message along its axis; it "
                             f"needs one channel per head (heads = channels "
                             f"= {channels}), d_v = 1, v_source='message', "
                             f"k_source='anchor', the erase update and no "
                             f"scale_message, got heads={heads!r}, "
                             f"d_v={d_v!r}, v_source={v_source!r}, "
                             f"k_source={k_source!r}, erase={erase!r}, "
                             f"scale_message={scale_message!r}")
        self.channel_axes = channel_axes
        if not isinstance(map_anchor, bool):
            raise ValueError(f"DeltaConv: 'map_anchor' must be a bool, got "
                             f"{map_anchor!r}")
        if map_anchor and not (k_source == 'anchor' and v_source == 'message'
                               and not dropout_value and not scale_message):
            raise ValueError(f"DeltaConv: 'map_anchor' maps the anchored "
                             f"message; it needs k_source='anchor', "
                             f"v_source='message', no dropout_value and no "
                             f"scale_message, got k_source={k_source!r}, "
                             f"v_source={v_source!r}, dropout_value="
                             f"{dropout_value!r}, scale_message="
                             f"{scale_message!r}")
        self.map_anchor = map_anchor
        try:
            self.msg_act = (None if message_act is None
                            else activation_resolver(message_act))
        except ValueError:
            raise ValueError(f"DeltaConv: 'message_act' {message_act!r} is "
                             f"not an activation PyG resolves (e.g. 'relu', "
                             f"'tanh', 'gelu')") from None
        self.channels, self.d_v = channels, d_v
        self.heads, self.alpha = heads, float(alpha)
        self.scale_message = bool(scale_message)
        self.dropout, self.erase, self.eps = dropout, erase, eps
        self.k_source, self.beta_source = k_source, beta_source
        self.v_source = v_source
        self.conv_name = conv if isinstance(conv, str) else type(conv).__name__

        self.compress = StateCompressor(channels, d_v)
        self.norm = make_norm(norm, channels)
        self.conv = make_conv(conv, channels, **kwargs)
        if self.identity_map is not None and not (
                type(self.conv) is GCNConv and self.conv.lin.bias is None):
            raise ValueError(f"DeltaConv: 'identity_map' mixes the weight "
                             f"of a GCNConv; got conv={self.conv_name!r}")
        if self.map_anchor and not (type(self.conv) is GCNConv
                                    and self.conv.lin.bias is None):
            raise ValueError(f"DeltaConv: 'map_anchor' applies the weight "
                             f"of a GCNConv after the anchored mix; got "
                             f"conv={self.conv_name!r}")
        two = 2 * channels
        self.k_lin = Linear(two, channels) if k_source == 'proj' else None
        if not isinstance(block_gate, bool):
            raise ValueError(f"DeltaConv: 'block_gate' must be a bool, got "
                             f"{block_gate!r}")
        parts = 1 if beta_source == 'context' else 2
        self.gate = BetaGate(parts * channels, beta_init, beta_mode, heads,
                             block=block_gate, parts=parts)
        self.v_lin = (None if v_source in ('restore', 'diffuse', 'message')
                      else Linear(two if v_source == 'anchor' else channels,
                                  heads * d_v))
        self.last_beta: Optional[Tensor] = None
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        for m in (self.compress, self.norm, self.conv, self.k_lin, self.gate,
                  self.v_lin):
            if m is not None and hasattr(m, 'reset_parameters'):
                m.reset_parameters()
        self.last_beta = None

    @property
    def needs_x0(self) -> bool:
        """Whether a source reads the input state ``x0``."""
        return bool({('k_source', self.k_source),
                     ('beta_source', self.beta_source),
                     ('v_source', self.v_source)} & ANCHORED)

    def read_state(self, X: Tensor) -> Tensor:
        """The vector read of a state, :math:`\\mathrm{compress}(X)`."""
        return self.compress(X)

    def forward(self, x: Tensor, edge_index: Adj,
                edge_weight: OptTensor = None,
                edge_attr: OptTensor = None, read: OptTensor = None,
                next_weight: OptTensor = None, x0: OptTensor = None,
                x0_link: bool = False):
        if x0_link and (x0 is None or next_weight is not None):
            raise ValueError("DeltaConv: 'x0_link' links the input state x0 "
                             "of a vector state's layers; pass x0 and no "
                             "next_weight")
        out = self._forward(x, edge_index, edge_weight, edge_attr, read,
                            next_weight, x0, x0_link)
        # only the anchored-message path makes a link; elsewhere it is x0
        if x0_link and not isinstance(out, tuple):
            return out, x0
        return out

    def _forward(self, x: Tensor, edge_index: Adj, edge_weight: OptTensor,
                 edge_attr: OptTensor, read: OptTensor,
                 next_weight: OptTensor, x0: OptTensor, x0_link: bool):
        reject_hetero(x, 'DeltaConv')
        if self.check_inputs:
            check_features(x, self.channels, 'x', 'DeltaConv', self.d_v)
            check_graph(edge_index, x.size(0), 'DeltaConv', edge_weight)
        if self.check_inputs and read is not None and (
                read.shape != (x.size(0), self.channels)):
            raise ValueError(f"DeltaConv: 'read' must have shape "
                             f"[{x.size(0)}, {self.channels}] (compress(x)), "
                             f"got {tuple(read.shape)}")
        if self.needs_x0:
            if x0 is None:
                raise ValueError(
                    f"DeltaConv: k_source={self.k_source!r}, beta_source="
                    f"{self.beta_source!r}, v_source={self.v_source!r} read "
                    f"the input state; pass x0 (the encoder output, "
                    f"[N, {self.channels}])")
            if self.check_inputs:
                check_features(x0, self.channels, 'x0', 'DeltaConv')
                if x0.size(0) != x.size(0):
                    raise ValueError(f"DeltaConv: 'x0' must have one row per "
                                     f"node ({x.size(0)}), got {x0.size(0)}")
        if self._fast_path_ok(x, edge_index):
            return self._fast_forward(x, edge_index, edge_weight, read,
                                      next_weight)
        if message_path_ok(self, x, read, next_weight):
            return message_forward(self, x, edge_index, edge_weight,
                                   edge_attr, x0, x0_link)

        r = self.compress(x) if read is None else read
        c = self.norm(r) if self.norm is not None else r
        h_value = None
        if self.dropout_value and self.training and self.dropout > 0:
            # Direction and gate from the clean read; the value is the
            # dropped message's component along that direction, unbiased.
            h_value = self.message_conv(
                dropout(c, p=self.dropout, training=True), edge_index,
                edge_weight, edge_attr)
        else:
            c = dropout(c, p=self.dropout, training=self.training)
        c0 = None
        if 'anchor' in (self.k_source, self.beta_source, self.v_source):
            c0 = self.norm(x0) if self.norm is not None else x0
        if self.map_anchor:
            h = self.anchored_map(c, c0, edge_index, edge_weight)
        else:
            h = self.message_conv(c, edge_index, edge_weight, edge_attr)

        if self.channel_axes and axes_path_ok(self, x, h_value):
            # the update and its gate fused (nn/axes_path.py)
            u = h if self.map_anchor else (
                (1.0 - self.alpha) * h + self.alpha * c0)
            out, beta = channel_axes_update(
                x, u, c, c0, self.gate.weight, self.gate.bias,
                self.gate.scale, self.msg_act is not None)
            self.last_beta = beta
            return out
        if self.map_anchor:
            k = self._act(h)
        elif self.k_source == 'proj':
            k = self.k_lin(torch.cat([c, h], dim=-1))
        elif self.k_source == 'anchor':
            k = self._act((1.0 - self.alpha) * h + self.alpha * c0)
        else:
            k = h
        if self.beta_source == 'context':
            beta = self.gate(c)
        else:
            beta = self.gate(torch.cat(
                [c, h if self.beta_source == 'both' else c0], -1))
        self.last_beta = beta.detach()
        if self.channel_axes:
            # x + beta e_c (k_c - e_c^T x) for every channel c; the message
            # value along the axis is the channel's anchored message itself
            k_value = k if h_value is None else self._act(
                torch.lerp(h_value, c0, self.alpha))
            return torch.addcmul(x, beta, k_value - x)
        v = self._value(r, c, h if h_value is None else h_value, c0, k, x0,
                        edge_index, edge_weight)
        return self._update(x, k, beta, v, next_weight)

    def _act(self, u: Tensor) -> Tensor:
        return u if self.msg_act is None else self.msg_act(u)

    def message_conv(self, c: Tensor, edge_index: Adj,
                     edge_weight: OptTensor = None,
                     edge_attr: OptTensor = None) -> Tensor:
        r"""The inner conv on the context; with ``identity_map`` =
        :math:`\gamma`, GCNII's identity mapping of its weight,
        :math:`\hat A\, c\, ((1 - \gamma) I + \gamma W) + b`."""
        conv = self.conv
        if self.identity_map is None:
            return call_conv(conv, c, edge_index, edge_weight, edge_attr)
        h = self._gcn_propagate(self._weight(c), edge_index, edge_weight)
        return h if conv.bias is None else h + conv.bias

    def anchored_map(self, c: Tensor, c0: Tensor, edge_index: Adj,
                     edge_weight: OptTensor = None) -> Tensor:
        r"""With ``map_anchor``: the anchored mix mapped by the conv's
        weight, :math:`((1 - \alpha) \hat A c + \alpha c_0)
        ((1 - \gamma) I + \gamma W) + b` (GCNII's order)."""
        s = self._mapped_mix(c, c0, edge_index, edge_weight)
        return s if self.conv.bias is None else s + self.conv.bias

    def _mapped_mix(self, c: Tensor, c0: Tensor, edge_index: Adj,
                    edge_weight: OptTensor) -> Tensor:
        r""":meth:`anchored_map` before the conv's bias."""
        return self._weight(torch.lerp(
            self._gcn_propagate(c, edge_index, edge_weight), c0, self.alpha))

    def unbiased_message(self, c: Tensor, c0: OptTensor, edge_index: Adj,
                         edge_weight: OptTensor = None,
                         edge_attr: OptTensor = None
                         ) -> Tuple[Tensor, OptTensor]:
        r"""The layer's message (:meth:`anchored_map` with ``map_anchor``,
        else :meth:`message_conv`) before the conv's bias, and that bias,
        for a fused update that adds it in its own pass; where the conv
        adds its bias itself (not a ``GCNConv``, or a cached one) the
        message and :obj:`None`."""
        conv = self.conv
        if self.map_anchor:
            h = self._mapped_mix(c, c0, edge_index, edge_weight)
        elif self.identity_map is not None or (type(conv) is GCNConv
                                               and not conv.cached):
            h = self._gcn_propagate(self._weight(c), edge_index, edge_weight)
        else:
            return call_conv(conv, c, edge_index, edge_weight,
                             edge_attr), None
        return h, conv.bias

    def _gcn_propagate(self, x: Tensor, edge_index: Adj,
                       edge_weight: OptTensor) -> Tensor:
        r"""``Â x`` through the ``GCNConv``'s propagation, normalised as
        the conv normalises (not at all where the model normalised the
        graph once: ``normalize=False``)."""
        conv = self.conv
        if conv.normalize:
            edge_index, edge_weight = gcn_norm(
                edge_index, edge_weight, x.size(0), conv.improved,
                conv.add_self_loops, conv.flow, x.dtype)
        return conv.propagate(edge_index, x=x, edge_weight=edge_weight)

    def _weight(self, x: Tensor) -> Tensor:
        r"""The conv's linear map, identity-mapped with ``identity_map`` =
        :math:`\gamma`: :math:`x ((1 - \gamma) I + \gamma W)`."""
        lin, g = self.conv.lin, self.identity_map
        return lin(x) if g is None else torch.lerp(x, lin(x), g)

    def _value(self, r: Tensor, c: Tensor, h: Tensor, c0: OptTensor,
               k: Tensor, x0: OptTensor, edge_index: Adj,
               edge_weight: OptTensor) -> Tensor:
        """The value in the shape :func:`~ddl_gnn.ops.delta_update` takes:
        ``[N]`` / ``[N, d_v]`` (one head), ``[N, H]`` / ``[N, H, d_v]``."""
        N, H = r.size(0), self.heads
        if self.v_lin is not None:
            src = {'context': c, 'conv': h}.get(self.v_source)
            v = self.v_lin(torch.cat([c, c0], -1) if src is None else src)
        else:
            u = x0
            if self.v_source == 'message':
                if self.scale_message:   # the message at the state's norm
                    h = h * (r.norm(dim=-1, keepdim=True) / torch.sqrt(
                        (h * h).sum(-1, keepdim=True) + self.eps ** 2))
                u = k if self.map_anchor else self._act(
                    torch.lerp(h, x0, self.alpha))
            elif self.v_source == 'diffuse':
                u = torch.lerp(self._propagate(r, edge_index, edge_weight),
                               x0, self.alpha)
            v = head_components(k, u, H, self.eps).reshape(N, H, 1)
            v = v.expand(N, H, self.d_v)
        if self.d_v == 1:
            return v.reshape(N) if H == 1 else v.reshape(N, H)
        return v.reshape(N, self.d_v) if H == 1 else v.reshape(
            N, H, self.d_v)

    def _propagate(self, r: Tensor, edge_index: Adj,
                   edge_weight: OptTensor) -> Tensor:
        r"""``Â r`` with the GCN-normalised adjacency (see the class
        docstring), through this layer's ``propagate``."""
        conv = self.conv
        if not (isinstance(conv, GCNConv) and not conv.normalize):
            edge_index, edge_weight = normalize_adjacency(
                edge_index, edge_weight, r.size(0), r.dtype)
        return self.propagate(edge_index, x=r, edge_weight=edge_weight)

    def message(self, x_j: Tensor, edge_weight: OptTensor) -> Tensor:
        return x_j if edge_weight is None else x_j * edge_weight.view(-1, 1)

    def message_and_aggregate(self, adj_t, x: Tensor) -> Tensor:
        return spmm(adj_t, x, reduce=self.aggr)

    def _update(self, x: Tensor, k: Tensor, beta: Tensor, v: Tensor,
                next_weight: OptTensor):
        update = delta_update if self.erase else delta_write
        if self.heads > 1:
            out = update(x, k, beta, v, self.eps, self.heads)
            if next_weight is None:
                return out
            return out, (compress_state(out, next_weight) if out.dim() == 3
                         else out)
        if next_weight is None:
            return update(x, k, beta, v, self.eps)
        if self.erase and x.dim() == 3:
            return delta_update_read(x, k, beta, v, next_weight, self.eps)
        out = (delta_update if self.erase else delta_write)(x, k, beta, v,
                                                             self.eps)
        return out, (compress_state(out, next_weight) if out.dim() == 3
                     else out)

    # -- fast path ------------------------------------------------------------
    def _fast_path_ok(self, x: Tensor, edge_index: Adj) -> bool:
        if self.k_source != 'conv':   # the anchored layers: answered here
            return False
        conv = self.conv
        return (type(conv) is GCNConv and conv.lin.bias is None
                and self.identity_map is None
                and (not conv.normalize or
                     (not conv.cached and isinstance(edge_index, Tensor)))
                and self.heads == 1
                and self.beta_source == 'context'
                and self.v_source == 'context'
                and (self.norm is None or type(self.norm) in (LayerNorm,
                                                               RMSNorm))
                and x.dtype in (torch.float32, torch.float64))

    def _context_params(self):
        params = [] if self.compress.weight is None else [self.compress.weight]
        n = self.norm
        if n is not None and getattr(n, 'weight', None) is not None:
            params.append(n.weight)
        if isinstance(n, LayerNorm) and n.bias is not None:
            params.append(n.bias)
        return params

    def _context(self, X: Tensor, *params: Tensor) -> Tensor:
        """``norm(compress(X))`` as a pure function of the given params."""
        if self.compress.weight is not None:
            return self._norm_context(compress_state(X, params[0]),
                                      *params[1:])
        return self._norm_context(X, *params)

    def _norm_context(self, X: Tensor, *params: Tensor) -> Tensor:
        """``norm(x)`` of an already compressed read."""
        i = 0
        n = self.norm
        if n is None:
            return X
        w = params[i] if n.weight is not None else None
        if isinstance(n, LayerNorm):
            b = params[i + 1] if n.bias is not None else None
            return F.layer_norm(X, n.normalized_shape, w, b, n.eps)
        return F.rms_norm(X, n.normalized_shape, w, n.eps)

    def _fast_forward(self, x: Tensor, edge_index: Adj,
                      edge_weight: OptTensor, read: OptTensor = None,
                      next_weight: OptTensor = None):
        conv, gate = self.conv, self.gate
        if conv.normalize:
            edge_index, edge_weight = gcn_norm(
                edge_index, edge_weight, x.size(0), conv.improved,
                conv.add_self_loops, conv.flow, x.dtype)
        # One head matrix: row 0 the gate logit (if learned), then v.
        if gate.weight is not None:
            Wb = torch.cat([gate.weight.unsqueeze(0), self.v_lin.weight])
            bb = torch.cat([gate.bias, self.v_lin.bias])
        else:
            Wb, bb = self.v_lin.weight, self.v_lin.bias
        if read is None:
            src, fn, params = x, self._context, self._context_params()
        else:   # the read was made by the previous layer's kernel
            params = self._context_params()
            src, fn = read, self._norm_context
            params = params[1:] if self.compress.weight is not None else params
        z, heads = context_linear(src, fn, params,
                                  conv.lin.weight, Wb.to(x.dtype),
                                  bb.to(x.dtype), self.dropout, self.training)
        h = conv.propagate(edge_index, x=z, edge_weight=edge_weight)
        if conv.bias is not None:
            h = h + conv.bias
        if gate.weight is not None:
            beta, v = gate.from_logit(heads[:, 0], x), heads[:, 1:]
        else:
            beta, v = gate.from_logit(None, x), heads
        if self.d_v == 1:
            v = v.squeeze(-1)
        self.last_beta = beta.detach()
        return self._update(x, h, beta, v, next_weight)

    def __repr__(self) -> str:
        extra = '' if self.erase else ', erase=False'
        if self.heads > 1:
            extra += f', heads={self.heads}'
        if self.gate.block:
            extra += ', block_gate=True'
        if self.scale_message:
            extra += ', scale_message=True'
        if self.identity_map is not None:
            extra += f', identity_map={self.identity_map:.4g}'
        if self.message_act is not None:
            extra += f', message_act={self.message_act}'
        if self.channel_axes:
            extra += ', channel_axes=True'
        if self.map_anchor:
            extra += ', map_anchor=True'
        for name in ('k_source', 'beta_source', 'v_source'):
            if getattr(self, name) not in ('conv', 'context'):
                extra += f', {name}={getattr(self, name)}'
        return (f'{self.__class__.__name__}({self.channels}, '
                f'conv={self.conv_name}, d_v={self.d_v}, '
                f'beta_init={self.gate.beta_init:g}, '
                f'beta_mode={self.gate.beta_mode}{extra})')
