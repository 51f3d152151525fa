r"""Fused path of the anchored-message :class:`~ddl_gnn.nn.DeltaConv`.

With ``k_source='anchor'``, ``v_source='message'``, no norm and a vector
state, the layer after its conv :math:`h` is a short elementwise chain per
head :math:`h` (block of width :math:`d/H`):

.. math::
    k = (1 - \alpha) h + \alpha x_0, \qquad
    \beta = s\,\sigma(\ell), \qquad
    v = \hat k^\top k = n \rho, \qquad
    x' = x + \beta \hat k (v - \hat k^\top x)
       = x + \beta \rho^2 (n - k^\top x)\, k,

with :math:`n = \lVert k\rVert^2`, :math:`\rho = (n + \epsilon^2)^{-1/2}`
and the gate logit :math:`\ell` (``'anchor'``: :math:`W_c x + W_0 x_0 + b`,
``'context'``: :math:`W x + b`; a block gate's per-head sums over the
head's own block). Through autograd
ops it is about twenty
kernels forward and as many backward per layer, which dominates a step on
small graphs. :class:`_AnchoredMessage` computes it from
``(x, h, x0, logit)`` with one closed-form backward, per head
(:math:`c = \beta\rho^2 (n - q)`, :math:`q = k^\top x`, :math:`a = k^\top g`):

.. math::
    \partial x &= g - \beta \rho^2 a\, k, \qquad
    \partial \ell = a \rho^2 (n - q)\, \beta (1 - \beta / s),

    \partial k &= c\, g - a \beta \rho^2 x
                 + 2 a \beta \rho^2 (1 - \rho^2 (n - q))\, k,
    \qquad \partial h = (1 - \alpha)\, \partial k, \quad
    \partial x_0 = \alpha\, \partial k.

On CPU float32/float64 both directions run as one pass over the rows in
the fused kernels (``ops/csrc/message_cpu.cpp``; float heads of eight
channels eight heads per AVX2 operation; with one head per channel an
elementwise pass the compiler vectorises; in both cases the forward keeps
no per-head scalars for backward, whose row pass rebuilds
:math:`n, q, \rho^2` from :math:`k` and :math:`x`: three :obj:`[N, H]`
allocations, writes and reads fewer a layer), the gate's own products as
torch ops around them, except for
the default layer's gate (dense, anchored, over float32 heads of eight
channels in groups of eight: :func:`_gate_in_rows`), which the AVX2 row
passes compute too: the logits as eight per-head dot products with
:math:`W` and :math:`s\,\sigma` forward, the gate's terms of
:math:`\partial x`, :math:`\partial x_0` and
:math:`\partial W = \sum_n \partial\ell\, [x \Vert x_0]`,
:math:`\partial b = \sum_n \partial\ell` backward (no op dispatches for
the gate; with a context :math:`c`, the dropped state in training, the
gate reads :math:`[c \Vert x_0]` and its input term goes to
:math:`\partial c`); elsewhere as torch ops,
one compiled region each way where :mod:`ddl_gnn.ops.compiled` compiles
(CUDA by default).
The conv's bias (a ``GCNConv``'s, see
:meth:`~ddl_gnn.nn.DeltaConv.unbiased_message`) is added to :math:`h` in
the same passes, and its gradient, :math:`h`'s column sum, summed in the
AVX2 backward pass: a separate ``h + b`` cost a read and a write of
:math:`h` forward and a read of its gradient backward.
The default layer's update (the gate in the rows) runs as an autograd
function written in C++ (``ops/csrc/message_function.cpp``:
:func:`_cpp_function`): forward and backward reach the row passes without
Python, whose autograd function costs tens of microseconds a layer each
way (a visible share of a deep stack's step on a small graph); its
``create_graph`` backward calls :func:`_graph_backward`. Every other case
runs through :class:`_AnchoredMessage`. The C++ function also links
:math:`x_0` from layer to layer (``x0_link`` of
:func:`anchored_message_update`): the later layers' gradient of
:math:`x_0` joins the layer's own in its backward pass.
Whether :math:`k` is saved or recomputed in backward follows
:func:`ddl_gnn.ops.recompute.recompute_in_backward`. The generic path of
:class:`~ddl_gnn.nn.DeltaConv` is the reference (tests compare values and
every gradient).
"""
from __future__ import annotations

from types import ModuleType
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.typing import OptTensor

