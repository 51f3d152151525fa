r"""Multi-source breadth-first search with a sparse adjacency.

Hop distances from :math:`S` sources to all :math:`N` nodes are found level
by level: the frontier is a dense :obj:`[N, S]` 0/1 matrix and one level is
one sparse-dense product, so the cost is :math:`O(L (|\mathcal{E}| + N) S)`
for :math:`L` levels and the memory :math:`O(N S)`, never
:math:`N \times N`.
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor


def propagation_matrix(edge_index: Tensor, num_nodes: int) -> Tensor:
    r"""Sparse CSR matrix :math:`\mathbf{M}` with :math:`M_{ij} = 1` for each
    edge :math:`j \to i` (:obj:`edge_index[0] = j`,
    :obj:`edge_index[1] = i`), so :math:`\mathbf{M}\mathbf{F}` moves a
    frontier one hop along the edge directions."""
    src, dst = edge_index
    perm = torch.argsort(dst * num_nodes + src)  # rows, then columns sorted
    crow = torch.zeros(num_nodes + 1, dtype=torch.long, device=dst.device)
    crow[1:] = torch.cumsum(torch.bincount(dst, minlength=num_nodes), 0)
    val = torch.ones(dst.numel(), dtype=torch.float32, device=dst.device)
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*[Ss]parse.*')
        return torch.sparse_csr_tensor(crow, src[perm], val,
                                       (num_nodes, num_nodes),
                                       check_invariants=False)


def hop_distances(mat: Tensor, sources: Tensor, num_nodes: int,
                  max_hops: int) -> Tensor:
    r"""Hop distances from each source, shape :obj:`[S, N]` (int16).

    Entries are the hop distance if it is at most :obj:`max_hops` and
    :obj:`-1` otherwise (farther or unreachable).
    """
    num_src = sources.numel()
    dist = torch.full((num_nodes, num_src), -1, dtype=torch.int16,
                      device=sources.device)
    cols = torch.arange(num_src, device=sources.device)
    dist[sources, cols] = 0
    frontier = torch.zeros(num_nodes, num_src, dtype=torch.float32,
                           device=sources.device)
    frontier[sources, cols] = 1.0
    for level in range(1, max_hops + 1):
        reached = (mat @ frontier) > 0
        new = reached & (dist < 0)
        if not bool(new.any()):
            break
        dist[new] = level
        frontier = new.to(torch.float32)
    return dist.t().contiguous()
