r"""Fused path of the channel-axes :class:`~ddl_gnn.nn.DeltaConv`.

With ``channel_axes`` (one head per channel, its direction the channel's
axis) and a dense anchored gate, the layer after its message :math:`u`
(before the message activation) is elementwise but for the gate's
logits:

.. math::
    k = \mathrm{act}(u), \qquad
    \beta = s\,\sigma(c\,W_c^\top + x_0 W_0^\top + b), \qquad
    x' = x + \beta \odot (k - x),

with ``act`` a ReLU or the identity and :math:`c` the layer's (dropped)
read. Backward, with :math:`r = k - x`:

.. math::
    \partial x = g \odot (1 - \beta), \quad
    \partial u = \beta \odot g \odot \mathrm{act}'(u), \quad
    \partial \ell = g \odot r \odot \beta (1 - \beta / s),

    \partial c = \partial\ell\, W_c, \quad
    \partial x_0 = \partial\ell\, W_0, \quad
    \partial W = \partial\ell^\top [c \Vert x_0], \quad
    \partial b = \textstyle\sum_n \partial\ell.

Through autograd ops the layer concatenates :math:`[c \Vert x_0]` and
runs about ten elementwise kernels each way. :class:`_ChannelAxes` takes
the logits as two products into one buffer (no concatenation), the sigmoid
in place, and the update in one pass each way: the fused CPU kernels
(``ops/csrc/axes_cpu.cpp``), or torch ops elsewhere (one compiled region
where :mod:`ddl_gnn.ops.compiled` compiles). On the fused kernels the
same function runs as an autograd function written in C++
(``ops/csrc/axes_function.cpp``), which reaches them without Python in
either direction; its ``create_graph`` backward calls
:func:`_graph_backward`. The layer's generic path is the reference
(tests compare values and every gradient).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from ..ops import cpu_kernels
from ..ops._vjp import vjp_with_graph
from ..ops.compiled import region
from .message_path import gate_logit


def channel_axes_reference(x: Tensor, u: Tensor, c: Tensor, x0: Tensor,
                           W: Tensor, b: Tensor, scale: float,
                           relu: bool) -> Tensor:
    r"""The chain of the module docstring in plain autograd ops, as the
    layer's generic path computes it (gate on :math:`[c \Vert x_0]`)."""
    k = torch.relu(u) if relu else u
    beta = scale * torch.sigmoid(torch.cat([c, x0], -1) @ W.t() + b)
    return torch.addcmul(x, beta, k - x)


def _gates(c: Tensor, x0: Tensor, W: Tensor, b: Tensor,
           scale: float) -> Tensor:
    r""":math:`s\,\sigma(c W_c^\top + x_0 W_0^\top + b)`: two products
    into one buffer (:func:`~ddl_gnn.nn.message_path.gate_logit`), then
    the sigmoid and the scale in place."""
    return gate_logit(c, x0, W, b, anchor=True).sigmoid_().mul_(scale)


def _update_ops(x: Tensor, u: Tensor, beta: Tensor, relu: bool) -> Tensor:
    """The update in torch ops (off the fused CPU kernels)."""
    return torch.addcmul(x, beta, (torch.relu(u) if relu else u) - x)


def _update_grads_ops(g: Tensor, x: Tensor, u: Tensor, beta: Tensor,
                      scale: float, relu: bool
                      ) -> Tuple[Tensor, Tensor, Tensor]:
    """``(gx, gu, dl)`` of the update in torch ops."""
    k = torch.relu(u) if relu else u
    gb = beta * g
    gu = gb * (u > 0) if relu else gb
    return g - gb, gu, gb * (k - x) * (1.0 - beta / scale)


class _ChannelAxes(torch.autograd.Function):
    r"""``x'`` and ``beta`` from ``(x, u, c, x0, W, b)`` (see the module
    docstring); ``beta`` is returned without gradient (the layer keeps it
    for the β audit)."""

    @staticmethod
    def forward(ctx, x: Tensor, u: Tensor, c: Tensor, x0: Tensor, W: Tensor,
                b: Tensor, scale: float, relu: bool
                ) -> Tuple[Tensor, Tensor]:
        beta = _gates(c, x0, W, b, scale)
        if cpu_kernels.usable(x, u, beta):
            out = cpu_kernels.kernels().axes_forward(
                x.contiguous(), u.contiguous(), beta, relu)
        else:
            out = region(_update_ops, x.device)(x, u, beta, relu)
        ctx.scale, ctx.relu = scale, relu
        ctx.save_for_backward(x, u, c, x0, W, b, beta)
        ctx.mark_non_differentiable(beta)
        return out, beta

    @staticmethod
    def backward(ctx, g: Tensor, _gbeta: Optional[Tensor]):
        x, u, c, x0, W, b, beta = ctx.saved_tensors
        need = ctx.needs_input_grad[:6]
        if torch.is_grad_enabled():
            # create_graph=True: differentiate the plain chain
            return vjp_with_graph(
                ctx.needs_input_grad,
                lambda *t: channel_axes_reference(*t, ctx.scale, ctx.relu),
                (x, u, c, x0, W, b), g, trailing=2)
        if cpu_kernels.usable(g, x, u, beta):
            gx, gu, dl = cpu_kernels.kernels().axes_backward(
                g.contiguous(), x.contiguous(), u.contiguous(), beta,
                ctx.scale, ctx.relu)
        else:
            gx, gu, dl = region(_update_grads_ops, x.device)(
                g, x, u, beta, ctx.scale, ctx.relu)
        d = x.size(1)
        gc = dl.mm(W[:, :d]) if need[2] else None
        gx0 = dl.mm(W[:, d:]) if need[3] else None
        gW = gb = None
        if need[4]:
            dlt = dl.t()
            gW = torch.cat([dlt.mm(c), dlt.mm(x0)], 1)
        if need[5]:
            gb = dl.sum(0)
        return gx, gu, gc, gx0, gW, gb, None, None