from ..ops import cpu_kernels
from ..ops._vjp import vjp_with_graph
from ..ops.compiled import region
from ..ops.dropout import dropout
from ..ops.recompute import recompute_in_backward
from .conv_resolver import call_conv
from .gates import channel_logit


def _fused(*tensors: Optional[Tensor]) -> Optional[ModuleType]:
    """The fused CPU kernels where they serve these tensors (``None``s, a
    fixed gate's missing weight and bias, aside), else ``None``."""
    module = cpu_kernels.kernels_for(*[t for t in tensors if t is not None])
    return module if hasattr(module, 'message_forward') else None


#: Whether the update of :func:`_gate_in_rows` runs as the autograd
#: function written in C++ (``ops/csrc/message_function.cpp``: no Python
#: in either direction); ``False`` runs it through :class:`_AnchoredMessage`
#: (for side-by-side timing and tests; the same kernels, the same values).
CPP_FUNCTION = True

#: Whether the kernels compute a dense anchored gate in their row passes
#: where they can (:func:`_gate_in_rows`); ``False`` runs the gate as torch
#: ops around them, as every other gate (for side-by-side timing).
GATE_IN_ROWS = True


def _gate_in_rows(kernels: ModuleType, x: Tensor, W: Optional[Tensor],
                  anchor: bool, block: bool) -> bool:
    r"""Whether the fused ``kernels`` compute this gate in their row passes: a
    learned dense anchored gate over float32 heads of eight channels in
    groups of eight heads, in an AVX2 build (forward: the logits and
    :math:`s\,\sigma`; backward: the gate's terms of ``gx``, ``gx0`` and
    ``gW``, ``gb``)."""
    return (GATE_IN_ROWS and W is not None and anchor and not block
            and kernels.message_gate_in_rows(x, W.size(0)))


