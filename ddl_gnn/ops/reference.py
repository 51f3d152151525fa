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


def delta_operator(k: Tensor, beta: Tensor, eps: float = 1e-5) -> Tensor:
    r"""The dense per-node shortcut :math:`I - \beta k k^\top`.

    Args:
        k (torch.Tensor): Directions of shape :obj:`[N, d]` (normalised here).
        beta (torch.Tensor): Gates of shape :obj:`[N]` or :obj:`[N, 1]`.
        eps (float, optional): Normalisation guard. (default: :obj:`1e-5`)

    Returns:
        torch.Tensor: Operators of shape :obj:`[N, d, d]`.
    """
    k_hat = normalize_direction(k, eps)
    eye = torch.eye(k.size(-1), dtype=k.dtype, device=k.device)
    outer = k_hat.unsqueeze(-1) * k_hat.unsqueeze(-2)
    return eye - beta.reshape(-1, 1, 1) * outer


def delta_update_reference(x: Tensor, k: Tensor, beta: Tensor, v: Tensor,
                           eps: float = 1e-5) -> Tensor:
    r"""Dense :math:`(I - \beta k k^\top) X + \beta k v^\top`, per node.

    Accepts the same shapes as :func:`ddl_gnn.ops.delta_update`:
    ``x`` :obj:`[N, d]` (with ``v`` :obj:`[N]`) or :obj:`[N, d, d_v]` (with
    ``v`` :obj:`[N, d_v]`), ``k`` :obj:`[N, d]`, ``beta`` :obj:`[N]` or
    :obj:`[N, 1]`.
    """
    vector_state = x.dim() == 2
    X = x.unsqueeze(-1) if vector_state else x
    V = v.reshape(v.size(0), 1) if vector_state else v
    A = delta_operator(k, beta, eps)
    k_hat = normalize_direction(k, eps)
    write = beta.reshape(-1, 1, 1) * k_hat.unsqueeze(-1) * V.unsqueeze(-2)
    out = torch.bmm(A, X) + write
    return out.squeeze(-1) if vector_state else out