#: Whether the fused CPU kernels' update runs as the autograd function
#: written in C++ (``ops/csrc/axes_function.cpp``); ``False`` runs it
#: through :class:`_ChannelAxes` (for side-by-side timing and tests; the
#: same kernels and products, the same values).
CPP_FUNCTION = True


def _graph_backward(x: Tensor, u: Tensor, c: Tensor, x0: Tensor, W: Tensor,
                    b: Tensor, g: Tensor, scale: float, relu: bool,
                    needs: list) -> list:
    r"""The ``create_graph=True`` backward of the C++ function
    (``ops/csrc/axes_function.cpp`` calls it): the plain chain
    differentiated with a graph; the six inputs' gradients, ``None`` where
    not needed."""
    return list(vjp_with_graph(
        needs, lambda *t: channel_axes_reference(*t, scale, relu),
        (x, u, c, x0, W, b), g))


def channel_axes_update(x: Tensor, u: Tensor, c: Tensor, x0: Tensor,
                        W: Tensor, b: Tensor, scale: float = 2.0,
                        relu: bool = True) -> Tuple[Tensor, Tensor]:
    r"""The channel-axes update of the module docstring, gate included, as
    one fused function: returns ``(x', beta)``, ``beta`` detached.

    Args:
        x (torch.Tensor): Vector state :obj:`[N, d]`.
        u (torch.Tensor): The layer's message before its activation
            :obj:`[N, d]`.
        c (torch.Tensor): The gate's context :obj:`[N, d]` (the layer's
            read, dropped in training).
        x0 (torch.Tensor): Input state :obj:`[N, d]`.
        W (torch.Tensor): Gate weight :obj:`[d, 2d]` (the :math:`c` half,
            then the :math:`x_0` half).
        b (torch.Tensor): Gate bias :obj:`[d]`.
        scale (float, optional): Gate range :math:`s` (2 for
            ``'learned'``, 1 for ``'learned01'``). (default: :obj:`2.`)
        relu (bool, optional): The message activation is a ReLU (else the
            identity). (default: :obj:`True`)

    Shapes:
        - **output:** :obj:`([N, d], [N, d])`
    """
    d = x.size(-1)
    for name, t in (('u', u), ('c', c), ('x0', x0), ('W', W), ('b', b)):
        if t.dtype != x.dtype or t.device != x.device:
            raise ValueError(f"channel_axes_update: '{name}' must have the "
                             f"state's dtype {x.dtype} and device "
                             f"{x.device}, got {t.dtype} on {t.device}")
    for name, t in (('u', u), ('c', c), ('x0', x0)):
        if t.shape != x.shape:
            raise ValueError(f"channel_axes_update: '{name}' must have the "
                             f"state's shape {tuple(x.shape)}, got "
                             f"{tuple(t.shape)}")
    if x.dim() != 2 or W.shape != (d, 2 * d) or b.shape != (d, ):
        raise ValueError(f"channel_axes_update: a state [N, d] with a gate "
                         f"weight [d, 2d] and bias [d]; got x "
                         f"{tuple(x.shape)}, W {tuple(W.shape)}, b "
                         f"{tuple(b.shape)}")
    function = (cpu_kernels.cpp_function(
        cpu_kernels.kernels_for(x, u, c, x0, W, b), 'channel_axes',
        _graph_backward) if CPP_FUNCTION else None)
    if function is not None:
        out, beta = function(x, u, c, x0, W, b, float(scale), bool(relu))
        return out, beta
    return _ChannelAxes.apply(x, u, c, x0, W, b, float(scale), bool(relu))


def axes_path_ok(layer, x: Tensor, h_value: Optional[Tensor]) -> bool:
    r"""Whether :func:`channel_axes_update` computes ``layer``'s update:
    ``channel_axes`` with a learned dense gate on :math:`[c \Vert c_0]`
    (passed as ``c`` and ``x0``), no separately dropped value, a ReLU or
    no message activation, and a float32/float64 vector state of the
    gate's dtype."""
    gate = layer.gate
    return (layer.channel_axes and h_value is None
            and layer.beta_source == 'anchor' and gate.weight is not None
            and not gate.block
            and (layer.msg_act is None
                 or type(layer.msg_act) is torch.nn.ReLU)
            and x.dim() == 2 and x.dtype in (torch.float32, torch.float64)
            and gate.weight.dtype == x.dtype)
