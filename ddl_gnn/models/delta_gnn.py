r"""The delta-shortcut model family."""
from __future__ import annotations

import math
from typing import Optional, Sequence

from torch import Tensor, nn

from .._validate import check_rate
from ..nn.compress import StateCompressor
from ..nn.delta_conv import PAPER_DELTA, DeltaConv
from ..nn.gates import BETA_INIT
from ..ops import cpu_kernels
from ..ops.compiled import compile_enabled
from ..ops.dropout import dropout
from .base import DeepGNN

#: The most a shallow stack's ``beta_sum`` opens its gates at
#: initialisation: under 1, so that a gate in (0, 1) starts off the
#: saturated end of its sigmoid and a layer still keeps part of its state.
BETA_OPEN = 0.9

#: Whether a vector state's layers pass the input state on as links
#: (:class:`~ddl_gnn.nn.DeltaConv`'s ``x0_link``): their backward passes
#: then sum the input state's gradient instead of autograd adding each
#: layer's in a pass of its own. ``False`` hands every layer ``x0`` itself
#: (for side-by-side timing and tests; the same values bit for bit).
LINK_X0 = True


def depth_beta_init(num_layers: int, beta_init: float,
                    beta_sum: float) -> float:
    r"""The starting gate of a ``num_layers`` stack:
    :math:`\max(\beta_0, \min(\beta_{open}, s / L))` with
    :math:`\beta_0` = ``beta_init``, :math:`s` = ``beta_sum`` and
    :math:`\beta_{open}` = :data:`BETA_OPEN`. The stack's starting gates then
    sum to at least :math:`s` where :math:`\beta_0` alone would sum to less
    (shallow stacks), and are :math:`\beta_0` from :math:`L \ge s/\beta_0`
    on. ``beta_sum = 0`` gives ``beta_init`` at every depth."""
    if beta_sum <= 0 or not isinstance(num_layers, int) or num_layers < 1 \
            or not isinstance(beta_init, (int, float)):
        return beta_init    # off, or inputs the stack and gate reject
    return max(beta_init, min(BETA_OPEN, beta_sum / num_layers))


