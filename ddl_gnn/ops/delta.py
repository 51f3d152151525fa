r"""The per-node delta shortcut :math:`X \leftarrow X + \beta k (v^\top - k^\top X)`.

Axes: ``N`` nodes, ``d`` state width, ``d_v`` value channels (``d_v = 1``: a
plain feature vector per node). See ``ops/README.md`` for the derivation of
the spectrum and of the closed-form backward used here.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor


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
    for name, t in (('k', k), ('beta', beta), ('v', v)):
        if t.dtype != x.dtype:
            raise TypeError(f"delta_update: '{name}' has dtype {t.dtype} but "
                            f"'x' has dtype {x.dtype}")
    X = x.unsqueeze(-1) if vec else x
    return X, beta.reshape(N), v.reshape(N, d_v), vec


class _DeltaUpdate(torch.autograd.Function):
    r"""Fused delta update with the closed-form backward.

    Saves only the inputs ``x``, ``k``, ``beta``, ``v`` (``x`` and ``k`` are
    usually alive anyway: the previous layer's state and the conv output) and
    recomputes :math:`\hat k` and :math:`\hat k^\top X` in backward, so the
    shortcut adds no saved activation beyond a residual add.
    """

    @staticmethod
    def forward(ctx, X: Tensor, k: Tensor, beta: Tensor, V: Tensor,
                eps: float) -> Tensor:
        rho = torch.rsqrt((k * k).sum(-1) + eps * eps)           # [N]
        k_hat = k * rho.unsqueeze(-1)                              # [N, d]
        s = torch.einsum('nd,ndv->nv', k_hat, X)                   # [N, d_v]
        r = (V - s) * beta.unsqueeze(-1)                           # [N, d_v]
        out = torch.addcmul(X, k_hat.unsqueeze(-1), r.unsqueeze(1))
        ctx.save_for_backward(X, k, beta, V)
        ctx.eps = eps
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        X, k, beta, V = ctx.saved_tensors
        rho = torch.rsqrt((k * k).sum(-1) + ctx.eps * ctx.eps)
        k_hat = k * rho.unsqueeze(-1)
        s = torch.einsum('nd,ndv->nv', k_hat, X)
        r = V - s                                                   # [N, d_v]
        a = torch.einsum('nd,ndv->nv', k_hat, g)                   # k̂ᵀ g
        b = beta.unsqueeze(-1)
        gX = gk = gbeta = gV = None
        if ctx.needs_input_grad[0]:
            gX = torch.addcmul(g, k_hat.unsqueeze(-1), (-b * a).unsqueeze(1))
        if ctx.needs_input_grad[1]:
            # dL/dk̂ = β (g r − X a), then through k̂ = k ρ(k).
            gk_hat = (torch.einsum('ndv,nv->nd', g, r) -
                      torch.einsum('ndv,nv->nd', X, a)) * b
            proj = (gk_hat * k_hat).sum(-1, keepdim=True)
            gk = (gk_hat - k_hat * proj) * rho.unsqueeze(-1)
        if ctx.needs_input_grad[2]:
            gbeta = (a * r).sum(-1)
        if ctx.needs_input_grad[3]:
            gV = a * b
        return gX, gk, gbeta, gV, None


def delta_update(x: Tensor, k: Tensor, beta: Tensor, v: Tensor,
                 eps: float = 1e-5) -> Tensor:
    r"""Applies the delta shortcut to every node:

    .. math::
        X_i' = X_i + \beta_i \hat k_i (v_i^\top - \hat k_i^\top X_i)
             = (I - \beta_i \hat k_i \hat k_i^\top) X_i + \beta_i \hat k_i v_i^\top,
        \qquad \hat k_i = k_i / \sqrt{\lVert k_i \rVert^2 + \epsilon^2}.

    :math:`\beta = 0` keeps the state, :math:`\beta = 1` overwrites its
    :math:`\hat k`-component with :math:`v` (:math:`\hat k^\top X' = v^\top`),
    :math:`\beta = 2` (with :math:`v = 0`) reflects it. Values of ``beta``
    are not range-checked here (that would synchronise devices); the gates in
    :mod:`ddl_gnn.nn.gates` guarantee the range.

    Args:
        x (torch.Tensor): Node states, :obj:`[N, d]` or :obj:`[N, d, d_v]`.
        k (torch.Tensor): Unnormalised directions, :obj:`[N, d]`.
        beta (torch.Tensor): Gates, :obj:`[N]` or :obj:`[N, 1]`.
        v (torch.Tensor): Values, :obj:`[N]` (vector state) or
            :obj:`[N, d_v]`.
        eps (float, optional): Normalisation guard :math:`\epsilon`.
            (default: :obj:`1e-5`)

    Shapes:
        - **output:** same as ``x``.
    """
    X, b, V, vec = _as_matrix_state(x, k, beta, v)
    out = _DeltaUpdate.apply(X, k, b, V, float(eps))
    return out.squeeze(-1) if vec else out


def delta_update_eager(x: Tensor, k: Tensor, beta: Tensor, v: Tensor,
                       eps: float = 1e-5) -> Tensor:
    r"""Same as :func:`delta_update` in plain autograd ops (no custom
    backward). Kept as the baseline the fused path is benchmarked against."""
    X, b, V, vec = _as_matrix_state(x, k, beta, v)
    k_hat = k * torch.rsqrt((k * k).sum(-1, keepdim=True) + eps * eps)
    s = torch.einsum('nd,ndv->nv', k_hat, X)
    out = X + k_hat.unsqueeze(-1) * ((V - s) * b.unsqueeze(-1)).unsqueeze(1)
    return out.squeeze(-1) if vec else out


def delta_write(x: Tensor, k: Tensor, beta: Tensor, v: Tensor,
                eps: float = 1e-5) -> Tensor:
    r"""The write-only ablation :math:`X' = X + \beta \hat k v^\top` (no
    erase term), with the same shapes and normalisation as
    :func:`delta_update`."""
    X, b, V, vec = _as_matrix_state(x, k, beta, v)
    k_hat = k * torch.rsqrt((k * k).sum(-1, keepdim=True) + eps * eps)
    out = X + k_hat.unsqueeze(-1) * (V * b.unsqueeze(-1)).unsqueeze(1)
    return out.squeeze(-1) if vec else out
