"""Index splits: masks → indices, and seeded stratified random splits."""
from typing import Dict, Optional, Union

import torch
from torch import Tensor
from torch_geometric.data import Data


def mask_to_index(mask: Tensor, column: Optional[int] = None) -> Tensor:
    """Indices of a boolean mask; ``column`` picks one of several splits."""
    if mask.dim() == 2:
        if column is None:
            raise ValueError('several splits: give a column')
        mask = mask[:, column]
    return mask.nonzero(as_tuple=False).view(-1)


def masks_split(data: Data, column: Optional[int] = None
                ) -> Dict[str, Tensor]:
    """The train/valid/test indices of ``data``'s masks (``column`` as in
    :func:`mask_to_index`)."""
    return {'train': mask_to_index(data.train_mask, column),
            'valid': mask_to_index(data.val_mask, column),
            'test': mask_to_index(data.test_mask, column)}


def stratified_split(y: Tensor, seed: int = 0,
                     train: Union[int, float] = 0.6,
                     valid: Union[int, float] = 0.2,
                     nodes: Optional[Tensor] = None) -> Dict[str, Tensor]:
    """Seeded random split, stratified by class.

    ``train``/``valid`` are fractions (< 1) of each class, or integer counts
    per class (e.g. 20/30 as in Shchur et al. 2018); the rest is test.
    ``nodes`` restricts the split to these node indices.
    """
    y = y.view(-1)
    nodes = torch.arange(y.numel()) if nodes is None else nodes
    g = torch.Generator().manual_seed(int(seed))
    parts = {'train': [], 'valid': [], 'test': []}
    yn = y[nodes]
    for c in torch.unique(yn).tolist():
        idx = nodes[yn == c]
        idx = idx[torch.randperm(idx.numel(), generator=g)]
        n = idx.numel()
        n_tr = int(train) if train >= 1 else int(round(train * n))
        n_va = int(valid) if valid >= 1 else int(round(valid * n))
        n_tr, n_va = min(n_tr, n), min(n_va, max(n - n_tr, 0))
        parts['train'].append(idx[:n_tr])
        parts['valid'].append(idx[n_tr:n_tr + n_va])
        parts['test'].append(idx[n_tr + n_va:])
    return {k: torch.sort(torch.cat(v))[0] for k, v in parts.items()}
