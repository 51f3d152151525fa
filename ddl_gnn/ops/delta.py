r"""The per-node delta shortcut :math:`X \leftarrow X + \beta k (v^\top - k^\top X)`.

Axes: ``N`` nodes, ``d`` state width, ``d_v`` value channels (``d_v = 1``: a
plain feature vector per node). See ``ops/README.md`` for the derivation of
the spectrum and of the closed-form backward used here.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import Tensor

from .._validate import all_finite, check_values_here

from . import cpu_kernels
from ._vjp import vjp_with_graph
from .compiled import compile_enabled, region
from .compress import compress_state


def _as_matrix_state(x: Tensor, k: Tensor, beta: Tensor, v: Tensor
                     ) -> Tuple[Tensor, Tensor, Tensor, bool]:
    """Checks shapes and returns ``(X [N,d,d_v], beta [N], V [N,d_v], vec)``."""
    if not isinstance(x, Tensor) or x.dim() not in (2, 3):
        raise ValueError(f"delta_update: 'x' must be [N, d] or [N, d, d_v], "
                         f"got shape {tuple(getattr(x, 'shape', ()))}")
    N, d = x.size(0), x.size(1)
    if k.dim() != 2 or k.size(0) != N or k.size(1) != d:
        raise ValueError(f"delta_update: 'k' must have shape [N, d] = "
                         f"[{N}, {d}] to match 'x', got {tuple(k.shape)}")
    if beta.numel() != N or not (beta.dim() == 1 or
                                 (beta.dim() == 2 and beta.size(1) == 1)):
        raise ValueError(f"delta_update: 'beta' must have shape [N] or "
                         f"[N, 1] with N = {N}, got {tuple(beta.shape)}")
    vec = x.dim() == 2
    d_v = 1 if vec else x.size(2)
    if vec:
        ok = v.numel() == N and (v.dim() == 1 or
                                 (v.dim() == 2 and v.size(1) == 1))
    else:
        ok = v.dim() == 2 and v.size(0) == N and v.size(1) == d_v
    if not ok:
        want = f"[{N}]" if vec else f"[N, d_v] = [{N}, {d_v}]"
        raise ValueError(f"delta_update: 'v' must have shape {want} to match "
                         f"'x' of shape {tuple(x.shape)}, got {tuple(v.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"delta_update: 'x' must be a real floating-point "
                        f"tensor, got dtype {x.dtype}")
    for name, t in (('k', k), ('beta', beta), ('v', v)):
        if t.dtype != x.dtype:
            raise TypeError(f"delta_update: '{name}' has dtype {t.dtype} but "
                            f"'x' has dtype {x.dtype}")
    X = x.unsqueeze(-1) if vec else x
    return X, beta.reshape(N), v.reshape(N, d_v), vec


def _split_heads(x: Tensor, k: Tensor, beta: Tensor, v: Tensor,
                 heads: int, name: str) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""Views ``heads`` blocks of the state as rows of their own.

    A state :obj:`[N, d(, d_v)]` with per-head gates :obj:`[N, H]` and values
    :obj:`[N, H(, d_v)]` becomes :obj:`[N H, d/H(, d_v)]` with gates
    :obj:`[N H]` and values :obj:`[N H(, d_v)]`: the block-diagonal operator
    :math:`\mathrm{diag}_h(I - \beta_h \hat k_h \hat k_h^\top)` is the
    one-head operator on each block, so every path (torch ops, fused CPU
    kernels) takes the head axis without a kernel of its own."""
    if not isinstance(heads, int) or heads < 1:
        raise ValueError(f"{name}: 'heads' must be a positive int, got "
                         f"{heads!r}")
    if not isinstance(x, Tensor) or x.dim() not in (2, 3):
        raise ValueError(f"{name}: 'x' must be [N, d] or [N, d, d_v], "
                         f"got shape {tuple(getattr(x, 'shape', ()))}")
    N, d = x.size(0), x.size(1)
    if d % heads:
        raise ValueError(f"{name}: the state width d = {d} must be "
                         f"divisible by heads = {heads}")
    if beta.numel() != N * heads:
        raise ValueError(f"{name}: 'beta' must have shape [N, heads] = "
                         f"[{N}, {heads}], got {tuple(beta.shape)}")
    d_v = 1 if x.dim() == 2 else x.size(2)
    if v.numel() != N * heads * d_v:
        want = (f"[N, heads] = [{N}, {heads}]" if x.dim() == 2 else
                f"[N, heads, d_v] = [{N}, {heads}, {d_v}]")
        raise ValueError(f"{name}: 'v' must have shape {want}, got "
                         f"{tuple(v.shape)}")
    if k.shape != (N, d):
        raise ValueError(f"{name}: 'k' must have shape [N, d] = [{N}, {d}] "
                         f"to match 'x', got {tuple(k.shape)}")
    rows, width = N * heads, d // heads
    xs = x.reshape(rows, width) if x.dim() == 2 else x.reshape(
        rows, width, d_v)
    vs = v.reshape(rows) if x.dim() == 2 else v.reshape(rows, d_v)
    return xs, k.reshape(rows, width), beta.reshape(rows), vs


