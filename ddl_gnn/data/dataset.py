"""The uniform result of :func:`ddl_gnn.data.load_dataset`."""
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import torch


@dataclass
class GraphDataset:
    """One dataset, ready for training and evaluation.

    Attributes:
        name: registry name (``'cora'``, ``'ogbg-molhiv'``, ...).
        task: ``'node'``, ``'graph'`` or ``'link'``.
        task_type: ``'multiclass'``, ``'binary'``, ``'multilabel'`` or
            ``'regression'``.
        metric: ``'acc'``, ``'rocauc'``, ``'ap'``, ``'rmse'`` or ``'hits@20'``.
        data: the single ``Data`` graph (node and link tasks), else None.
            Node multiclass labels are 1-D ``[N]`` long for every dataset
            (ogbn-arxiv's ``[N, 1]`` is flattened); binary/multilabel node
            labels are as loaded.
        dataset: the PyG dataset of graphs (graph tasks), else None.  For
            Peptides-func a ``ConcatDataset`` of the train/val/test
            ``LRGBDataset``s; use :meth:`subset` for a split.
        split: ``{'train', 'valid', 'test'}`` → long index tensors of nodes
            (node tasks) or graphs (graph tasks); for link prediction the OGB
            edge split dict (``{'train': {'edge': ...}, 'valid': {'edge',
            'edge_neg'}, ...}``).
        split_index: which of several splits was taken (geom-gcn and
            heterophilous sets: column of the ``[N, 10]`` masks), or the seed
            of a random split (csbm, karate, Amazon/Coauthor); None when the
            dataset has one fixed split.
        num_features: input feature width (0 when there are no features,
            e.g. ogbl-ddi).
        num_classes: classes for multiclass, else None.
        num_tasks: label columns (1 for multiclass/binary single-task).
        evaluator: the real ``ogb`` ``Evaluator`` for OGB datasets, else
            :class:`ddl_gnn.data.evaluators.Evaluator` (same ``.eval``).
        molecular: True when ``x``/``edge_attr`` are OGB integer categorical
            atom/bond features (use ``AtomEncoder``/``BondEncoder``).
        is_undirected: whether ``data.edge_index`` is symmetric.
        root: the folder the files were loaded from (the cache copy when the
            data root was read-only); None for csbm.
        info: free-form extras (e.g. ``num_edge_features``, notes).
    """

    name: str
    task: str
    task_type: str
    metric: str
    split: Dict[str, Any]
    num_features: int
    num_tasks: int
    evaluator: Any
    data: Any = None
    dataset: Any = None
    num_classes: Optional[int] = None
    split_index: Optional[int] = None
    molecular: bool = False
    is_undirected: Optional[bool] = None
    root: Optional[str] = None
    info: Dict[str, Any] = field(default_factory=dict)

    def subset(self, part: str) -> Any:
        """The graphs of one split (graph tasks): ``'train'|'valid'|'test'``."""
        if self.task != 'graph':
            raise ValueError('subset() is for graph-level datasets; use '
                             'split[part] to index nodes')
        parts = self.info.get('subsets')
        if parts is not None:
            return parts[part]
        return self.dataset[self.split[part]]

    def eval(self, y_true: Any, y_pred: Any) -> float:
        """``evaluator.eval`` with 1-D inputs reshaped to ``[n, 1]``; returns
        the float value of :attr:`metric` (not for link prediction)."""
        def two_d(a):
            a = torch.as_tensor(a)
            return a.view(-1, 1) if a.dim() == 1 else a
        out = self.evaluator.eval({'y_true': two_d(y_true),
                                   'y_pred': two_d(y_pred)})
        return float(out[self.metric])

    def __repr__(self) -> str:
        size = (f'data={self.data}' if self.data is not None
                else f'graphs={len(self.dataset)}')
        return (f'GraphDataset(name={self.name!r}, task={self.task!r}, '
                f'task_type={self.task_type!r}, metric={self.metric!r}, '
                f'{size}, num_features={self.num_features}, '
                f'num_classes={self.num_classes}, num_tasks={self.num_tasks})')
