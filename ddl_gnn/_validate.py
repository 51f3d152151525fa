r"""Input checks shared by the whole package (metrics, layers, models).

Every public entry point validates its arguments here, so a wrong input
fails early with a message that names the offending argument instead of a
shape error deep inside a gather or a scatter. ``where`` prefixes the
message with the caller's name.

Value checks that need a device sync (index range, NaN) are skipped while
``torch.compile`` traces, so compiled layers and models keep a single
graph.
"""
from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from typing import Iterator, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.utils import is_sparse

_state = threading.local()


@contextmanager
def values_checked() -> Iterator[None]:
    r"""Marks a block whose inputs were value-checked once (a model's
    forward checks ``x`` for NaN/Inf before its layers run): the per-layer
    ops called inside skip their own value checks, so a forward costs one
    pass over the inputs, not one per layer."""
    prev = getattr(_state, 'checked', False)
    _state.checked = True
    try:
        yield
    finally:
        _state.checked = prev


def check_values_here() -> bool:
    r"""Whether an op should check the values of its inputs: not inside
    :func:`values_checked`, and not while ``torch.compile`` traces (a
    value check needs a device sync)."""
    return not getattr(_state, 'checked', False) and \
        not torch.compiler.is_compiling()


#: The last tensor found finite and its version counter: full-batch
#: training passes the same feature matrix every epoch, so it is checked
#: once (an in-place change bumps ``_version`` and is checked again).
_last_finite: Tuple[Optional[weakref.ref], int] = (None, -1)


def all_finite(t: Tensor) -> bool:
    r"""Whether every entry of ``t`` is finite: one float64 sum (NaN/Inf
    propagate, finite float32 values cannot overflow it); the elementwise
    test only runs when the sum is not finite. A tensor already found
    finite and not modified since is not read again (writes through
    ``.data`` bypass the version counter and are not seen)."""
    global _last_finite
    ref, version = _last_finite
    if ref is not None and ref() is t and t._version == version:
        return True
    ok = t.numel() == 0 or bool(torch.isfinite(
        t.sum(dtype=torch.float64))) or bool(torch.isfinite(t).all())
    if ok and not t.requires_grad and not torch.compiler.is_compiling():
        _last_finite = (weakref.ref(t), t._version)
    return ok


def check_rate(value, arg: str, where: str,
               allow_none: bool = False) -> Optional[float]:
    """``value`` as a float dropout rate in [0, 1) (or :obj:`None` where
    ``allow_none``); a bool, a string or a rate outside the range is named
    as an error."""
    if value is None and allow_none:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not 0.0 <= value < 1.0):
        extra = ' or be None' if allow_none else ''
        raise ValueError(f"{where}: '{arg}' must lie in [0, 1){extra}, got "
                         f"{value!r}")
    return float(value)