def _dot(k: Tensor, X: Tensor) -> Tensor:
    """Per-node :math:`k^\top X`: ``[N]`` for a vector state ``[N, d]``,
    ``[N, d_v]`` for a matrix state ``[N, d, d_v]`` (no ``[N, d]`` temp)."""
    if X.dim() == 2:
        return torch.einsum('nd,nd->n', k, X)
    return torch.einsum('nd,ndv->nv', k, X)


def _mix(X: Tensor, a: Tensor) -> Tensor:
    """:math:`X a` per node: ``X [N, d] * a [N]`` or
    ``X [N, d, d_v] @ a [N, d_v]``, giving ``[N, d]``."""
    if X.dim() == 2:
        return X * a.unsqueeze(-1)
    return torch.einsum('ndv,nv->nd', X, a)


def _as3(X: Tensor) -> Tensor:
    """Contiguous ``[N, d, d_v]`` view of a vector or matrix state."""
    return (X.unsqueeze(-1) if X.dim() == 2 else X).contiguous()


def _as2(t: Tensor, X3: Tensor) -> Tensor:
    """Contiguous ``[N, d_v]`` view of a per-node value (``[N]`` when
    ``d_v = 1``)."""
    return t.reshape(X3.size(0), X3.size(2)).contiguous()


def _plain(X: Tensor, k: Tensor, beta: Tensor, V: Tensor,
           eps: float) -> Tensor:
    """The update in plain autograd ops on the internal shapes
    (``X [N, d]`` with ``beta, V [N]``, or ``X [N, d, d_v]`` with
    ``V [N, d_v]``)."""
    k_hat = k * torch.rsqrt((k * k).sum(-1, keepdim=True) + eps * eps)
    if X.dim() == 2:
        return X + k_hat * (beta * (V - (k_hat * X).sum(-1))).unsqueeze(-1)
    s = torch.einsum('nd,ndv->nv', k_hat, X)
    return X + k_hat.unsqueeze(-1) * ((V - s) * beta.unsqueeze(-1)
                                      ).unsqueeze(1)


def _plain_read(X: Tensor, k: Tensor, beta: Tensor, V: Tensor, w: Tensor,
                eps: float) -> Tuple[Tensor, Tensor]:
    """:func:`_plain` and its compressed read, in plain autograd ops."""
    out = _plain(X, k, beta, V, eps)
    return out, (out * w).sum(-1)


def _update_ops(X: Tensor, k: Tensor, beta: Tensor, V: Tensor,
                eps: float) -> Tuple[Tensor, Tensor, Tensor]:
    """``(out, rho, s)`` of :class:`_DeltaUpdate` in torch ops (the
    compiled region off the CPU kernels)."""
    rho = torch.rsqrt((k * k).sum(-1) + eps * eps)                  # [N]
    if X.dim() == 3:
        rho_, beta_ = rho.unsqueeze(-1), beta.unsqueeze(-1)
    else:
        rho_, beta_ = rho, beta
    s = _dot(k, X) * rho_                                       # k̂ᵀX
    coef = (V - s) * (beta_ * rho_)                             # β ρ (v − s)
    if X.dim() == 2:
        out = torch.addcmul(X, k, coef.unsqueeze(-1))
    else:
        out = torch.addcmul(X, k.unsqueeze(-1), coef.unsqueeze(1))
    return out, rho, s


