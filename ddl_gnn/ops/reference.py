r"""Slow, obviously-correct dense reference of the delta shortcut.

Kept forever as the test oracle for every faster path (flash-linear-attention
style): it materialises the operator :math:`A_i = I - \beta_i k_i k_i^\top`
for every node and applies it with a batched matrix product.

Axes: ``N`` nodes, ``d`` state width, ``d_v`` value channels.
"""
from __future__ import annotations

import torch
from torch import Tensor


def normalize_direction(k: Tensor, eps: float = 1e-5) -> Tensor:
    r"""Returns :math:`k / \sqrt{\lVert k \rVert^2 + \epsilon^2}` row-wise."""
    return k / torch.sqrt((k * k).sum(dim=-1, keepdim=True) + eps * eps)


def head_directions(k: Tensor, heads: int = 1, eps: float = 1e-5) -> Tensor:
    r"""The unit directions of the heads, each embedded in :math:`\mathbb{R}^d`:
    :obj:`[N, H, d]`, head :math:`h` normalised on its block
    :math:`[h d/H, (h+1) d/H)` and zero elsewhere."""
    N, d = k.shape
    blocks = normalize_direction(k.reshape(N, heads, d // heads), eps)
    out = k.new_zeros(N, heads, d)
    for h in range(heads):
        w = d // heads
        out[:, h, h * w:(h + 1) * w] = blocks[:, h]
    return out


def delta_operator(k: Tensor, beta: Tensor, eps: float = 1e-5,
                   heads: int = 1) -> Tensor:
    r"""The dense per-node shortcut :math:`I - \sum_h \beta_h \hat k_h
    \hat k_h^\top` (one head: :math:`I - \beta \hat k \hat k^\top`).

    Args:
        k (torch.Tensor): Directions of shape :obj:`[N, d]` (normalised here,
            per head block).
        beta (torch.Tensor): Gates of shape :obj:`[N]`, :obj:`[N, 1]` or
            :obj:`[N, H]`.
        eps (float, optional): Normalisation guard. (default: :obj:`1e-5`)
        heads (int, optional): Number of blocks :math:`H`. (default: :obj:`1`)

    Returns:
        torch.Tensor: Operators of shape :obj:`[N, d, d]`.
    """
    K = head_directions(k, heads, eps)                        # [N, H, d]
    B = beta.reshape(k.size(0), heads)
    eye = torch.eye(k.size(-1), dtype=k.dtype, device=k.device)
    return eye - torch.einsum('nh,nhi,nhj->nij', B, K, K)


def delta_update_reference(x: Tensor, k: Tensor, beta: Tensor, v: Tensor,
                           eps: float = 1e-5, heads: int = 1) -> Tensor:
    r"""Dense :math:`A X + \sum_h \beta_h \hat k_h v_h^\top` with
    :math:`A` from :func:`delta_operator`, per node.

    Accepts the same shapes as :func:`ddl_gnn.ops.delta_update`:
    ``x`` :obj:`[N, d]` (with ``v`` :obj:`[N]`, or :obj:`[N, H]` for
    ``heads = H``) or :obj:`[N, d, d_v]` (with ``v`` :obj:`[N, d_v]` or
    :obj:`[N, H, d_v]`), ``k`` :obj:`[N, d]`, ``beta`` :obj:`[N]`,
    :obj:`[N, 1]` or :obj:`[N, H]`.
    """
    vector_state = x.dim() == 2
    N = x.size(0)
    X = x.unsqueeze(-1) if vector_state else x
    V = v.reshape(N, heads, X.size(-1))
    A = delta_operator(k, beta, eps, heads)
    K = head_directions(k, heads, eps)
    write = torch.einsum('nh,nhi,nhv->niv', beta.reshape(N, heads), K, V)
    out = torch.bmm(A, X) + write
    return out.squeeze(-1) if vector_state else out
