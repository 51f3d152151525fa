r"""MADGap: cosine distance of remote pairs minus that of near pairs."""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.utils import scatter

from ._hops import hop_distances, propagation_matrix
from .._validate import check_metric_inputs
from .batched import graph_mean, num_graphs

#: Largest graph on which :func:`mad_gap` uses every node as a source by
#: default.
EXACT_MAX_NODES = 4096
#: Number of sampled sources on larger graphs by default.
DEFAULT_NUM_SOURCES = 64
#: Bound on the ``[sources, N]`` blocks held at once.
BLOCK_ELEMS = 1 << 24


def _target_mad(dist: Tensor, mask: Tensor, src_graph: Tensor,
                size: int) -> Tuple[Tensor, Tensor]:
    r"""Per-source mean distance over the masked pairs, summed per graph."""
    cnt = mask.sum(-1).to(torch.float64)
    tot = (dist * mask).sum(-1).to(torch.float64)
    ok = cnt > 0
    per_src = torch.where(ok, tot / cnt.clamp(min=1), torch.zeros_like(tot))
    return (scatter(per_src, src_graph, 0, dim_size=size, reduce='sum'),
            scatter(ok.to(torch.float64), src_graph, 0, dim_size=size,
                    reduce='sum'))


def mad_gap(
    x: Tensor,
    edge_index: Tensor,
    near: int = 3,
    remote: int = 8,
    num_sources: Optional[int] = None,
    seed: int = 0,
    batch: Optional[Tensor] = None,
    unreachable_as_remote: bool = True,
    return_parts: bool = False,
    eps: float = 1e-12,
) -> Union[Tensor, Tuple[Tensor, Tensor, Tensor]]:
    r"""MADGap from the `"Measuring and Relieving the Over-smoothing Problem
    for Graph Neural Networks" <https://arxiv.org/abs/1909.03211>`_ paper:

    .. math::
        \mathrm{MADGap} = \mathrm{MAD}^{\text{rmt}} - \mathrm{MAD}^{\text{neb}},
        \qquad
        \mathrm{MAD}^{\text{tgt}} = \frac{1}{|\mathcal{S}^{\text{tgt}}|}
        \sum_{i \in \mathcal{S}^{\text{tgt}}}
        \frac{\sum_j M^{\text{tgt}}_{ij} D_{ij}}{\sum_j M^{\text{tgt}}_{ij}}

    with :math:`D_{ij} = 1 - \cos(\mathbf{x}_i, \mathbf{x}_j)`, the near mask
    :math:`M^{\text{neb}}_{ij} = [1 \le h(i,j) \le \text{near}]` and the
    remote mask :math:`M^{\text{rmt}}_{ij} = [h(i,j) \ge \text{remote}]` by
    hop distance :math:`h` (BFS along the edge directions, from
    :obj:`edge_index[0]` to :obj:`edge_index[1]`), and
    :math:`\mathcal{S}^{\text{tgt}}` the sources :math:`i` with at least one
    target pair. Unlike the paper's dense code, pairs are counted by the
    mask, not by :math:`D_{ij} > 0` (the reference drops pairs at distance
    exactly 0, which hides complete smoothing).

    **Exact or sampled.** By default every node is a source when
    :math:`N \le` :obj:`EXACT_MAX_NODES` (exact); otherwise
    :obj:`DEFAULT_NUM_SOURCES` sources are drawn without replacement with a
    generator seeded by :obj:`seed`, and each source is compared with *all*
    nodes (an unbiased estimate of the per-source average). Sources are
    processed in blocks of :math:`S` rows, so memory is :math:`O(S N)`,
    never :math:`N \times N`.

    Args:
        x (torch.Tensor): Node features.
        edge_index (torch.Tensor): Edge indices (:obj:`torch.long`).
        near (int, optional): Largest hop distance of a near pair.
            (default: :obj:`3`)
        remote (int, optional): Smallest hop distance of a remote pair.
            (default: :obj:`8`)
        num_sources (int, optional): Number of sampled sources; :obj:`None`
            picks exact or sampled as above. (default: :obj:`None`)
        seed (int, optional): Seed of the source sample. (default: :obj:`0`)
        batch (torch.Tensor, optional): Graph assignment; pairs are only
            formed within a graph and per-graph values are averaged.
            (default: :obj:`None`)
        unreachable_as_remote (bool, optional): Count pairs with no path
            (infinite hop distance) as remote. (default: :obj:`True`)
        return_parts (bool, optional): Also return
            :math:`\mathrm{MAD}^{\text{neb}}` and
            :math:`\mathrm{MAD}^{\text{rmt}}`. (default: :obj:`False`)
        eps (float, optional): Norm clamp of the cosine. (default: :obj:`1e-12`)

    Returns:
        A 0-dim float64 tensor (NaN if there is no near or no remote pair),
        or the tuple :obj:`(gap, mad_near, mad_remote)`.
    """
    check_metric_inputs(x, edge_index, None, batch)
    if not (1 <= near < remote):
        raise ValueError(f"'near' and 'remote' must satisfy 1 <= near < "
                         f'remote (got near={near}, remote={remote})')
    num_nodes, device = x.size(0), x.device
    if num_sources is None:
        num_sources = (num_nodes if num_nodes <= EXACT_MAX_NODES else
                       DEFAULT_NUM_SOURCES)
    if num_sources < 1:
        raise ValueError(f"'num_sources' must be positive (got {num_sources})")
    if num_sources >= num_nodes:
        sources = torch.arange(num_nodes, device=device)
    else:
        gen = torch.Generator().manual_seed(seed)
        sources = torch.randperm(num_nodes, generator=gen)[:num_sources]
        sources = sources.sort().values.to(device)

    size = num_graphs(batch)
    graph = (torch.zeros(num_nodes, dtype=torch.long, device=device)
             if batch is None else batch)
    u = x / x.norm(dim=-1, keepdim=True).clamp(min=eps)
    mat = propagation_matrix(edge_index, num_nodes)
    max_hops = remote - 1 if unreachable_as_remote else num_nodes
    acc = {k: torch.zeros(size, dtype=torch.float64, device=device)
           for k in ('near_sum', 'near_cnt', 'rmt_sum', 'rmt_cnt')}
    block = max(1, BLOCK_ELEMS // max(num_nodes, 1))
    for s in range(0, sources.numel(), block):
        src = sources[s:s + block]
        hops = hop_distances(mat, src, num_nodes, max_hops)
        same = graph.unsqueeze(0) == graph[src].unsqueeze(1)
        dist = 1.0 - u[src] @ u.t()
        near_mask = (hops >= 1) & (hops <= near)
        if unreachable_as_remote:
            rmt_mask = (hops < 0) & same
        else:
            rmt_mask = hops >= remote
        for key, mask in (('near', near_mask), ('rmt', rmt_mask)):
            tot, cnt = _target_mad(dist, mask, graph[src], size)
            acc[key + '_sum'] += tot
            acc[key + '_cnt'] += cnt

    def _mad(key: str) -> Tensor:
        cnt = acc[key + '_cnt']
        per_graph = acc[key + '_sum'] / cnt.clamp(min=1)
        return per_graph, cnt > 0

    near_g, near_ok = _mad('near')
    rmt_g, rmt_ok = _mad('rmt')
    both = near_ok & rmt_ok
    gap = graph_mean(rmt_g - near_g, both)
    if return_parts:
        return gap, graph_mean(near_g, near_ok), graph_mean(rmt_g, rmt_ok)
    return gap
