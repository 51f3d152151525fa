"""Evaluators with OGB's interface for the non-OGB datasets.

OGB datasets get the real ``ogb`` ``Evaluator``.  The others get
:class:`Evaluator`, which follows OGB's conventions:
``evaluator.eval({'y_true': ..., 'y_pred': ...}) -> {metric: value}`` with
2-D ``[n, num_tasks]`` arrays (torch or numpy; a 1-D array is read as
``[n, 1]`` for convenience).

* ``acc`` (multiclass): ``y_pred`` are predicted labels ``[n, 1]`` (argmax of
  the logits), as for ``ogbn-arxiv``; the value is the fraction correct,
  averaged over tasks (ogb's ``_eval_acc``).
* ``rocauc`` (binary, e.g. Minesweeper/Tolokers as in Platonov et al. 2023):
  ``y_pred`` are scores of the positive class; ROC-AUC per task over the
  labelled (non-NaN) rows, mean over tasks that have both classes (ogb's
  ``_eval_rocauc``).
* ``ap`` (multilabel, Peptides-func): ``sklearn.metrics.average_precision_score``
  per task over labelled rows, mean over tasks that have both classes; the
  definition of ogb's ``_eval_ap`` (ogbg-molpcba) and, for Peptides-func
  (no missing labels, every task has positives), the macro AP that LRGB
  reports.
"""
from typing import Any, Callable, Dict

import numpy as np
import torch


def _np(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    return a.reshape(-1, 1) if a.ndim == 1 else a


def eval_acc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    accs = []
    for i in range(y_true.shape[1]):
        labelled = y_true[:, i] == y_true[:, i]
        accs.append(float(np.mean(y_true[labelled, i] == y_pred[labelled, i])))
    return sum(accs) / len(accs)


def _per_task(y_true: np.ndarray, y_pred: np.ndarray,
              score: Callable[..., float], what: str) -> float:
    vals = []
    for i in range(y_true.shape[1]):
        labelled = y_true[:, i] == y_true[:, i]
        t = y_true[labelled, i]
        if np.sum(t == 1) > 0 and np.sum(t == 0) > 0:
            vals.append(float(score(t, y_pred[labelled, i])))
    if not vals:
        raise RuntimeError(f'no task has both positives and negatives: '
                           f'{what} is undefined')
    return sum(vals) / len(vals)


def eval_rocauc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score
    return _per_task(y_true, y_pred, roc_auc_score, 'ROC-AUC')


def eval_ap(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score
    return _per_task(y_true, y_pred, average_precision_score, 'AP')


def eval_rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    out = []
    for i in range(y_true.shape[1]):
        labelled = y_true[:, i] == y_true[:, i]
        out.append(float(np.sqrt(((y_true[labelled, i] -
                                   y_pred[labelled, i]) ** 2).mean())))
    return sum(out) / len(out)


METRICS: Dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    'acc': eval_acc, 'rocauc': eval_rocauc, 'ap': eval_ap,
           'rmse': eval_rmse}


class Evaluator:
    """Stand-in for ``ogb.*.Evaluator`` on non-OGB datasets."""

    def __init__(self, name: str, metric: str, num_tasks: int = 1):
        if metric not in METRICS:
            raise ValueError(f'unknown metric {metric!r}; one of '
                             f'{sorted(METRICS)}')
        self.name, self.eval_metric, self.num_tasks = name, metric, num_tasks

    @property
    def expected_input_format(self) -> str:
        return (f"==== Expected input format of Evaluator for {self.name}\n"
                f"{{'y_true': y_true, 'y_pred': y_pred}}, both of shape "
                f"(num_samples, {self.num_tasks}); for 'acc' y_pred holds "
                f"predicted labels")

    def eval(self, input_dict: Dict[str, Any]) -> Dict[str, float]:
        y_true = _np(input_dict['y_true'])
        y_pred = _np(input_dict['y_pred'])
        if y_true.shape != y_pred.shape:
            raise RuntimeError(f'shape of y_true {y_true.shape} and y_pred '
                               f'{y_pred.shape} differ')
        if y_true.shape[1] != self.num_tasks:
            raise RuntimeError(f'expected {self.num_tasks} task(s), got '
                               f'{y_true.shape[1]}')
        return {self.eval_metric: METRICS[self.eval_metric](y_true, y_pred)}

    def __repr__(self):
        return (f'Evaluator(name={self.name!r}, metric={self.eval_metric!r}, '
                f'num_tasks={self.num_tasks})')