class DeltaGNN(DeepGNN):
    r"""A deep stack of :class:`~ddl_gnn.nn.DeltaConv` layers.

    The input linear maps features to the state width :math:`d`; with
    :math:`d_v > 1` the state is repeated to :math:`d_v` columns; the output
    compresses the state (its own :class:`StateCompressor`), applies the
    norm (none by default) and the decoder linear. ``num_layers`` counts
    message-passing layers only. Every layer reads the encoder output
    :math:`x_0` (the anchor of its direction, gate and value). The defaults
    are the layer's (anchored messages, 8 heads, β ∈ (0, 1) from
    β₀ = 0.1, no norm); ``DeltaGNN(..., **PAPER_DELTA)`` or
    ``build_model('delta-paper', ...)`` is the paper's mapping with its
    β₀ = 1.

    Train the default layer as GCNII is trained: :meth:`param_groups`
    decays the layers' parameters by 0.01 apart from the linears (with
    dropout 0.6, the recipe it was selected with). It writes its anchored
    message's own norm, so the conv weight alone bounds a layer's gain;
    undecayed, that gain can compound over a deep stack (on Amazon Photo
    at 64 layers one of three runs diverged at lr 0.01, dropout 0.5 and
    weight decay 5e-4; none of three with dropout 0.6 and 0.01 on the
    convs). ``theta`` bounds it by construction (docs/findings.md, "Beyond
    Cora and CiteSeer").

    Args (beyond :class:`~ddl_gnn.models.base.DeepGNN`):
        d_v (int, optional): Value columns of the node state. (default: 1)
        beta_init (float, optional): Gate at initialisation (with
            ``beta_sum``, its floor). (default: :obj:`BETA_INIT`)
        beta_sum (float, optional): Open the gates of a shallow stack at
            initialisation so that they sum to ``beta_sum`` over its
            layers: every layer starts at
            :func:`depth_beta_init` :math:`= \max(\beta_0, \min(0.9,
            s / L))`. At :math:`\beta_0 = 0.1` a stack of 2 to 8 layers
            otherwise barely leaves its input, while from about 32 layers
            on a larger start makes the state gradient grow with depth
            (``study/init_probe.py``); with ``beta_sum = 3.2`` the stacks
            from 32 layers on start at :math:`\beta_0` as before.
            Per-layer ``beta_init`` in ``layer_options`` takes precedence.
            (default: :obj:`0.0`, off)
        beta_mode (str, optional): ``'learned'``, ``'learned01'``,
            ``'fixed'``. (default: :obj:`'learned01'`)
        k_source, beta_source, v_source, erase, heads, alpha, block_gate,
        scale_message: see
            :class:`~ddl_gnn.nn.DeltaConv`; the anchored sources read the
            encoder output :math:`x_0` (every layer gets it).
        layer_options (list of dict, optional): Per-layer overrides of the
            :class:`~ddl_gnn.nn.DeltaConv` options, cycled over the layers
            (layer :math:`l` takes ``layer_options[l % len]``), e.g. layers
            that alternate a diffusion value and a learned message.
            (default: :obj:`None`)
        theta (float, optional): GCNII's identity mapping of every
            layer's conv weight, :math:`W_l \to (1 - \gamma_l) I +
            \gamma_l W_l` with :math:`\gamma_l = \log(\theta / l + 1)`
            (``identity_map`` of :class:`~ddl_gnn.nn.DeltaConv`): deep
            layers start near a weight-free propagation.
            (default: :obj:`None`)
        input_norm (bool, optional): LayerNorm on the encoder output, so
            the state starts at the scale of the values written from a
            normalised context. (default: :obj:`False`)
        layer_dropout (float, optional): Dropout on each layer's read of
            the state (the conv input), overriding ``dropout`` there;
            :obj:`None` uses ``dropout``. The anchored message writes its
            own norm along its direction (:math:`v = \lVert k_h\rVert`),
            and inverted dropout inflates that norm, so with dropout inside
            the layers the train-mode state grows with depth while the
            eval-mode state does not (with ``theta=0.5`` on Cora at
            initialisation, 3.0x its eval-mode size at 64 layers and 370x
            at 256, relative to the encoder output, ``study/init_probe.py``);
            ``0.0`` keeps the ratio flat with depth. (default: :obj:`None`)
        state_dropout (bool, optional): Dropout (rate ``dropout``) on the
            start state :math:`X^0 = \mathrm{drop}(x_0)`, as GCNII drops
            its first layer's input; the anchor :math:`x_0` the layers read
            stays undropped. (default: :obj:`False`)
        update_dropout (float, optional): Dropout on each layer's write,
            :math:`X^{l+1} = X^l + \mathrm{drop}(X'^{\,l} - X^l)` with
            :math:`X'^{\,l}` the layer's output, in training only: the
            stochastic regulariser of a transformer's residual branch. It
            perturbs what a layer changes rather than what its conv reads,
            so the message norm the layer writes is not inflated (see
            ``layer_dropout``). (default: :obj:`0.0`)
        message_act, dropout_value, channel_axes, map_anchor: see
            :class:`~ddl_gnn.nn.DeltaConv` (defaults :obj:`None`,
            :obj:`False`, :obj:`False`, :obj:`False`).
        read_act (bool, optional): Apply the activation to the read of
            the top state before the decoder (and a graph readout) where
            there is no norm; with a norm the read is always
            :math:`\mathrm{act}(\mathrm{norm}(\cdot))`. Without it, the
            default stack (no norm) reads a state that is close to linear
            in the encoder output. (default: :obj:`False`)
        gate_decay (float, optional): Weight decay of the gates'
            parameters in :meth:`param_groups`, in place of the layers'
            decay: under the layers' 0.01 on Cora every node, channel and
            layer ends with nearly one gate value (docs/findings.md). A
            block gate of one channel per head (two weights and a bias per
            channel) left undecayed (``0``) keeps gates that differ per
            node.
            (default: :obj:`None`, the layers' decay)
        eps (float, optional): The direction's guard
            :math:`\hat k = k / \sqrt{\lVert k\rVert^2 + \epsilon^2}`
            of every layer. With ``theta`` the deep layers start near a
            weight-free propagation, where a head block of a node can
            carry a vanishing message whose gradient :math:`1/\epsilon`
            amplifies (``study/init_probe.py``: 7.9e5x from the top to the
            input at 256 layers with 1e-5, 0.58x with 0.01).
            (default: :obj:`1e-5`)
        shared_weights (bool, optional): Every layer uses the first
            layer's parameters (its conv and gate), as a recurrent stack
            does: :math:`L` applications of one learned operator, each
            layer keeping its own identity-mapping share
            :math:`\gamma_l` (``theta``) and its own dropout draws. A
            stack of 64 layers on 140 labelled nodes has 64 weight
            matrices to fit; shared, it has one. (default: :obj:`False`)

    Example:
        >>> model = DeltaGNN(16, 32, num_layers=8, out_channels=3)
        >>> out = model(x, edge_index)            # [N, 3]
    """
    family = 'delta'
    default_norm: Optional[str] = None
    final_norm = True

    def __init__(self, in_channels: int, hidden_channels: int,
                 num_layers: int, out_channels: int, conv: str = 'gcn',
                 d_v: int = 1, beta_init: float = BETA_INIT,
                 beta_sum: float = 0.0,
                 beta_mode: str = 'learned01', k_source: str = 'anchor',
                 beta_source: str = 'anchor', v_source: str = 'message',
                 erase: bool = True, heads: int = 8, alpha: float = 0.1,
                 block_gate: bool = False, scale_message: bool = False,
                 message_act: Optional[str] = None,
                 dropout_value: bool = False, channel_axes: bool = False,
                 map_anchor: bool = False, eps: float = 1e-5,
                 theta: Optional[float] = None,
                 input_norm: bool = False,
                 layer_dropout: Optional[float] = None,
                 gate_decay: Optional[float] = None,
                 state_dropout: bool = False, read_act: bool = False,
                 update_dropout: float = 0.0,
                 shared_weights: bool = False,
                 layer_options: Optional[Sequence[dict]] = None, **kwargs):
        if not isinstance(d_v, int) or d_v < 1:
            raise ValueError(f"DeltaGNN: 'd_v' must be a positive int, got "
                             f"{d_v!r}")
        self.d_v = d_v
        if layer_options is not None and (
                not isinstance(layer_options, (list, tuple)) or
                not layer_options or
                not all(isinstance(o, dict) for o in layer_options)):
            raise ValueError(f"DeltaGNN: 'layer_options' must be a non-empty "
                             f"list of dicts, got {layer_options!r}")
        # gamma_1 = log(theta + 1) is the largest weight share; it must
        # stay a mix of the identity and W (at most 1).
        if theta is not None and not (
                isinstance(theta, (int, float)) and not isinstance(theta, bool)
                and 0 < theta <= math.e - 1):
            raise ValueError(f"DeltaGNN: 'theta' must be a number in "
                             f"(0, e - 1] (so that log(theta / l + 1) <= 1) "
                             f"or None, got {theta!r}")
        self.theta = None if theta is None else float(theta)
        self.layer_options = list(layer_options or [{}])
        if isinstance(beta_sum, bool) or not isinstance(
                beta_sum, (int, float)) or not math.isfinite(beta_sum) \
                or beta_sum < 0:
            raise ValueError(f"DeltaGNN: 'beta_sum' must be a finite number "
                             f">= 0 (0: off), got {beta_sum!r}")
        self.beta_sum = float(beta_sum)
        beta_init = depth_beta_init(num_layers, beta_init, self.beta_sum)
        self.delta_kwargs = dict(beta_init=beta_init, beta_mode=beta_mode,
                                 k_source=k_source, beta_source=beta_source,
                                 v_source=v_source, erase=erase,
                                 heads=heads, alpha=alpha,
                                 block_gate=block_gate,
                                 scale_message=scale_message,
                                 message_act=message_act,
                                 dropout_value=dropout_value, eps=eps,
                                 channel_axes=channel_axes,
                                 map_anchor=map_anchor)
        self.layer_dropout = check_rate(layer_dropout, 'layer_dropout',
                                        'DeltaGNN', allow_none=True)
        self.state_dropout = bool(state_dropout)
        self.update_dropout = check_rate(update_dropout, 'update_dropout',
                                         'DeltaGNN')
        self.read_act = bool(read_act)
        if gate_decay is not None and (
                isinstance(gate_decay, bool)
                or not isinstance(gate_decay, (int, float))
                or not math.isfinite(gate_decay) or gate_decay < 0):
            raise ValueError(f"DeltaGNN: 'gate_decay' must be a finite "
                             f"number >= 0 or None, got {gate_decay!r}")
        self.gate_decay = None if gate_decay is None else float(gate_decay)
        if not isinstance(shared_weights, bool):
            raise ValueError(f"DeltaGNN: 'shared_weights' must be a bool, "
                             f"got {shared_weights!r}")
        if shared_weights and layer_options is not None and len(
                layer_options) > 1:
            raise ValueError("DeltaGNN: 'shared_weights' ties every layer "
                             "to the first one; it takes at most one entry "
                             f"of 'layer_options', got {len(layer_options)}")
        self.shared_weights = shared_weights
        super().__init__(in_channels, hidden_channels, num_layers,
                         out_channels, conv=conv, **kwargs)
        if shared_weights:
            self._share_first_layer()
        self.out_compress = StateCompressor(hidden_channels, d_v)
        # A LayerNorm'd input puts the state at the scale of the values the
        # layers write from their normalised context.
        self.in_norm = (nn.LayerNorm(hidden_channels) if input_norm
                        else None)
        if not erase:
            self.family = 'delta-write-only'

    def _share_first_layer(self) -> None:
        # Same modules in the same order (make_layer builds every layer
        # from the same options), so the i-th module of each layer holds
        # the i-th module of the first layer's parameters.
        first = list(self.layers[0].modules())
        for layer in self.layers[1:]:
            for mod, src in zip(layer.modules(), first):
                for name, param in src.named_parameters(recurse=False):
                    setattr(mod, name, param)

    def make_layer(self, i: int) -> nn.Module:
        opts = dict(norm=self.norm_name, dropout=(
            self.dropout if self.layer_dropout is None
            else self.layer_dropout), **self.delta_kwargs)
        if self.theta is not None:   # GCNII's schedule, layers l = 1..L
            opts['identity_map'] = math.log(self.theta / (i + 1) + 1)
        opts.update(self.layer_options[i % len(self.layer_options)])
        layer = DeltaConv(self.hidden_channels, conv=self.conv_name,
                          d_v=self.d_v, **opts,
                          **dict(self.conv_kwargs))
        layer.check_inputs = False  # the model checks its inputs once
        return layer

    def encode(self, x: Tensor) -> Tensor:
        x0 = super().encode(x)
        return x0 if self.in_norm is None else self.in_norm(x0)

    def init_state(self, h0: Tensor) -> Tensor:
        if self.state_dropout:
            h0 = dropout(h0, p=self.dropout, training=self.training)
        if self.d_v == 1:
            return h0
        return h0.unsqueeze(-1).expand(-1, -1, self.d_v).contiguous()

    def read_state(self, X: Tensor) -> Tensor:
        h = self.out_compress(X)
        # With a norm, the skeleton applies norm -> act before the
        # decoder; without one it applies neither.
        return self.act(h) if self.read_act and self.out_norm is None else h

    def param_groups(self, weight_decay_conv: float = 0.01,
                     weight_decay_lin: float = 5e-4) -> list:
        """The base groups; with ``gate_decay``, the gates' parameters in
        a third group decayed by it."""
        groups = super().param_groups(weight_decay_conv, weight_decay_lin)
        if self.gate_decay is None:
            return groups
        gates = list({id(p): p for layer in self.layers
                      for p in layer.gate.parameters()}.values())
        ids = {id(p) for p in gates}
        groups[0]['params'] = [p for p in groups[0]['params']
                               if id(p) not in ids]
        return groups + [dict(params=gates, weight_decay=self.gate_decay)]

    def layer_forward(self, layer, x, x0, edge_index, edge_weight, edge_attr,
                      x0_link: bool = False):
        """One layer; with ``x0_link`` returns ``(x', link)``, the link
        the next layer reads as its ``x0`` (:class:`DeltaConv`)."""
        if not layer.needs_x0:
            x0 = None
        out = layer(x, edge_index, edge_weight, edge_attr, x0=x0,
                    x0_link=x0_link)
        if x0_link:
            out, x0 = out
        if self.training and self.update_dropout > 0:
            out = x + dropout(out - x, p=self.update_dropout)
        return (out, x0) if x0_link else out

    def _fused_reads(self, start: int, end: int) -> bool:
        """Chain the layers' reads (see :class:`DeltaConv`): matrix states,
        the erase update, and no hook watching a layer (a
        :class:`~ddl_gnn.metrics.LayerProbe` needs the whole gradient at
        each layer's output, which the fused read splits in two)."""
        if self.d_v == 1 or end - start < 2:
            return False
        if self.training and self.update_dropout > 0:
            return False    # each write is dropped on its own
        # Only where the fused CPU kernel or a compiled region runs:
        # elsewhere the chained read is the same composition, and keeping
        # it (instead of recomputing) would cost N x d memory per layer for
        # nothing.
        w = self.layers[start].compress.weight
        if not (cpu_kernels.usable(w) or compile_enabled(w.device)):
            return False
        return all(layer.erase and not layer._forward_hooks
                   and not layer._forward_pre_hooks
                   for layer in self.layers[start:end])

    def _linked_x0(self, layers: list, end: int, x0: Tensor) -> bool:
        """Link the layers' input state (see :data:`LINK_X0`): vector
        states, three layers or more that all read ``x0``, the fused CPU
        kernels (the C++ update makes the links; elsewhere they would be
        ``x0`` itself), no hook watching a layer (a linked layer returns a
        pair), and the stack's last layers: of checkpointed segments only
        the last, whose backward runs first, so that the linked layers'
        sum is the first term of ``x0``'s gradient, as unlinked (later
        segments' sums would enter a gradient that already holds terms,
        in another order than autograd's, a rounding apart). ``layers``
        are the segment's, ``end`` where it ends in the stack."""
        return (LINK_X0 and self.d_v == 1 and len(layers) >= 3
                and end >= len(self.layers) and cpu_kernels.usable(x0)
                and all(layer.needs_x0 and not layer._forward_hooks
                        and not layer._forward_pre_hooks
                        for layer in layers))

    def _run_layers(self, start: int, end: int, X: Tensor, x0: Tensor,
                    edge_index, edge_weight, edge_attr) -> Tensor:
        end = min(end, len(self.layers))   # the last segment may be short
        # (a ModuleList's own slice builds a new ModuleList: about 100 us
        # at 64 layers, every forward)
        layers = list(self.layers)[start:end]
        if self._linked_x0(layers, end, x0):
            # The first layer reads x0 itself, the second x0 and links it
            # on: x0's gradient then receives the linked layers' sum first
            # and the first layer's terms after it, the order (and so the
            # sums, bit for bit) of unlinked layers.
            X = self.layer_forward(layers[0], X, x0, edge_index,
                                   edge_weight, edge_attr)
            for layer in layers[1:-1]:
                X, x0 = self.layer_forward(layer, X, x0, edge_index,
                                           edge_weight, edge_attr, True)
            return self.layer_forward(layers[-1], X, x0, edge_index,
                                      edge_weight, edge_attr)
        if not self._fused_reads(start, end):
            return super()._run_layers(start, end, X, x0, edge_index,
                                       edge_weight, edge_attr)
        # Layer i makes layer i+1's read compress_{i+1}(X_i) in the pass
        # that writes X_i (one pass over the state instead of two).
        read = None
        for i in range(start, end):
            layer = self.layers[i]
            x0_i = x0 if layer.needs_x0 else None
            if i + 1 < end:
                X, read = layer(X, edge_index, edge_weight, edge_attr,
                                read=read, x0=x0_i,
                                next_weight=self.layers[i + 1].compress.weight)
            else:
                X = layer(X, edge_index, edge_weight, edge_attr, read=read,
                          x0=x0_i)
        return X

    def reset_parameters(self):
        super().reset_parameters()
        self.out_compress.reset_parameters()
        if self.in_norm is not None:
            self.in_norm.reset_parameters()

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.in_channels}, '
                f'{self.out_channels}, hidden={self.hidden_channels}, '
                f'num_layers={self.num_layers}, conv={self.conv_name}, '
                f'd_v={self.d_v})')
