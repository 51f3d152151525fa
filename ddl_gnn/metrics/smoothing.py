r"""Over-smoothing measures on edges: Dirichlet energies and MAD.

All functions work on the **directed** edges given in :obj:`edge_index`
(PyG convention: :obj:`edge_index[0]` is the source :math:`j`,
:obj:`edge_index[1]` the target :math:`i`); an undirected graph stores both
directions, so each undirected edge is counted twice. Costs are
:math:`O(|\mathcal{E}| \cdot d)` time; edges are processed in chunks so the
extra memory is :math:`O(\text{chunk} \cdot d + N)`, never :math:`N \times N`.
Results are 0-dim :obj:`torch.float64` tensors (sums are accumulated in
float64).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch_geometric.utils import scatter

from .._validate import check_metric_inputs
from .batched import graph_mean, nodes_per_graph, num_graphs, segment_sum

#: Edges processed per chunk (bounds the ``[chunk, d]`` temporaries).
EDGE_CHUNK = 1 << 16


def _gather_pairs(x: Tensor, row: Tensor, col: Tensor):
    r"""Yields :obj:`(start, x[row_chunk], x[col_chunk])` for edge chunks,
    gathered into two reused buffers (no allocation per chunk)."""
    size = min(EDGE_CHUNK, row.numel())
    buf_a = x.new_empty((size, ) + x.shape[1:])
    buf_b = x.new_empty((size, ) + x.shape[1:])
    for s in range(0, row.numel(), EDGE_CHUNK):
        r, c = row[s:s + EDGE_CHUNK], col[s:s + EDGE_CHUNK]
        a = torch.index_select(x, 0, r, out=buf_a[:r.numel()])
        b = torch.index_select(x, 0, c, out=buf_b[:r.numel()])
        yield s, a, b


def _edge_sq_dist(x: Tensor, edge_index: Tensor,
                  edge_weight: Optional[Tensor], batch: Optional[Tensor],
                  size: int) -> Tensor:
    r"""Per graph :math:`\sum_{(j,i)} w_{ji} \|x_i - x_j\|^2` (float64)."""
    row, col = edge_index
    out = torch.zeros(size, dtype=torch.float64, device=x.device)
    for s, a, b in _gather_pairs(x, row, col):
        val = a.sub_(b).square_().sum(-1)
        if edge_weight is not None:
            val = val * edge_weight[s:s + EDGE_CHUNK]
        seg = None if batch is None else batch[row[s:s + EDGE_CHUNK]]
        out += segment_sum(val, seg, size)
    return out


def dirichlet_energy(x: Tensor, edge_index: Tensor,
                     edge_weight: Optional[Tensor] = None,
                     batch: Optional[Tensor] = None) -> Tensor:
    r"""The (unnormalized) Dirichlet energy of node features, in the form
    of the `"A Survey on Oversmoothing in Graph Neural Networks"
    <https://arxiv.org/abs/2303.10993>`_ paper:

    .. math::
        \mathcal{E}(\mathbf{X}) = \frac{1}{N} \sum_{(j,i) \in \mathcal{E}}
        w_{ji} \, \| \mathbf{x}_i - \mathbf{x}_j \|_2^2

    with :math:`w_{ji} = 1` unless :obj:`edge_weight` is given. For an
    undirected graph stored with both directions this is
    :math:`\frac{2}{N} \operatorname{tr}(\mathbf{X}^{\top} \mathbf{L}
    \mathbf{X})` with :math:`\mathbf{L} = \mathbf{D} - \mathbf{A}`. It is
    zero iff the features are constant on every connected component and
    scales as :math:`\mathcal{E}(c\mathbf{X}) = c^2 \mathcal{E}(\mathbf{X})`.

    Args:
        x (torch.Tensor): Node features.
        edge_index (torch.Tensor): Edge indices (:obj:`torch.long`).
        edge_weight (torch.Tensor, optional): Multiplier of each edge term.
            (default: :obj:`None`)
        batch (torch.Tensor, optional): Graph assignment of each node; the
            energy is then computed per graph (with that graph's :math:`N`)
            and averaged over graphs. (default: :obj:`None`)

    Shapes:
        - **inputs:** :math:`(|\mathcal{V}|, F)`, :math:`(2, |\mathcal{E}|)`,
          :math:`(|\mathcal{E}|)`, :math:`(|\mathcal{V}|)`
        - **output:** scalar (0-dim float64 tensor)
    """
    check_metric_inputs(x, edge_index, edge_weight, batch)
    size = num_graphs(batch)
    energy = _edge_sq_dist(x, edge_index, edge_weight, batch, size)
    n = nodes_per_graph(batch, x.size(0), x.device)
    valid = n > 0
    return graph_mean(energy / n.clamp(min=1), valid)


def relative_dirichlet_energy(x: Tensor, edge_index: Tensor,
                              edge_weight: Optional[Tensor] = None,
                              batch: Optional[Tensor] = None) -> Tensor:
    r"""The Dirichlet energy relative to the mean squared feature norm,

    .. math::
        \frac{\mathcal{E}(\mathbf{X})}{\|\mathbf{X}\|_F^2 / N}
        = \frac{\sum_{(j,i) \in \mathcal{E}} w_{ji}
        \| \mathbf{x}_i - \mathbf{x}_j \|_2^2}{\|\mathbf{X}\|_F^2},

    i.e. :math:`\mathcal{E}(\mathbf{X}) / \|\mathbf{X}\|_F^2` up to the
    factor :math:`N`, which is kept out so the value does not shrink with
    graph size. For an undirected graph it is twice the Rayleigh quotient
    :math:`\operatorname{tr}(\mathbf{X}^{\top}\mathbf{L}\mathbf{X}) /
    \operatorname{tr}(\mathbf{X}^{\top}\mathbf{X})`, so it lies in
    :math:`[0, 2\lambda_{\max}(\mathbf{L})]` and is invariant to rescaling
    :math:`\mathbf{X}`: it separates genuine smoothing from features that
    merely shrink. Defined as :obj:`0` when :math:`\mathbf{X} = 0`.

    Args:
        x (torch.Tensor): Node features.
        edge_index (torch.Tensor): Edge indices (:obj:`torch.long`).
        edge_weight (torch.Tensor, optional): Multiplier of each edge term.
            (default: :obj:`None`)
        batch (torch.Tensor, optional): Graph assignment; computed per graph
            and averaged. (default: :obj:`None`)

    Shapes:
        - **inputs:** :math:`(|\mathcal{V}|, F)`, :math:`(2, |\mathcal{E}|)`
        - **output:** scalar (0-dim float64 tensor)
    """
    check_metric_inputs(x, edge_index, edge_weight, batch)
    size = num_graphs(batch)
    energy = _edge_sq_dist(x, edge_index, edge_weight, batch, size)
    sq = segment_sum(x.square().sum(-1), batch, size)
    ratio = torch.where(sq > 0, energy / sq.clamp(min=1e-300),
                        torch.zeros_like(sq))
    valid = nodes_per_graph(batch, x.size(0), x.device) > 0
    return graph_mean(ratio, valid)


def normalized_dirichlet_energy(x: Tensor, edge_index: Tensor,
                                edge_weight: Optional[Tensor] = None,
                                batch: Optional[Tensor] = None,
                                add_self_loops: bool = True) -> Tensor:
    r"""The normalized-Laplacian Dirichlet energy (Cai & Wang 2020 style)

    .. math::
        \operatorname{tr}(\mathbf{X}^{\top} \tilde{\mathbf{\Delta}}
        \mathbf{X}), \qquad \tilde{\mathbf{\Delta}} = \mathbf{I} -
        \tilde{\mathbf{D}}^{-1/2} \tilde{\mathbf{A}}
        \tilde{\mathbf{D}}^{-1/2},

    computed as :math:`\frac{1}{2} \sum_{(j,i) \in \mathcal{E}} w_{ji}
    \| \mathbf{x}_i / \sqrt{\tilde{d}_i} - \mathbf{x}_j / \sqrt{\tilde{d}_j}
    \|^2` (plus :math:`\|\mathbf{x}_i\|^2` for every node of degree 0),
    which equals the trace form for a symmetric (both directions stored)
    graph. **Self-loop convention** (as in :obj:`gcn_norm`): with
    :obj:`add_self_loops=True`, :math:`\tilde{\mathbf{A}} = \mathbf{A} +
    \mathbf{I}` where only nodes without a self-loop get one of weight 1;
    :math:`\tilde{d}_i` is the weighted in-degree in
    :math:`\tilde{\mathbf{A}}`. Self-loops contribute zero to the sum but
    count in the degrees. With :obj:`add_self_loops=False`,
    :math:`\tilde{\mathbf{A}} = \mathbf{A}` and isolated nodes have
    :math:`\tilde{\mathbf{\Delta}}_{ii} = 1`.

    Unlike :func:`dirichlet_energy` its zero set is
    :math:`\tilde{\mathbf{D}}^{1/2}\mathbf{1}`, not the constant vectors
    (it does not satisfy the node-similarity axioms of the survey); report
    it alongside the unnormalized energy. No :math:`1/N` factor.

    Args:
        x (torch.Tensor): Node features.
        edge_index (torch.Tensor): Edge indices (:obj:`torch.long`).
        edge_weight (torch.Tensor, optional): Non-negative edge weights
            (entries of :math:`\mathbf{A}`). (default: :obj:`None`)
        batch (torch.Tensor, optional): Graph assignment; computed per graph
            and averaged. (default: :obj:`None`)
        add_self_loops (bool, optional): Use :math:`\mathbf{A} + \mathbf{I}`.
            (default: :obj:`True`)

    Shapes:
        - **inputs:** :math:`(|\mathcal{V}|, F)`, :math:`(2, |\mathcal{E}|)`
        - **output:** scalar (0-dim float64 tensor)
    """
    check_metric_inputs(x, edge_index, edge_weight, batch,
                        nonnegative_weight=True)
    num_nodes, (row, col) = x.size(0), edge_index
    w = edge_weight
    if w is None:
        w = torch.ones(row.numel(), dtype=x.dtype, device=x.device)
    deg = scatter(w.to(torch.float64), col, 0, dim_size=num_nodes,
                  reduce='sum')
    if add_self_loops:
        has_loop = torch.zeros(num_nodes, dtype=torch.bool, device=x.device)
        has_loop[row[row == col]] = True
        deg = deg + (~has_loop).to(deg.dtype)
    zero_deg = deg <= 0
    dinv = torch.where(zero_deg, torch.zeros_like(deg),
                       deg.clamp(min=1e-300).rsqrt())
    u = x * dinv.to(x.dtype).unsqueeze(-1)
    size = num_graphs(batch)
    energy = 0.5 * _edge_sq_dist(u, edge_index, w, batch, size)
    iso = x.square().sum(-1) * zero_deg.to(x.dtype)
    energy = energy + segment_sum(iso, batch, size)
    valid = nodes_per_graph(batch, num_nodes, x.device) > 0
    return graph_mean(energy, valid)


def mad(x: Tensor, edge_index: Tensor,
        batch: Optional[Tensor] = None, eps: float = 1e-12) -> Tensor:
    r"""Mean Average Distance on edges (the edge-masked MAD of
    `"Measuring and Relieving the Over-smoothing Problem for Graph Neural
    Networks" <https://arxiv.org/abs/1909.03211>`_, as in the survey):

    .. math::
        \mathrm{MAD}(\mathbf{X}) = \frac{1}{|\mathcal{E}|}
        \sum_{(j,i) \in \mathcal{E}} \left( 1 -
        \frac{\mathbf{x}_i^{\top}\mathbf{x}_j}
        {\|\mathbf{x}_i\| \, \|\mathbf{x}_j\|} \right)

    The norms are clamped at :obj:`eps`, so a zero feature vector has cosine
    :obj:`0` with everything (distance :obj:`1`). Every edge counts, also
    those at distance 0 (the dense reference code of the paper averages only
    non-zero entries; see :func:`mad_gap`). NaN for a graph without edges.

    Args:
        x (torch.Tensor): Node features.
        edge_index (torch.Tensor): Edge indices (:obj:`torch.long`).
        batch (torch.Tensor, optional): Graph assignment; computed per graph
            and averaged over graphs that have edges. (default: :obj:`None`)
        eps (float, optional): Norm clamp. (default: :obj:`1e-12`)

    Shapes:
        - **inputs:** :math:`(|\mathcal{V}|, F)`, :math:`(2, |\mathcal{E}|)`
        - **output:** scalar (0-dim float64 tensor)
    """
    check_metric_inputs(x, edge_index, None, batch)
    u = x / x.norm(dim=-1, keepdim=True).clamp(min=eps)
    row, col = edge_index
    size = num_graphs(batch)
    total = torch.zeros(size, dtype=torch.float64, device=x.device)
    count = torch.zeros(size, dtype=torch.float64, device=x.device)
    for s, a, b in _gather_pairs(u, row, col):
        dist = 1.0 - a.mul_(b).sum(-1)
        seg = None if batch is None else batch[row[s:s + EDGE_CHUNK]]
        total += segment_sum(dist, seg, size)
        count += segment_sum(torch.ones_like(dist), seg, size)
    return graph_mean(total / count.clamp(min=1), count > 0)
