"""Input checks shared by layers and models: clear errors, no silent results.

Value checks that need a device sync (index range, NaN) are skipped while
``torch.compile`` traces, so compiled models keep a single graph.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch_geometric.utils import is_sparse

from .._validate import (all_finite, check_batch, check_edge_index,
                         check_edge_weight, check_edges_within_graphs)


def _compiling() -> bool:
    return torch.compiler.is_compiling()


def check_features(x: Tensor, width: int, name: str, where: str,
                   d_v: Optional[int] = None,
                   dtype: Optional[torch.dtype] = None) -> None:
    """``x`` must be ``[N, width]`` (``d_v`` None or 1) or
    ``[N, width, d_v]``, finite (one pass over ``x``), and of ``dtype``
    when given (the dtype of the parameters that read it)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}: '{name}' must be a Tensor, got "
                        f"{type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{where}: '{name}' must be floating point, got "
                        f"{x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{where}: '{name}' has dtype {x.dtype} but the "
                        f"parameters are {dtype}; convert with "
                        f"{name}.to({dtype}) or the model with "
                        f"model.to({x.dtype})")
    if d_v is None or d_v == 1:
        if x.dim() != 2 or x.size(1) != width:
            raise ValueError(f"{where}: '{name}' must have shape [N, {width}],"
                             f" got {tuple(x.shape)}")
    elif x.dim() != 3 or x.size(1) != width or x.size(2) != d_v:
        raise ValueError(f"{where}: '{name}' must have shape "
                         f"[N, {width}, d_v={d_v}], got {tuple(x.shape)}")
    if not _compiling() and not all_finite(x):
        raise ValueError(f"{where}: '{name}' contains NaN or Inf values")


def check_readout_batch(batch: Tensor, edge_index, num_nodes: int,
                        where: str) -> None:
    """``batch`` must assign each of the ``num_nodes`` nodes to a graph
    (1-D long, non-negative) and no edge may join two graphs (a readout
    would otherwise pool messages that crossed graphs)."""
    if _compiling():
        return
    try:
        check_batch(batch, num_nodes)
        if not is_sparse(edge_index):
            check_edges_within_graphs(edge_index, batch)
    except (TypeError, ValueError) as err:
        raise type(err)(f'{where}: {err}') from None


def check_graph(edge_index, num_nodes: int, where: str,
                edge_weight: Optional[Tensor] = None) -> None:
    """``edge_index`` must be a ``[2, E]`` int64 Tensor with entries in
    ``[0, num_nodes)``, or a square torch.sparse / SparseTensor adjacency
    over ``num_nodes`` nodes; ``edge_weight`` must be ``[E]``."""
    if is_sparse(edge_index):
        size = tuple(edge_index.size())[:2]
        if size != (num_nodes, num_nodes):
            raise ValueError(f"{where}: sparse adjacency must be "
                             f"{num_nodes} x {num_nodes} to match 'x', got "
                             f"{size}")
        return
    # Dense [2, E] index: the package-wide checks (value checks need a
    # device sync and are skipped while torch.compile traces).
    values = not _compiling()
    check_edge_index(edge_index, num_nodes, where, check_values=values)
    check_edge_weight(edge_weight, edge_index.size(1), where=where,
                      check_values=values)