def _heads(t: Tensor, heads: int) -> Tensor:
    return t.view(t.size(0), heads, t.size(1) // heads)


def gate_logit(x: Tensor, x0: Tensor, W: Tensor, b: Tensor,
               anchor: bool, block: bool = False) -> Tensor:
    r"""The gate logits :obj:`[N, H]` as :class:`~ddl_gnn.nn.gates.BetaGate`
    computes them: :math:`[x \Vert x_0] W^\top + b` (``anchor``) or
    :math:`x W^\top + b` with a dense ``W`` :obj:`[H, 2d]` / :obj:`[H, d]`;
    with ``block``, head :math:`h` reads only its own block of :math:`x`
    (and of :math:`x_0`), ``W`` :obj:`[H, 2d/H]` / :obj:`[H, d/H]`."""
    d, H = x.size(1), W.size(0)
    if not block:
        logit = torch.addmm(b, x, W[:, :d].t())
        # in place: addmm's backward does not read its output
        return logit.addmm_(x0, W[:, d:].t()) if anchor else logit
    w = d // H
    if w == 1:
        return channel_logit([x, x0] if anchor else [x], W, b)
    logit = (_heads(x, H) * W[:, :w]).sum(-1)
    if anchor:
        logit = logit + (_heads(x0, H) * W[:, w:]).sum(-1)
    return logit + b


def _gates(x: Tensor, x0: Tensor, W: Optional[Tensor], b: Optional[Tensor],
           anchor: bool, heads: int, scale: float, block: bool,
           fixed: Optional[float]) -> Tensor:
    r"""The gates :obj:`[N, H]`: ``fixed`` everywhere when there is no gate
    weight, else :math:`s\,\sigma(\ell)`."""
    if W is None:
        return x.new_full((x.size(0), heads), fixed)
    return scale * torch.sigmoid(gate_logit(x, x0, W, b, anchor, block))


def anchored_message_reference(x: Tensor, h: Tensor, x0: Tensor,
                               W: Optional[Tensor], b: Optional[Tensor],
                               anchor: bool, alpha: float, heads: int,
                               eps: float, scale: float = 2.0,
                               block: bool = False,
                               fixed: Optional[float] = None,
                               context: OptTensor = None,
                               h_bias: OptTensor = None) -> Tensor:
    r"""The chain of the module docstring in plain autograd ops (the
    layer's generic path, written out): ``lerp``, the gate,
    :func:`~ddl_gnn.ops.head_components` and
    :func:`~ddl_gnn.ops.delta_update`; the gate reads ``context`` where
    given (the layer's dropped read), else ``x``; ``h_bias`` is added to
    ``h`` where given."""
    from ..ops import delta_update, head_components
    k = torch.lerp(h if h_bias is None else h + h_bias, x0, alpha)
    beta = _gates(x if context is None else context, x0, W, b, anchor,
                  heads, scale, block, fixed)
    if heads == 1:
        beta = beta.view(-1)
    v = head_components(k, k, heads, eps)
    return delta_update(x, k, beta, v, eps, heads)


def _head_scalars(x: Tensor, k: Tensor, heads: int,
                  eps: float) -> Tuple[Tensor, Tensor, Tensor]:
    """``(rho2, n, q)``, the per-head scalars ``[N, H]``, in torch ops."""
    kb, xb = _heads(k, heads), _heads(x, heads)
    n = (kb * kb).sum(-1)
    q = (kb * xb).sum(-1)
    return 1.0 / (n + eps * eps), n, q


def _forward_ops(x: Tensor, k: Tensor, beta: Tensor, heads: int,
                 eps: float) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(out, rho2, n, q)`` in torch ops (per-head scalars ``[N, H]``)."""
    rho2, n, q = _head_scalars(x, k, heads, eps)
    c = beta * rho2 * (n - q)
    out = torch.addcmul(_heads(x, heads), _heads(k, heads),
                        c.unsqueeze(-1)).view_as(x)
    return out, rho2, n, q


def _rows_backward_ops(g: Tensor, x: Tensor, k: Tensor, beta: Tensor,
                       rho2: Tensor, n: Tensor, q: Tensor, heads: int,
                       scale: float) -> Tuple[Tensor, Tensor, Tensor]:
    """``(gx, gk, dl)`` in torch ops: ``gx`` without the gate's term, ``dl``
    the gradient of the gate logits."""
    kb, xb, gb_ = _heads(k, heads), _heads(x, heads), _heads(g, heads)
    a = (kb * gb_).sum(-1)
    r = n - q
    c = beta * rho2 * r
    abr = a * beta * rho2
    dl = a * rho2 * r * beta * (1.0 - beta / scale)          # [N, H]
    gx = torch.addcmul(gb_, kb, (-abr).unsqueeze(-1)).view_as(x)
    gk = gb_ * c.unsqueeze(-1)
    gk.addcmul_(xb, (-abr).unsqueeze(-1))
    gk.addcmul_(kb, (2.0 * abr * (1.0 - rho2 * r)).unsqueeze(-1))
    return gx, gk.view_as(x), dl


def _gate_backward(dl: Tensor, x: Tensor, x0: Tensor, W: Tensor,
                   anchor: bool, block: bool, gx: Optional[Tensor],
                   gx0: Optional[Tensor], need_w: bool
                   ) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """Adds the gate's terms to ``gx`` and ``gx0`` (in place, where given)
    and returns ``(gW, gb)`` (``None`` unless ``need_w``)."""
    N, d, H = x.size(0), x.size(1), W.size(0)
    w = d // H
    if not block:
        if gx is not None:
            gx.addmm_(dl, W[:, :d])
        if gx0 is not None and anchor:
            gx0.addmm_(dl, W[:, d:])
        if not need_w:
            return None, None
        dlt = dl.t()
        gW = torch.cat([dlt.mm(x), dlt.mm(x0)], 1) if anchor else dlt.mm(x)
        return gW, dl.sum(0)
    if w == 1:    # one channel per head (see channel_logit)
        if gx is not None:
            gx.addcmul_(dl, W[:, 0])
        if gx0 is not None and anchor:
            gx0.addcmul_(dl, W[:, 1])
        if not need_w:
            return None, None
        cols = [(dl * x).sum(0)] + ([(dl * x0).sum(0)] if anchor else [])
        return torch.stack(cols, 1), dl.sum(0)
    dl3 = dl.unsqueeze(-1)
    if gx is not None:
        gx.add_((dl3 * W[:, :w]).view(N, d))
    if gx0 is not None and anchor:
        gx0.add_((dl3 * W[:, w:]).view(N, d))
    if not need_w:
        return None, None
    cols = [(dl3 * _heads(x, H)).sum(0)]
    if anchor:
        cols.append((dl3 * _heads(x0, H)).sum(0))
    return torch.cat(cols, 1), dl.sum(0)


def _gate_grads(dl: Tensor, x: Tensor, c: OptTensor, x0: Tensor, W: Tensor,
                anchor: bool, block: bool, gx: Optional[Tensor],
                gx0: Optional[Tensor], need_w: bool
                ) -> Tuple[Optional[Tensor], Optional[Tensor], OptTensor]:
    """:func:`_gate_backward` of a gate that read ``c`` where given (its
    term then goes to a new ``gc``, returned) or else ``x`` (its term
    added to ``gx``): ``(gW, gb, gc)``."""
    if c is None:
        return (*_gate_backward(dl, x, x0, W, anchor, block, gx, gx0,
                                need_w), None)
    gc = torch.zeros_like(c)
    return (*_gate_backward(dl, c, x0, W, anchor, block, gc, gx0, need_w),
            gc)


def _message_ops(x: Tensor, h: Tensor, x0: Tensor, W: Optional[Tensor],
                 b: Optional[Tensor], anchor: bool, alpha: float, heads: int,
                 eps: float, scale: float, block: bool,
                 fixed: Optional[float], c: OptTensor = None,
                 hb: OptTensor = None):
    """``(out, beta, k, rho2, n, q)``: the forward chain off the fused CPU
    kernels (one compiled region where :mod:`ddl_gnn.ops.compiled`
    compiles); the gate reads ``c`` where given, else ``x``; ``hb`` is
    ``h``'s bias where given."""
    k = torch.lerp(h if hb is None else h + hb, x0, alpha)
    beta = _gates(x if c is None else c, x0, W, b, anchor, heads, scale,
                  block, fixed)
    out, rho2, n, q = _forward_ops(x, k, beta, heads, eps)
    return out, beta, k, rho2, n, q


def _message_grads(g: Tensor, x: Tensor, h: Tensor, x0: Tensor,
                   k: Optional[Tensor], W: Optional[Tensor], beta: Tensor,
                   rho2: Optional[Tensor], n: Optional[Tensor],
                   q: Optional[Tensor], anchor: bool, heads: int,
                   alpha: float, eps: float, scale: float, block: bool,
                   c: OptTensor = None, hb: OptTensor = None):
    """``(gx, gh, gx0, gW, gb, gc)`` in torch ops, rebuilding ``k`` (from
    ``h`` plus its bias ``hb`` where given) and the per-head scalars when
    they were not saved (the kernels keep none with one head per channel
    or float32 heads of eight); ``gc`` is ``None`` unless the gate read a
    separate context ``c``."""
    if k is None:
        k = torch.lerp(h if hb is None else h + hb, x0, alpha)
    if rho2 is None:
        rho2, n, q = _head_scalars(x, k, heads, eps)
    gx, gk, dl = _rows_backward_ops(g, x, k, beta, rho2, n, q, heads, scale)
    gx0 = gk * alpha
    gW = gb = gc = None
    if W is not None:
        gW, gb, gc = _gate_grads(dl, x, c, x0, W, anchor, block, gx, gx0,
                                 True)
    return gx, gk * (1.0 - alpha), gx0, gW, gb, gc


class _AnchoredMessage(torch.autograd.Function):
    r"""``x'`` and ``beta`` from ``(x, h, x0, W, b, c, hb)`` (see the
    module docstring; ``c`` the gate's context where it is not ``x``, else
    ``None``; ``hb`` the bias of ``h`` or ``None``); ``beta`` is returned
    without gradient (the layer keeps it for the β audit)."""

    @staticmethod
    def forward(ctx, x: Tensor, h: Tensor, x0: Tensor, W: Optional[Tensor],
                b: Optional[Tensor], c: Optional[Tensor],
                hb: Optional[Tensor], anchor: bool,
                alpha: float, heads: int, eps: float, scale: float,
                block: bool, fixed: Optional[float]
                ) -> Tuple[Tensor, Tensor]:
        save_k = not recompute_in_backward(x.device)
        kernels = _fused(x, h, x0, W, b, c, hb)
        if kernels is not None:
            # the row passes compute the gate from [x | x0], or from
            # [c | x0] with a context
            in_rows = _gate_in_rows(kernels, x, W, anchor, block)
            if in_rows:
                beta, Wk, bk = None, W.contiguous(), b.contiguous()
            else:
                beta = _gates(x if c is None else c, x0, W, b, anchor,
                              heads, scale, block, fixed).contiguous()
                Wk = bk = None
            out, beta, k, rho2, n, q = kernels.message_forward(
                x.contiguous(), h.contiguous(), x0.contiguous(), beta, Wk,
                bk, alpha, eps, scale, save_k,
                c.contiguous() if in_rows and c is not None else None,
                None if hb is None else hb.contiguous())
        else:
            out, beta, k, rho2, n, q = region(_message_ops, x.device)(
                x, h, x0, W, b, anchor, alpha, heads, eps, scale, block,
                fixed, c, hb)
        ctx.anchor, ctx.alpha, ctx.heads = anchor, alpha, heads
        ctx.eps, ctx.scale, ctx.block, ctx.fixed = eps, scale, block, fixed
        ctx.save_for_backward(x, h, x0, W, b, c, hb, beta, rho2, n, q,
                              k if save_k else None)
        ctx.mark_non_differentiable(beta)
        return out, beta

    @staticmethod
    def backward(ctx, g: Tensor, _gbeta: Optional[Tensor]):
        x, h, x0, W, b, c, hb, beta, rho2, n, q, k = ctx.saved_tensors
        if torch.is_grad_enabled():
            # create_graph=True: differentiate the plain chain (exact to
            # any order; the closed form uses scalars saved without history)
            return vjp_with_graph(
                ctx.needs_input_grad, lambda *t: anchored_message_reference(
                    *t[:5], ctx.anchor, ctx.alpha, ctx.heads, ctx.eps,
                    ctx.scale, ctx.block, ctx.fixed, t[5], t[6]),
                (x, h, x0, W, b, c, hb), g, trailing=7)
        need = list(ctx.needs_input_grad[:7])
        alpha, scale = ctx.alpha, ctx.scale
        ghb = None
        kernels = _fused(g, x, h, x0, W, c, hb)
        if kernels is not None:
            x, x0 = x.contiguous(), x0.contiguous()
            in_rows = _gate_in_rows(kernels, x, W, ctx.anchor, ctx.block)
            (gx, gh, gx0, gW, gb, dl, gc,
             ghb) = kernels.message_backward(
                g.contiguous(), x, h.contiguous(), x0, k, beta, rho2, n, q,
                W.contiguous() if in_rows else None, alpha, ctx.eps, scale,
                need if in_rows else need[:3] + [False] * 3 + need[6:],
                c.contiguous() if in_rows and c is not None else None,
                None if hb is None else hb.contiguous(), None)
            if W is not None and not in_rows:
                gW, gb, gc = _gate_grads(dl, x, c, x0, W, ctx.anchor,
                                         ctx.block, gx, gx0,
                                         need[3] or need[4])
        else:
            gx, gh, gx0, gW, gb, gc = region(_message_grads, x.device)(
                g, x, h, x0, k, W, beta, rho2, n, q, ctx.anchor, ctx.heads,
                alpha, ctx.eps, scale, ctx.block, c, hb)
            # hb's gradient: the column sum of h's
            ghb = gh.sum(0) if need[6] else None
        out = [t if nd else None
               for t, nd in zip((gx, gh, gx0, gW, gb, gc, ghb), need)]
        return (*out, None, None, None, None, None, None, None)


def _graph_backward(x: Tensor, h: Tensor, x0: Tensor, W: Tensor, b: Tensor,
                    c: OptTensor, hb: OptTensor, g: Tensor, alpha: float,
                    eps: float, scale: float, needs: list) -> list:
    r"""The ``create_graph=True`` backward of the C++ function
    (``ops/csrc/message_function.cpp`` calls it): the plain chain of the
    default layer's update (a dense anchored gate) differentiated with a
    graph; the seven inputs' gradients, ``None`` where not needed."""
    return list(vjp_with_graph(
        needs, lambda *t: anchored_message_reference(
            *t[:5], True, alpha, W.size(0), eps, scale, context=t[5],
            h_bias=t[6]),
        (x, h, x0, W, b, c, hb), g))


def _cpp_function(x: Tensor, h: Tensor, x0: Tensor, W: Optional[Tensor],
                  b: Optional[Tensor], c: OptTensor, hb: OptTensor,
                  anchor: bool, block: bool):
    r"""The kernels' ``anchored_message`` (the C++ autograd function) where
    it computes this update (:data:`CPP_FUNCTION`, the fused kernels, the
    gate in the row passes: :func:`_gate_in_rows`), else :obj:`None`."""
    if not CPP_FUNCTION:
        return None
    kernels = _fused(x, h, x0, W, b, c, hb)
    if kernels is None or not _gate_in_rows(kernels, x, W, anchor, block):
        return None
    return cpu_kernels.cpp_function(kernels, 'anchored_message',
                                    _graph_backward)


def anchored_message_update(x: Tensor, h: Tensor, x0: Tensor,
                            W: Optional[Tensor], b: Optional[Tensor],
                            anchor: bool, alpha: float, heads: int = 1,
                            eps: float = 1e-5, scale: float = 2.0,
                            block: bool = False,
                            fixed: Optional[float] = None,
                            context: OptTensor = None,
                            h_bias: OptTensor = None, x0_link: bool = False
                            ) -> Tuple[Tensor, ...]:
    r"""The anchored-message update of the module docstring, gate
    included, as one fused function: returns ``(x', beta)``, ``beta``
    detached, and with ``x0_link`` also ``x0``'s link.

    Args:
        x (torch.Tensor): Vector state :obj:`[N, d]` (also the gate's
            context :math:`c`).
        h (torch.Tensor): Conv output :obj:`[N, d]`.
        x0 (torch.Tensor): Input state :obj:`[N, d]`.
        W (torch.Tensor): Gate weight :obj:`[H, 2d]` (``anchor``: the
            :math:`c` half, then the :math:`c_0` half) or :obj:`[H, d]`;
            with ``block``, :obj:`[H, 2d/H]` or :obj:`[H, d/H]` (head
            :math:`h`'s block of :math:`c`, then of :math:`c_0`);
            :obj:`None` for a fixed gate (``fixed``).
        b (torch.Tensor): Gate bias :obj:`[H]` (:obj:`None` with ``W``).
        anchor (bool): Whether the gate reads :math:`[c \Vert x_0]`.
        alpha (float): Input weight :math:`\alpha` of the direction.
        heads (int, optional): Number of heads :math:`H`. (default: :obj:`1`)
        eps (float, optional): Normalisation guard. (default: :obj:`1e-5`)
        scale (float, optional): Gate range :math:`s` (2 for
            ``'learned'``, 1 for ``'learned01'``). (default: :obj:`2.`)
        block (bool, optional): Each head's gate reads only its own block
            (:class:`~ddl_gnn.nn.gates.BetaGate`'s ``block``).
            (default: :obj:`False`)
        fixed (float, optional): The gate of every node and head where
            ``W`` is :obj:`None` (``beta_mode='fixed'``).
            (default: :obj:`None`)
        context (torch.Tensor, optional): The gate's context :math:`c`
            :obj:`[N, d]` where it is not the state: the layer's read of
            :math:`x` with dropout in training, which the conv that gave
            ``h`` read too; :obj:`None` reads ``x``. (default: :obj:`None`)
        h_bias (torch.Tensor, optional): A bias :obj:`[d]` added to ``h``
            in the fused pass (the conv's own, so that the conv need not
            add it in a pass of its own). (default: :obj:`None`)
        x0_link (bool, optional): Also return ``x0``'s *link*: ``x0``'s
            values, for the next layer to read as its ``x0``. Where the
            update runs as the C++ function (:func:`_cpp_function`) the
            link is a view of ``x0`` whose gradient, the later layers'
            sum, the backward row pass adds to this layer's gradient of
            ``x0``; autograd would otherwise add each layer's into
            ``x0``'s gradient in a pass of its own. The sums are the same
            bit for bit. Elsewhere the link is ``x0`` itself.
            (default: :obj:`False`)

    Shapes:
        - **output:** :obj:`([N, d], [N] or [N, H])`, and :obj:`[N, d]`
          with ``x0_link``
    """
    if (W is None) != (fixed is not None) or (W is None) != (b is None):
        raise ValueError("anchored_message_update: pass the gate weight W "
                         "and bias b, or neither and a fixed gate 'fixed'")
    if W is not None and (W.dim() != 2 or W.size(0) != heads):
        raise ValueError(f"anchored_message_update: the gate weight W must "
                         f"have one row per head ({heads}), got "
                         f"{tuple(W.shape)}")
    if context is not None and context.shape != x.shape:
        raise ValueError(f"anchored_message_update: 'context' must have the "
                         f"state's shape {tuple(x.shape)}, got "
                         f"{tuple(context.shape)}")
    if h_bias is not None and (h_bias.shape != (x.size(-1),)
                               or h_bias.dtype != x.dtype):
        raise ValueError(f"anchored_message_update: 'h_bias' must have shape "
                         f"[{x.size(-1)}] and the state's dtype {x.dtype}, "
                         f"got {tuple(h_bias.shape)} {h_bias.dtype}")
    function = _cpp_function(x, h, x0, W, b, context, h_bias, anchor, block)
    if function is not None:
        return tuple(function(x, h, x0, W, b, context, h_bias, float(alpha),
                              float(eps), float(scale),
                              not recompute_in_backward(x.device),
                              bool(x0_link)))
    out, beta = _AnchoredMessage.apply(
        x, h, x0, W, b, context, h_bias, bool(anchor), float(alpha),
        int(heads), float(eps), float(scale), bool(block),
        None if fixed is None else float(fixed))
    beta = beta.view(-1) if heads == 1 else beta
    return (out, beta, x0) if x0_link else (out, beta)


def message_path_ok(layer, x: Tensor, read: Optional[Tensor],
                    next_weight: Optional[Tensor]) -> bool:
    r"""Whether :func:`message_forward` computes ``layer``'s function: the
    anchored direction with the message value, the erase update, no norm
    (so :math:`c_0 = x_0`), a fixed gate or a learned one reading
    ``'anchor'`` or ``'context'``, a float32/float64 vector state, no
    fused read, and in training no dropout on the written value alone
    (``dropout_value``: the direction and the gate read the clean state,
    the value a dropped one). Plain dropout is taken: the conv and the
    gate read the dropped state (``context`` of
    :func:`anchored_message_update`)."""
    return (layer.k_source == 'anchor' and layer.v_source == 'message'
            and layer.beta_source in ('anchor', 'context')
            and layer.norm is None and layer.erase and layer.d_v == 1
            and not layer.scale_message and layer.msg_act is None
            and not layer.channel_axes and x.dim() == 2
            and x.dtype in (torch.float32, torch.float64)
            and read is None and next_weight is None
            and not (layer.dropout_value and layer.training
                     and layer.dropout > 0))


def message_forward(layer, x: Tensor, edge_index, edge_weight: OptTensor,
                    edge_attr: OptTensor, x0: Tensor, x0_link: bool = False):
    r"""``layer``'s forward through :func:`anchored_message_update`: the
    conv as usual (its bias added in the fused pass,
    :meth:`~ddl_gnn.nn.DeltaConv.unbiased_message`), the gate (its
    weight's :math:`c` and :math:`c_0` halves applied without
    concatenating the inputs) and the update fused. With dropout in
    training the conv and the gate read the dropped state :math:`c`, the
    update the state itself, as on the generic path. With ``map_anchor``
    the mapped, anchored message is the conv's output and the update
    mixes in no more of :math:`x_0` (:math:`\alpha = 0` there). With
    ``x0_link`` it returns ``(x', link)``, ``link`` ``x0``'s link
    (:func:`anchored_message_update`)."""
    c = None
    if layer.training and layer.dropout > 0:
        c = dropout(x, p=layer.dropout, training=True)
    # the conv's bias goes into the fused pass
    h, h_bias = layer.unbiased_message(x if c is None else c, x0,
                                       edge_index, edge_weight, edge_attr)
    alpha = 0.0 if layer.map_anchor else layer.alpha
    gate = layer.gate
    if gate.weight is None:    # beta_mode='fixed'
        W = b = None
        fixed = gate.beta_init
    else:
        W, b, fixed = gate.weight, gate.bias, None
        if W.dim() == 1:        # one head's vector weight
            W = W.view(1, -1)
        if W.dtype != x.dtype:      # (.to costs a dispatch even when equal)
            W, b = W.to(x.dtype), b.to(x.dtype)
    if h_bias is not None and h_bias.dtype != x.dtype:
        h_bias = h_bias.to(x.dtype)
    out, beta, *link = anchored_message_update(
        x, h, x0, W, b, layer.beta_source == 'anchor', alpha,
        layer.heads, layer.eps, gate.scale, gate.block, fixed,
        context=None if W is None else c,   # a fixed gate reads nothing
        h_bias=h_bias, x0_link=x0_link)
    # a plain attribute, set past nn.Module.__setattr__'s checks (a few
    # microseconds a layer and step)
    layer.__dict__['last_beta'] = beta
    return (out, link[0]) if x0_link else out
