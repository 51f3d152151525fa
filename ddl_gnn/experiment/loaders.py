r"""Mini-batch schedules for node-level training.

``full`` trains on the whole graph. ``random`` uses PyG's
:class:`~torch_geometric.loader.RandomNodeLoader` (random node partitions
and their induced subgraphs — depth-agnostic: a deep stack sees a fixed
subgraph, not a k-hop tree that explodes with depth). ``neighbor`` and
``cluster`` use :class:`~torch_geometric.loader.NeighborLoader` with
``subgraph_type='induced'`` and :class:`~torch_geometric.loader.ClusterLoader`;
both need ``pyg-lib`` or ``torch-sparse`` (no wheels for torch 2.13 on the
package index) and fail with a clear message when neither is importable.
With ``neighbor`` only the ``batch_size`` seed nodes of a batch enter the
loss (the other training nodes of the sampled subgraph have truncated
neighbourhoods). Evaluation always runs on the full graph (one pass under
``no_grad``, see :func:`~.train.fit_node`).
"""
from __future__ import annotations

import copy
import math
from typing import Iterator, Tuple

import torch
from torch import Tensor


def _sampler_backend() -> str:
    from torch_geometric import typing as pyg_typing
    if pyg_typing.WITH_PYG_LIB:
        return 'pyg-lib'
    if pyg_typing.WITH_TORCH_SPARSE:
        return 'torch-sparse'
    return ''


def require_sampler(loader: str) -> None:
    if not _sampler_backend():
        raise ImportError(
            f"--loader {loader} needs 'pyg-lib' or 'torch-sparse' (PyG's "
            f"neighbour sampling / METIS backends), and neither is "
            f"importable. Install one (pip install ddl_gnn[sparse], built "
            f"from source for this torch), or use --loader random or full.")


def node_train_batches(data, train_idx: Tensor, cfg
                       ) -> Iterator[Tuple[object, Tensor]]:
    """Yields ``(graph, local_train_index)`` pairs for one epoch."""
    if cfg.loader == 'full':
        yield data, train_idx
        return
    mask = torch.zeros(data.num_nodes, dtype=torch.bool)
    mask[train_idx] = True
    base = copy.copy(data)  # shallow: shares x / edge_index with ``data``
    base.train_mask = mask
    if cfg.loader == 'random':
        from torch_geometric.loader import RandomNodeLoader
        parts = max(1, math.ceil(data.num_nodes / cfg.batch_size))
        loader = RandomNodeLoader(base, num_parts=parts, shuffle=True)
    elif cfg.loader == 'neighbor':
        require_sampler('neighbor')
        from torch_geometric.loader import NeighborLoader
        loader = NeighborLoader(base, num_neighbors=[10] * 2,
                                input_nodes=train_idx,
                                batch_size=cfg.batch_size, shuffle=True,
                                subgraph_type='induced')
    else:
        require_sampler('cluster')
        from torch_geometric.loader import ClusterData, ClusterLoader
        loader = ClusterLoader(ClusterData(base, num_parts=cfg.num_parts),
                               batch_size=1, shuffle=True)
    for batch in loader:
        if cfg.loader == 'neighbor':
            yield batch, torch.arange(batch.batch_size)
            continue
        idx = batch.train_mask.nonzero().view(-1)
        if idx.numel():
            yield batch, idx