def check_x(x: Tensor, name: str = 'x', allow_3d: bool = False) -> Tensor:
    r"""Checks that :obj:`x` is a finite floating-point node feature matrix
    of shape :obj:`[N, d]` (or :obj:`[N, d, d_v]` if :obj:`allow_3d`)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor "
                        f'(got {type(x).__name__})')
    dims = (2, 3) if allow_3d else (2, )
    if x.dim() not in dims:
        want = '2-D [N, d] or 3-D [N, d, d_v]' if allow_3d else '2-D [N, d]'
        raise ValueError(f"'{name}' must be {want} "
                         f'(got shape {tuple(x.shape)})')
    if not x.is_floating_point():
        raise TypeError(f"'{name}' must be a floating-point tensor "
                        f'(got dtype {x.dtype})')
    if not all_finite(x):
        raise ValueError(f"'{name}' contains NaN or Inf values")
    return x


def _at(where: str) -> str:
    return f'{where}: ' if where else ''


def check_edge_index(edge_index: Tensor, num_nodes: int, where: str = '',
                     check_values: bool = True,
                     nodes_from: str = "'x' has {} rows") -> Tensor:
    r"""Checks that :obj:`edge_index` is a :obj:`torch.long` tensor of shape
    :obj:`[2, E]` whose entries lie in :obj:`[0, num_nodes)` (the range
    needs a device sync and is skipped with :obj:`check_values=False`).
    ``nodes_from`` says where ``num_nodes`` came from, in the error."""
    at = _at(where)
    if not isinstance(edge_index, Tensor):
        raise TypeError(f"{at}'edge_index' must be a torch.Tensor of shape "
                        f'[2, E] (got {type(edge_index).__name__})')
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"{at}'edge_index' must have shape [2, E] "
                         f'(got shape {tuple(edge_index.shape)})')
    if edge_index.dtype != torch.long:
        raise TypeError(f"{at}'edge_index' must have dtype torch.long "
                        f'(got {edge_index.dtype})')
    if check_values and edge_index.numel() > 0:
        lo, hi = int(edge_index.min()), int(edge_index.max())
        if lo < 0 or hi >= num_nodes:
            raise IndexError(f"{at}'edge_index' contains node indices "
                             f'outside [0, {num_nodes}) (min {lo}, max '
                             f'{hi}); ' + nodes_from.format(num_nodes))
    return edge_index


def check_edge_weight(edge_weight: Optional[Tensor], num_edges: int,
                      nonnegative: bool = False, where: str = '',
                      check_values: bool = True) -> Optional[Tensor]:
    r"""Checks that :obj:`edge_weight` is :obj:`None` or a finite 1-D
    floating-point tensor with one entry per edge."""
    if edge_weight is None:
        return None
    at = _at(where)
    if not isinstance(edge_weight, Tensor):
        raise TypeError(f"{at}'edge_weight' must be a torch.Tensor or None "
                        f'(got {type(edge_weight).__name__})')
    if edge_weight.dim() != 1 or edge_weight.numel() != num_edges:
        raise ValueError(f"{at}'edge_weight' must have shape [E] = "
                         f'[{num_edges}] to match edge_index (got shape '
                         f'{tuple(edge_weight.shape)})')
    if not edge_weight.is_floating_point():
        raise TypeError(f"{at}'edge_weight' must be a floating-point tensor "
                        f'(got dtype {edge_weight.dtype})')
    if not check_values:
        return edge_weight
    if edge_weight.numel() > 0 and not bool(torch.isfinite(edge_weight).all()):
        raise ValueError(f"{at}'edge_weight' contains NaN or Inf values")
    if nonnegative and edge_weight.numel() > 0 and bool(
            (edge_weight < 0).any()):
        raise ValueError("'edge_weight' must be non-negative here")
    return edge_weight


def check_batch(batch: Optional[Tensor], num_nodes: int) -> Optional[Tensor]:
    r"""Checks that :obj:`batch` is :obj:`None` or a 1-D :obj:`torch.long`
    vector assigning each of the :obj:`num_nodes` nodes to a graph."""
    if batch is None:
        return None
    if not isinstance(batch, Tensor):
        raise TypeError("'batch' must be a torch.Tensor or None "
                        f'(got {type(batch).__name__})')
    if batch.dim() != 1 or batch.numel() != num_nodes:
        raise ValueError(f"'batch' must have shape [N] = [{num_nodes}] "
                         f'(got shape {tuple(batch.shape)})')
    if batch.dtype != torch.long:
        raise TypeError(f"'batch' must have dtype torch.long "
                        f'(got {batch.dtype})')
    if batch.numel() > 0 and int(batch.min()) < 0:
        raise ValueError("'batch' must contain non-negative graph indices")
    return batch


def check_edges_within_graphs(edge_index: Tensor, batch: Tensor) -> None:
    r"""Raises if an edge joins two different graphs of a batch."""
    if edge_index.numel() > 0 and bool(
        (batch[edge_index[0]] != batch[edge_index[1]]).any()):
        raise ValueError("'edge_index' has edges that join different graphs "
                         "of 'batch'")


def check_metric_inputs(x: Tensor, edge_index: Tensor,
                        edge_weight: Optional[Tensor] = None,
                        batch: Optional[Tensor] = None,
                        nonnegative_weight: bool = False) -> None:
    r"""Runs all checks for a (features, graph) metric call."""
    check_x(x)
    if x.size(0) == 0:
        raise ValueError("'x' has 0 rows: a graph metric needs at least one "
                         "node")
    check_edge_index(edge_index, x.size(0))
    check_edge_weight(edge_weight, edge_index.size(1), nonnegative_weight)
    if batch is not None:
        check_batch(batch, x.size(0))
        check_edges_within_graphs(edge_index, batch)


# Checks of layers and models: ``where`` names the module in the message.
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
