r"""Helpers for graph-level batches (a :obj:`batch` vector as in PyG).

Convention used by every metric with a :obj:`batch` argument: the metric is
computed **per graph** and the per-graph values are **averaged** (each graph
counts once, whatever its size). Graph ids that own no node are ignored.
Graphs on which a metric is undefined (e.g. MAD of a graph without edges)
are left out of the average; if every graph is left out the result is NaN.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.utils import scatter


def num_graphs(batch: Optional[Tensor]) -> int:
    r"""Number of graph slots in :obj:`batch` (:obj:`1` for :obj:`None`)."""
    if batch is None or batch.numel() == 0:
        return 1
    return int(batch.max()) + 1


def nodes_per_graph(batch: Optional[Tensor], num_nodes: int,
                    device: torch.device) -> Tensor:
    r"""Node counts per graph slot, as a float64 vector."""
    if batch is None:
        return torch.tensor([float(num_nodes)], dtype=torch.float64,
                            device=device)
    ones = torch.ones(batch.numel(), dtype=torch.float64, device=device)
    return scatter(ones, batch, 0, dim_size=num_graphs(batch), reduce='sum')


def segment_sum(values: Tensor, seg: Optional[Tensor], size: int) -> Tensor:
    r"""Sums :obj:`values` (first dim) into :obj:`size` float64 buckets; with
    :obj:`seg=None` everything goes into bucket 0."""
    values = values.to(torch.float64)
    if seg is None:
        return values.sum(0, keepdim=True)
    return scatter(values, seg, 0, dim_size=size, reduce='sum')


def graph_mean(values: Tensor, valid: Tensor) -> Tensor:
    r"""Mean of the per-graph :obj:`values` over the :obj:`valid` graphs
    (NaN if none is valid), as a 0-dim float64 tensor."""
    values = values.to(torch.float64)
    if not bool(valid.any()):
        return values.new_tensor(float('nan'))
    return values[valid].mean()


def graph_slices(batch: Tensor) -> Tuple[Tensor, Tensor]:
    r"""Returns a node permutation that groups nodes by graph and the
    pointer vector of the groups (length :obj:`num_graphs + 1`)."""
    perm = torch.argsort(batch, stable=True)
    counts = torch.bincount(batch, minlength=num_graphs(batch))
    ptr = torch.zeros(counts.numel() + 1, dtype=torch.long,
                      device=batch.device)
    ptr[1:] = torch.cumsum(counts, 0)
    return perm, ptr
