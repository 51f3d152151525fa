r"""Signal propagation: representation and gradient norms, Jacobian
influence per hop, and exponential decay-rate fits."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor
from torch_geometric.utils.influence import (
    avg_total_influence,
    influence_weighted_receptive_field,
    jacobian_l1_agg_per_hop,
)

from .._validate import check_batch, check_x
from .batched import graph_mean, nodes_per_graph, num_graphs, segment_sum

ArrayLike = Union[Sequence[float], np.ndarray, Tensor]


def representation_norm(x: Tensor, batch: Optional[Tensor] = None) -> Tensor:
    r"""Root-mean-square node norm :math:`\|\mathbf{X}\|_F / \sqrt{N}`.

    Vanishes or explodes with depth when the signal does; pair it with the
    relative energy and ranks, which are scale-invariant.

    Args:
        x (torch.Tensor): Node features (a 3-D state :obj:`[N, d, d_v]` is
            accepted: the Frobenius norm runs over all trailing dims).
        batch (torch.Tensor, optional): Graph assignment; computed per graph
            and averaged. (default: :obj:`None`)

    Shapes:
        - **input:** :math:`(|\mathcal{V}|, F)` or :math:`(|\mathcal{V}|, F,
          d_v)`
        - **output:** scalar (0-dim float64 tensor)
    """
    check_x(x, allow_3d=True)
    check_batch(batch, x.size(0))
    sq = segment_sum(x.reshape(x.size(0), -1).square().sum(-1), batch,
                     num_graphs(batch))
    n = nodes_per_graph(batch, x.size(0), x.device)
    return graph_mean((sq / n.clamp(min=1)).sqrt(), n > 0)


def input_cosine(x: Tensor, x0: Tensor, centered: bool = False,
                 batch: Optional[Tensor] = None) -> Tensor:
    r"""Frobenius cosine of a state :math:`\mathbf{X}^{l}` with the stack's
    input state :math:`\mathbf{X}^{0}`: how much of the input a deep
    state still holds,

    .. math::
        \cos(\mathbf{X}^{l}, \mathbf{X}^{0}) =
        \frac{\langle \mathbf{X}^{l}, \mathbf{X}^{0} \rangle_F}
        {\|\mathbf{X}^{l}\|_F \, \|\mathbf{X}^{0}\|_F}.

    With :obj:`centered=True` each state first loses its mean over nodes
    (:math:`\mathbf{X} - \mathbf{1}\bar{\mathbf{x}}^\top`), the component
    every node shares. That component tells no two nodes apart, yet it can
    carry most of the norm: an encoder's bias dominates its output when the
    features are small (row-normalised bag-of-words), and any stack that
    keeps the bias then scores near 1 on the plain cosine. The centred
    cosine counts only the node-specific part of the input.

    Args:
        x (torch.Tensor): Node states (a 3-D state :obj:`[N, d, d_v]` is
            accepted: the inner product runs over all trailing dims).
        x0 (torch.Tensor): The input state, the same shape as :obj:`x`.
        centered (bool, optional): Remove each state's node mean first.
            (default: :obj:`False`)
        batch (torch.Tensor, optional): Graph assignment; the means and the
            cosine are taken per graph and the cosines averaged.
            (default: :obj:`None`)

    Shapes:
        - **input:** :math:`(|\mathcal{V}|, F)` or :math:`(|\mathcal{V}|, F,
          d_v)`, twice
        - **output:** scalar (0-dim float64 tensor); NaN for a graph where
          either state is zero (after centring)
    """
    check_x(x, allow_3d=True)
    check_x(x0, 'x0', allow_3d=True)
    if x.shape != x0.shape:
        raise ValueError(f"'x' and 'x0' must have the same shape (got "
                         f'{tuple(x.shape)} and {tuple(x0.shape)})')
    check_batch(batch, x.size(0))
    size = num_graphs(batch)
    a = x.reshape(x.size(0), -1).to(torch.float64)
    b = x0.reshape(x0.size(0), -1).to(torch.float64)
    n = nodes_per_graph(batch, x.size(0), x.device)
    if centered:   # subtract each graph's node mean (one row per graph)
        count = n.clamp(min=1)[:, None]
        mean_a = segment_sum(a, batch, size) / count
        mean_b = segment_sum(b, batch, size) / count
        a = a - (mean_a if batch is None else mean_a[batch])
        b = b - (mean_b if batch is None else mean_b[batch])
    dot = segment_sum((a * b).sum(-1), batch, size)
    na = segment_sum(a.square().sum(-1), batch, size).sqrt()
    nb = segment_sum(b.square().sum(-1), batch, size).sqrt()
    return graph_mean(dot / (na * nb), n > 0)


def state_gradient_norms(loss: Tensor, states: Sequence[Tensor],
                         retain_graph: bool = False) -> List[float]:
    r"""Frobenius norms :math:`\|\partial \mathcal{L} / \partial
    \mathbf{X}^{l}\|_F` of a scalar loss w.r.t. retained (non-detached)
    intermediate states, via :func:`torch.autograd.grad` (parameter
    :obj:`.grad` fields are not touched). A state the loss does not depend
    on (or that does not require grad) gets :obj:`0.0`.

    Args:
        loss (torch.Tensor): Scalar loss.
        states (Sequence[torch.Tensor]): States that are part of the graph
            of :obj:`loss`.
        retain_graph (bool, optional): Keep the autograd graph.
            (default: :obj:`False`)
    """
    if loss.numel() != 1:
        raise ValueError(f"'loss' must be a scalar (got shape "
                         f'{tuple(loss.shape)})')
    states = list(states)
    idx = [i for i, s in enumerate(states) if s.requires_grad]
    norms = [0.0] * len(states)
    if idx:
        grads = torch.autograd.grad(loss, [states[i] for i in idx],
                                    retain_graph=retain_graph,
                                    allow_unused=True)
        for i, g in zip(idx, grads):
            norms[i] = 0.0 if g is None else float(g.norm())
    return norms


def influence_per_hop(model: torch.nn.Module, data: Any, max_hops: int,
                      num_samples: Optional[int] = 16, seed: int = 0,
                      normalize: bool = True,
                      vectorize: bool = True) -> Dict[str, Any]:
    r"""Jacobian influence per hop distance, after `"Towards Quantifying
    Long-Range Interactions in Graph Machine Learning"
    <https://arxiv.org/abs/2503.09008>`_, built on PyG's
    :func:`torch_geometric.utils.jacobian_l1_agg_per_hop` (the per-node part
    of :func:`torch_geometric.utils.total_influence`). For each seed node
    :math:`v` the influence of hop :math:`h` is
    :math:`I_h(v) = \sum_{u : h(u,v) = h}
    \| \partial \mathbf{y}_v / \partial \mathbf{x}_u \|_1`.

    Differences from :func:`total_influence`: seeds are drawn with a
    generator seeded by :obj:`seed` (PyG uses the global RNG), no progress
    bar, and the result is a JSON-ready dict. The model is called as
    :obj:`model(x, edge_index)` on the :obj:`max_hops`-hop subgraph of each
    seed; it costs one Jacobian per seed, so keep :obj:`num_samples` small.

    Args:
        model (torch.nn.Module): Model with signature
            :obj:`model(x, edge_index) -> Tensor`.
        data (torch_geometric.data.Data): Graph with :obj:`x` and
            :obj:`edge_index`.
        max_hops (int): Largest hop distance :math:`k`.
        num_samples (int, optional): Number of seed nodes (:obj:`None`: all).
            (default: :obj:`16`)
        seed (int, optional): Seed of the seed-node sample. (default: :obj:`0`)
        normalize (bool, optional): Divide the mean influence by that of hop
            0. (default: :obj:`True`)
        vectorize (bool, optional): Passed to the Jacobian.
            (default: :obj:`True`)

    Returns:
        :obj:`{'influence': [I_0, ..., I_k], 'receptive_field': R,
        'nodes': [...]}` where :obj:`R` is PyG's influence-weighted receptive
        field (expected hop under the normalized influence).
    """
    num_nodes = int(data.num_nodes)
    gen = torch.Generator().manual_seed(seed)
    nodes = torch.randperm(num_nodes, generator=gen)
    if num_samples is not None:
        nodes = nodes[:num_samples]
    device = data.x.device
    rows = [
        jacobian_l1_agg_per_hop(model, data, max_hops, int(v), device,
                                vectorize=vectorize) for v in nodes.tolist()
    ]
    table = torch.vstack(rows).detach().cpu()
    avg = avg_total_influence(table, normalize=normalize)
    return {
        'influence': [float(v) for v in avg],
        # PyG's helper builds a float32 hop vector: give it float32.
        'receptive_field': float(
            influence_weighted_receptive_field(table.float())),
        'nodes': [int(v) for v in nodes],
    }


def fit_decay_rate(values: ArrayLike,
                   depths: Optional[ArrayLike] = None) -> Dict[str, float]:
    r"""Fits :math:`v_l \approx C e^{-r l}` by least squares on
    :math:`\log v_l = \log C + s\, l` (the survey's exponential
    over-smoothing criterion :math:`\mu(\mathbf{X}^l) \le C_1 e^{-C_2 l}`).

    **Non-positive values.** Values that are :math:`\le 0`, NaN or infinite
    cannot be logged: they are **dropped** from the fit and counted in
    :obj:`'num_dropped'`. Exact zeros deep in a stack are usually float
    underflow, so after dropping them the fitted rate is a *lower bound* on
    the true decay. With fewer than two usable points (or all usable depths
    equal) every fitted quantity is NaN.

    Args:
        values (Sequence[float] or numpy.ndarray or torch.Tensor): Metric
            per depth, e.g. the Dirichlet energy of each layer.
        depths (Sequence[float], optional): Depth of each value (default:
            :obj:`0, 1, ..., L-1`).

    Returns:
        A dict with :obj:`'slope'` :math:`s` (per unit depth, of the natural
        log), :obj:`'rate'` :math:`r = -s` (positive means decay),
        :obj:`'factor'` :math:`e^{s}` (multiplier per unit depth),
        :obj:`'intercept'` :math:`\log C`, :obj:`'r2'` (coefficient of
        determination of the log-linear fit; 1.0 for a perfect fit),
        :obj:`'num_points'` (used) and :obj:`'num_dropped'`.
    """
    v = np.asarray(values.detach().cpu() if isinstance(values, Tensor)
                   else values, dtype=np.float64).reshape(-1)
    if depths is None:
        z = np.arange(v.size, dtype=np.float64)
    else:
        z = np.asarray(depths.detach().cpu() if isinstance(depths, Tensor)
                       else depths, dtype=np.float64).reshape(-1)
        if z.size != v.size:
            raise ValueError(f"'depths' must have one entry per value "
                             f'(got {z.size} depths for {v.size} values)')
    keep = np.isfinite(v) & (v > 0) & np.isfinite(z)
    nan = float('nan')
    out = {'slope': nan, 'rate': nan, 'factor': nan, 'intercept': nan,
           'r2': nan, 'num_points': int(keep.sum()),
           'num_dropped': int(v.size - keep.sum())}
    y, z = np.log(v[keep]), z[keep]
    if y.size < 2 or np.ptp(z) == 0:
        return out
    zc = z - z.mean()
    slope = float((zc * (y - y.mean())).sum() / (zc * zc).sum())
    intercept = float(y.mean() - slope * z.mean())
    resid = y - (intercept + slope * z)
    ss_tot = float(((y - y.mean())**2).sum())
    ss_res = float((resid**2).sum())
    r2 = 1.0 if ss_tot == 0 else 1.0 - ss_res / ss_tot
    out.update(slope=slope, rate=-slope, factor=math.exp(slope),
               intercept=intercept, r2=r2)
    return out