def _update_grads(g: Tensor, X: Tensor, k: Tensor, beta: Tensor, V: Tensor,
                  rho: Tensor, s: Tensor, need_x: bool, need_k: bool,
                  need_beta: bool, need_v: bool):
    """``(gX, gk, gbeta, gV)`` of :class:`_DeltaUpdate` in torch ops
    (:obj:`None` where not needed)."""
    vec = X.dim() == 2
    rho_ = rho if vec else rho.unsqueeze(-1)
    beta_ = beta if vec else beta.unsqueeze(-1)
    r = V - s
    a = _dot(k, g) * rho_                                       # k̂ᵀg
    gX = gk = gbeta = gV = None
    if need_x:                                                  # g − β k̂ aᵀ
        c = -beta_ * rho_ * a
        gX = (torch.addcmul(g, k, c.unsqueeze(-1)) if vec else
              torch.addcmul(g, k.unsqueeze(-1), c.unsqueeze(1)))
    if need_k:
        # dL/dk̂ = β (g r − X a); k̂ᵀ dL/dk̂ = β Σ a (r − s); then
        # dL/dk = ρ (dL/dk̂ − k̂ k̂ᵀ dL/dk̂).
        br = beta_ * rho_
        proj = beta * (a * (r - s) if vec else (a * (r - s)).sum(-1))
        if vec:
            gk = g * (r * br).unsqueeze(-1)
            gk.addcmul_(X, (-a * br).unsqueeze(-1))
        else:
            gk = _mix(g, r * br).sub_(_mix(X, a * br))
        gk.addcmul_(k, (-rho * rho * proj).unsqueeze(-1))
    if need_beta:
        gbeta = a * r if vec else (a * r).sum(-1)
    if need_v:
        gV = a * beta_
    return gX, gk, gbeta, gV


