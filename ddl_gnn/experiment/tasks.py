"""What depends on the task type: output width, loss, predictions, and
which direction of the metric is better."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def out_channels(ds) -> int:
    if ds.task_type == 'multiclass':
        return int(ds.num_classes)
    return int(ds.num_tasks)


def loss_fn(ds, out: Tensor, y: Tensor, reduction: str = 'mean') -> Tensor:
    """Cross-entropy (multiclass), masked BCE-with-logits (binary,
    multilabel; OGB molecule labels have NaN for missing) or masked MSE.
    ``reduction='sum'`` sums over the :func:`loss_count` labelled entries
    (mini-batch and data-parallel steps normalise by a global count)."""
    if ds.task_type == 'multiclass':
        return F.cross_entropy(out, y.view(-1).long(), reduction=reduction)
    y = y.view(out.shape).to(out.dtype)
    mask = ~torch.isnan(y)
    if ds.task_type == 'regression':
        return F.mse_loss(out[mask], y[mask], reduction=reduction)
    return F.binary_cross_entropy_with_logits(out[mask], y[mask],
                                              reduction=reduction)


def loss_count(ds, y: Tensor) -> int:
    """Number of entries :func:`loss_fn` averages over for labels ``y``."""
    if ds.task_type == 'multiclass':
        return int(y.size(0))
    return int((~torch.isnan(y.to(torch.float))).sum())


def predictions(ds, out: Tensor) -> Tensor:
    """What the evaluator scores: class labels for accuracy, else raw
    scores / values."""
    if ds.task_type == 'multiclass':
        return out.argmax(dim=-1, keepdim=True)
    return out


def higher_is_better(metric: str) -> bool:
    return metric not in ('rmse', 'mae')