def _update_read_ops(X: Tensor, k: Tensor, beta: Tensor, V: Tensor,
                     w: Tensor, eps: float
                     ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(out, read, rho, s)`` of :class:`_DeltaUpdateRead` in torch ops."""
    out, rho, s = _update_ops(X, k, beta, V, eps)
    return out, (out * w).sum(-1), rho, s


def _update_read_grads(g: Tensor, gc: Tensor, X: Tensor, k: Tensor,
                       beta: Tensor, V: Tensor, w: Tensor, rho: Tensor,
                       s: Tensor, need_x: bool, need_k: bool,
                       need_beta: bool, need_v: bool, need_w: bool):
    """``(gX, gk, gbeta, gV, gw)`` of :class:`_DeltaUpdateRead` in torch
    ops: the read's gradient joins the state's (``g + gc ⊗ w``); ``gw``
    rebuilds ``X'`` from the saved per-node scalars instead of keeping it."""
    gw = None
    if need_w:
        coef = (V - s) * (beta * rho).unsqueeze(-1)
        out = torch.addcmul(X, k.unsqueeze(-1), coef.unsqueeze(1))
        gw = torch.einsum('nd,ndv->dv', gc, out)
    g = g + gc.unsqueeze(-1) * w
    return (*_update_grads(g, X, k, beta, V, rho, s, need_x, need_k,
                           need_beta, need_v), gw)


class _DeltaUpdate(torch.autograd.Function):
    r"""Fused delta update with the closed-form backward.

    Works on a vector state ``X [N, d]`` (``beta, V: [N]``) or a matrix state
    ``X [N, d, d_v]`` (``V: [N, d_v]``). Saves the inputs ``X``, ``k``,
    ``beta``, ``V`` (``X`` and ``k`` are alive anyway: the previous layer's
    state and the conv output) plus the per-node scalars :math:`\rho` and
    :math:`s = \hat k^\top X`, and never materialises :math:`\hat k`: with
    :math:`\rho = (\lVert k\rVert^2 + \epsilon^2)^{-1/2}`, every
    :math:`\hat k`-term is folded into a per-node scalar times ``k``.
    """

    @staticmethod
    def forward(ctx, X: Tensor, k: Tensor, beta: Tensor, V: Tensor,
                eps: float) -> Tensor:
        if cpu_kernels.usable(X, k, beta, V):
            # One pass over the state (csrc/delta_cpu.cpp); the kernels
            # see a vector state as [N, d, 1].
            X3 = _as3(X)
            out, _, rho, s = cpu_kernels.kernels().delta_forward(
                X3, k.contiguous(), beta.contiguous(), _as2(V, X3), None, eps)
            if X.dim() == 2:
                out, s = out.view_as(X), s.view(-1)
            ctx.eps = eps
            ctx.save_for_backward(X, k, beta, V, rho, s)
            return out
        out, rho, s = region(_update_ops, X.device)(X, k, beta, V, eps)
        # ρ and s are per-node scalars: keeping them costs N (N d_v)
        # floats and saves two passes over k and X in backward.
        ctx.eps = eps
        ctx.save_for_backward(X, k, beta, V, rho, s)
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        X, k, beta, V, rho, s = ctx.saved_tensors
        vec = X.dim() == 2
        if torch.is_grad_enabled():
            # create_graph=True: the closed form below uses ρ and s saved
            # without history, so its own derivative would be wrong;
            # differentiate the plain expression instead (exact to any
            # order, costs the eager path's memory).
            return vjp_with_graph(ctx.needs_input_grad,
                                  lambda *t: _plain(*t, ctx.eps),
                                  (X, k, beta, V), g, trailing=1)
        if cpu_kernels.usable(X, g, k):      # one pass (csrc/delta_cpu.cpp)
            X3 = _as3(X)
            gX, gk, gbeta, gV, _ = cpu_kernels.kernels().delta_backward(
                _as3(g), None, X3, k.contiguous(), beta.contiguous(),
                _as2(V, X3), None, rho, _as2(s, X3),
                list(ctx.needs_input_grad[:4]))
            if gX is not None:
                gX = gX.view_as(X)
            if gV is not None:
                gV = gV.view_as(V)
            return gX, gk, gbeta, gV, None
        gX, gk, gbeta, gV = region(_update_grads, X.device)(
            g, X, k, beta, V, rho, s, *ctx.needs_input_grad[:4])
        return gX, gk, gbeta, gV, None


def _check_values(x: Tensor, k: Tensor, beta: Tensor, v: Tensor,
                  eps: float) -> None:
    """Value checks of a direct call (skipped inside a model's forward,
    which checked its input once, see :func:`ddl_gnn._validate.
    values_checked`): finite inputs, ``beta`` in [0, 2], a usable
    ``eps``."""
    if not (isinstance(eps, (int, float)) and math.isfinite(eps)
            and eps >= 0):
        raise ValueError(f"delta_update: 'eps' must be a finite float >= 0, "
                         f"got {eps!r}")
    if check_values_here():
        with torch.no_grad():  # checks record nothing for autograd
            _check_finite_range(x, k, beta, v, eps)


def _check_finite_range(x: Tensor, k: Tensor, beta: Tensor, v: Tensor,
                        eps: float) -> None:
    for name, t in (('x', x), ('k', k), ('beta', beta), ('v', v)):
        if not all_finite(t):
            raise ValueError(f"delta_update: '{name}' contains NaN or Inf "
                             f"values")
    if beta.numel() and (bool(beta.min() < 0) or bool(beta.max() > 2)):
        raise ValueError(f"delta_update: 'beta' must lie in [0, 2] (0 keeps, "
                         f"1 overwrites, 2 reflects), got values in "
                         f"[{float(beta.min()):g}, {float(beta.max()):g}]")
    if eps == 0 and k.numel() and bool((k.abs().sum(-1) == 0).any()):
        raise ValueError("delta_update: 'k' has an all-zero row and eps=0, "
                         "so its direction is 0/0; use eps > 0")


def delta_update(x: Tensor, k: Tensor, beta: Tensor, v: Tensor,
                 eps: float = 1e-5, heads: int = 1) -> Tensor:
    r"""Applies the delta shortcut to every node:

    .. math::
        X_i' = X_i + \beta_i \hat k_i (v_i^\top - \hat k_i^\top X_i)
             = (I - \beta_i \hat k_i \hat k_i^\top) X_i + \beta_i \hat k_i v_i^\top,
        \qquad \hat k_i = k_i / \sqrt{\lVert k_i \rVert^2 + \epsilon^2}.

    :math:`\beta = 0` keeps the state, :math:`\beta = 1` overwrites its
    :math:`\hat k`-component with :math:`v` (:math:`\hat k^\top X' = v^\top`),
    :math:`\beta = 2` (with :math:`v = 0`) reflects it. A direct call
    checks that the inputs are finite and ``beta`` lies in :math:`[0, 2]`;
    inside a model's forward these checks are skipped (the model checked
    its input once, and the gates in :mod:`ddl_gnn.nn.gates` guarantee the
    range), so they cost no pass per layer.

    Args:
        x (torch.Tensor): Node states, :obj:`[N, d]` or :obj:`[N, d, d_v]`.
        k (torch.Tensor): Unnormalised directions, :obj:`[N, d]`.
        beta (torch.Tensor): Gates, :obj:`[N]` or :obj:`[N, 1]`.
        v (torch.Tensor): Values, :obj:`[N]` (vector state) or
            :obj:`[N, d_v]`.
        eps (float, optional): Normalisation guard :math:`\epsilon`.
            (default: :obj:`1e-5`)
        heads (int, optional): Number :math:`H` of state blocks of width
            :math:`d/H`, each with its own direction (the matching slice
            of ``k``), gate and value: the block-diagonal operator
            :math:`\mathrm{diag}_h(I - \beta_h \hat k_h \hat k_h^\top)`
            and :math:`H` written scalars (per value column) per node.
            ``beta`` is then :obj:`[N, H]` and ``v`` :obj:`[N, H]` or
            :obj:`[N, H, d_v]`. (default: :obj:`1`)

    Shapes:
        - **output:** same as ``x``.
    """
    if heads != 1:
        xs, ks, bs, vs = _split_heads(x, k, beta, v, heads, 'delta_update')
        return delta_update(xs, ks, bs, vs, eps).view_as(x)
    X, b, V, vec = _as_matrix_state(x, k, beta, v)
    _check_values(x, k, beta, v, eps)
    if vec:  # vector state: no [N, d, 1] views, per-node scalars only
        return _DeltaUpdate.apply(x, k, b, V.reshape(-1), float(eps))
    return _DeltaUpdate.apply(X, k, b, V, float(eps))


class _DeltaUpdateRead(torch.autograd.Function):
    r"""``(X', compress(X', w))`` from one pass of the CPU kernel; backward
    in one pass too (the read's gradient joins ``X'``'s inside the kernel,
    see ``csrc/delta_cpu.cpp``). Off the CPU kernels, the same in one
    compiled region each way (:mod:`ddl_gnn.ops.compiled`). Matrix states
    only."""

    @staticmethod
    def forward(ctx, X: Tensor, k: Tensor, beta: Tensor, V: Tensor,
                w: Tensor, eps: float) -> Tuple[Tensor, Tensor]:
        if cpu_kernels.usable(X, k, beta, V, w):
            out, read, rho, s = cpu_kernels.kernels().delta_forward(
                X.contiguous(), k.contiguous(), beta.contiguous(),
                V.contiguous(), w.contiguous(), eps)
        else:
            out, read, rho, s = region(_update_read_ops, X.device)(
                X, k, beta, V, w, eps)
        ctx.eps = eps
        ctx.save_for_backward(X, k, beta, V, w, rho, s)
        return out, read

    @staticmethod
    def backward(ctx, g: Tensor, gc: Tensor):
        X, k, beta, V, w, rho, s = ctx.saved_tensors
        need = ctx.needs_input_grad[:5]
        if torch.is_grad_enabled():   # create_graph: differentiable ops
            return vjp_with_graph(ctx.needs_input_grad,
                                  lambda *t: _plain_read(*t, ctx.eps),
                                  (X, k, beta, V, w), (g, gc), trailing=1)
        if cpu_kernels.usable(X, g, gc, k):
            grads = cpu_kernels.kernels().delta_backward(
                g.contiguous(), gc.contiguous(), X.contiguous(),
                k.contiguous(), beta.contiguous(), V.contiguous(),
                w.contiguous(), rho, s, list(need))
        else:
            grads = region(_update_read_grads, X.device)(
                g, gc, X, k, beta, V, w, rho, s, *need)
        return (*grads, None)


def delta_update_read(x: Tensor, k: Tensor, beta: Tensor, v: Tensor,
                      weight: Tensor, eps: float = 1e-5
                      ) -> Tuple[Tensor, Tensor]:
    r"""The delta update of a matrix state together with its compressed
    read :math:`r_{i,f} = \sum_j w_{f,j} X'_{i,f,j}` (the next layer's
    :func:`~ddl_gnn.nn.compress.compress_state`):

    .. math::
        (X', r) = \bigl(\mathrm{delta\_update}(X, k, \beta, v),\;
        \mathrm{compress\_state}(X', w)\bigr).

    On CPU with the fused kernels (:mod:`ddl_gnn.ops.cpu_kernels`) both come
    from one pass over the state, and so do all gradients; where
    :mod:`ddl_gnn.ops.compiled` compiles (CUDA by default), from one
    compiled region each way; elsewhere it is exactly that composition.

    Args:
        x (torch.Tensor): Node states :obj:`[N, d, d_v]`.
        k, beta, v: As in :func:`delta_update`.
        weight (torch.Tensor): Compressor weight :obj:`[d, d_v]`.
        eps (float, optional): Normalisation guard. (default: :obj:`1e-5`)

    Shapes:
        - **output:** :obj:`([N, d, d_v], [N, d])`.
    """
    X, b, V, vec = _as_matrix_state(x, k, beta, v)
    _check_values(x, k, beta, v, eps)
    if vec:
        raise ValueError(f"delta_update_read: 'x' must be a matrix state "
                         f"[N, d, d_v], got shape {tuple(x.shape)}")
    if (weight.dim() != 2 or weight.size(0) != X.size(1)
            or weight.size(1) != X.size(2)):
        raise ValueError(f"delta_update_read: 'weight' must have shape "
                         f"[d, d_v] = [{X.size(1)}, {X.size(2)}], got "
                         f"{tuple(weight.shape)}")
    if cpu_kernels.usable(X, k, b, V, weight) or compile_enabled(X.device):
        return _DeltaUpdateRead.apply(X, k, b, V, weight, float(eps))
    out = delta_update(x, k, beta, v, eps)
    return out, compress_state(out, weight)


def head_components(k: Tensor, u: Tensor, heads: int = 1,
                    eps: float = 1e-5) -> Tensor:
    r"""Per-head components :math:`\hat k_h^\top u_h` of ``u`` along the
    normalised directions of ``k`` (block :math:`h` of width :math:`d/H`),
    the value that moves the state toward ``u`` along :math:`\hat k`:
    ``delta_update(x, k, beta, head_components(k, u, H), heads=H)`` is
    :math:`x + \sum_h \beta_h \hat k_h \hat k_h^\top (u - x)`.

    Shapes:
        - **input:** ``k``, ``u`` :obj:`[N, d]`
        - **output:** :obj:`[N]` (one head) or :obj:`[N, H]`
    """
    N, d = k.shape
    if u.shape != k.shape:
        raise ValueError(f"head_components: 'u' must have the shape of 'k' "
                         f"{tuple(k.shape)}, got {tuple(u.shape)}")
    if not isinstance(heads, int) or heads < 1 or d % heads:
        raise ValueError(f"head_components: 'heads' must be a positive int "
                         f"dividing d = {d}, got {heads!r}")
    kb, ub = k.reshape(N, heads, d // heads), u.reshape(N, heads, d // heads)
    out = (kb * ub).sum(-1) * torch.rsqrt((kb * kb).sum(-1) + eps * eps)
    return out.reshape(N) if heads == 1 else out


def delta_update_eager(x: Tensor, k: Tensor, beta: Tensor, v: Tensor,
                       eps: float = 1e-5) -> Tensor:
    r"""Same as :func:`delta_update` in plain autograd ops (no custom
    backward). Kept as the baseline the fused path is benchmarked against."""
    X, b, V, vec = _as_matrix_state(x, k, beta, v)
    _check_values(x, k, beta, v, eps)
    k_hat = k * torch.rsqrt((k * k).sum(-1, keepdim=True) + eps * eps)
    s = torch.einsum('nd,ndv->nv', k_hat, X)
    out = X + k_hat.unsqueeze(-1) * ((V - s) * b.unsqueeze(-1)).unsqueeze(1)
    return out.squeeze(-1) if vec else out


def delta_write(x: Tensor, k: Tensor, beta: Tensor, v: Tensor,
                eps: float = 1e-5, heads: int = 1) -> Tensor:
    r"""The write-only ablation :math:`X' = X + \beta \hat k v^\top` (no
    erase term), with the same shapes, heads and normalisation as
    :func:`delta_update`."""
    if heads != 1:
        xs, ks, bs, vs = _split_heads(x, k, beta, v, heads, 'delta_write')
        return delta_write(xs, ks, bs, vs, eps).view_as(x)
    X, b, V, vec = _as_matrix_state(x, k, beta, v)
    _check_values(x, k, beta, v, eps)
    k_hat = k * torch.rsqrt((k * k).sum(-1, keepdim=True) + eps * eps)
    out = X + k_hat.unsqueeze(-1) * (V * b.unsqueeze(-1)).unsqueeze(1)
    return out.squeeze(-1) if vec else out
