"""One function per dataset family: real loader call → :class:`GraphDataset`.

Each ``load_<family>(spec, root, split, undirected, **kw)`` gets a writable
``root`` (see :mod:`ddl_gnn.data.root`) and calls the real PyG / OGB loader.
"""
import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import torch
import torch_geometric.transforms as T
from torch_geometric.utils import is_undirected as _is_undirected
from torch_geometric.utils import scatter

from ._ogb_compat import ogb_load_compat
from .dataset import GraphDataset
from .errors import CorruptFileError
from .evaluators import Evaluator
from .registry import DatasetSpec
from .splits import masks_split, stratified_split
from .synthetic import csbm_graph


def _symmetrise(data, undirected):
    """Apply ``T.ToUndirected()`` unless ``undirected`` is False; returns the
    data and whether its edge_index is symmetric."""
    sym = _is_undirected(data.edge_index, num_nodes=data.num_nodes)
    if undirected is not False and not sym:
        data = T.ToUndirected()(data)
        sym = True
    return data, sym


def _check_consistent(spec, data, root):
    """The per-node tensors of a loaded graph must agree in length and
    the edges must stay within the nodes: a raw file cut short (e.g. a
    feature file with half its rows) otherwise loads silently."""
    if root is None:
        return
    n = int(data.num_nodes)
    sizes = {k: int(getattr(data, k).size(0)) for k in (
        'x', 'y', 'train_mask', 'val_mask', 'test_mask')
        if torch.is_tensor(getattr(data, k, None))}
    bad = {k: v for k, v in sizes.items() if v != n}
    ei = data.edge_index
    top = int(ei.max()) if ei.numel() else -1
    if bad or top >= n or (ei.numel() and int(ei.min()) < 0):
        raise CorruptFileError(
            os.path.join(root, spec.subdir, 'raw'),
            f'the raw files of {spec.name!r} disagree: {n} nodes, but '
            f'{", ".join(f"{k} has {v} rows" for k, v in bad.items()) or ""}'
            f'{"; " if bad else ""}largest node index in the edges {top}; '
            f'one of {", ".join(os.path.basename(f) for f in spec.required[:3])}'
            f'{" ..." if len(spec.required) > 3 else ""} is truncated or '
            f'modified')


def _node(spec, data, split, split_index, undirected, root, num_classes,
          evaluator=None, **info):
    _check_consistent(spec, data, root)
    data, sym = _symmetrise(data, undirected)
    num_tasks = 1 if data.y.dim() == 1 else int(data.y.size(1))
    ev = evaluator or Evaluator(spec.name, spec.metric, num_tasks)
    return GraphDataset(
        name=spec.name, task='node', task_type=spec.task_type,
        metric=spec.metric, data=data, split=split, split_index=split_index,
        num_features=int(data.num_features), num_classes=num_classes,
        num_tasks=num_tasks, evaluator=ev, is_undirected=sym,
        root=None if root is None else str(root), info=info)


def _check_split(spec, split, n):
    if not 0 <= int(split) < n:
        raise ValueError(f'{spec.name} has {n} splits; split={split}')
    return int(split)


def load_csbm(spec: DatasetSpec, root: Optional[Path], split: int,
              undirected: Optional[bool], train: float = 0.6,
              valid: float = 0.2, **kw: Any) -> GraphDataset:
    import inspect
    known = set(inspect.signature(csbm_graph).parameters) | {'train',
                                                               'valid'}
    if set(kw) - known:
        raise TypeError(f"load_dataset('csbm'): unknown options "
                        f"{sorted(set(kw) - known)}; known: {sorted(known)}")
    data = csbm_graph(**kw)
    idx = stratified_split(data.y, seed=split, train=train, valid=valid)
    c = int(data.y.max()) + 1
    return _node(spec, data, idx, int(split), undirected, None, c,
                 generator_kwargs=kw)


def load_karate(spec: DatasetSpec, root: Optional[Path], split: int,
                undirected: Optional[bool]) -> GraphDataset:
    from torch_geometric.datasets import KarateClub
    ds = KarateClub()
    data = ds[0]
    train = data.train_mask.nonzero().view(-1)
    rest = (~data.train_mask).nonzero().view(-1)
    half = stratified_split(data.y, seed=split, train=0.5, valid=0.0,
                            nodes=rest)
    idx = {'train': train, 'valid': half['train'], 'test': half['test']}
    return _node(spec, data, idx, int(split), undirected, None,
                 ds.num_classes)


def load_planetoid(spec: DatasetSpec, root: Optional[Path], split: int,
                   undirected: Optional[bool]) -> GraphDataset:
    from torch_geometric.datasets import Planetoid
    ds = Planetoid(os.path.join(root, 'planetoid'), spec.arg)
    data = ds[0]
    return _node(spec, data, masks_split(data), None, undirected, root,
                 ds.num_classes)


def load_geom_gcn(spec: DatasetSpec, root: Optional[Path], split: int,
                  undirected: Optional[bool]) -> GraphDataset:
    from torch_geometric.datasets import Actor, WebKB, WikipediaNetwork
    base = os.path.join(root, 'geom_gcn')
    if spec.name == 'actor':
        ds = Actor(os.path.join(base, 'actor'))
    elif spec.name in ('chameleon', 'squirrel'):
        ds = WikipediaNetwork(base, spec.arg, geom_gcn_preprocess=True)
    else:
        ds = WebKB(base, spec.arg)
    data = ds[0]
    col = _check_split(spec, split, data.train_mask.size(1))
    return _node(spec, data, masks_split(data, col), col, undirected, root,
                 ds.num_classes, num_splits=int(data.train_mask.size(1)))


def load_heterophilous(spec: DatasetSpec, root: Optional[Path], split: int,
                       undirected: Optional[bool]) -> GraphDataset:
    from torch_geometric.datasets import HeterophilousGraphDataset
    ds = HeterophilousGraphDataset(os.path.join(root, 'heterophilous'),
                                   spec.arg)
    data = ds[0]
    col = _check_split(spec, split, data.train_mask.size(1))
    return _node(spec, data, masks_split(data, col), col, undirected, root,
                 ds.num_classes, num_splits=int(data.train_mask.size(1)),
                 note='evaluate with scores of class 1 (ROC-AUC)')


# yandex-research/heterophilous-graphs: Chameleon and Squirrel with their
# duplicate nodes removed (no PyG class reads them)
FILTERED_URL = ('https://github.com/yandex-research/heterophilous-graphs/'
                'raw/main/data')


def load_filtered_npz(spec: DatasetSpec, root: Optional[Path], split: int,
                      undirected: Optional[bool]) -> GraphDataset:
    """``ROOT/heterophilous/extra_npz/<arg>.npz`` (downloaded with PyG's
    ``download_url`` when absent): features, labels, each undirected edge
    once, 10 splits as [10, N] masks."""
    import numpy as np
    from torch_geometric.data import Data, download_url
    folder = os.path.join(root, spec.subdir)
    path = os.path.join(folder, f'{spec.arg}.npz')
    if not os.path.exists(path):
        download_url(f'{FILTERED_URL}/{spec.arg}.npz', folder)
    z = np.load(path)
    need = {'node_features', 'node_labels', 'edges', 'train_masks',
            'val_masks', 'test_masks'}
    if need - set(z.files):
        raise ValueError(f'{path} lacks {sorted(need - set(z.files))} (has '
                         f'{sorted(z.files)}): not a heterophilous-graphs '
                         f'npz')
    masks = {k: torch.from_numpy(z[f'{k}_masks']).t().contiguous()
             for k in ('train', 'val', 'test')}
    data = Data(x=torch.from_numpy(z['node_features']).float(),
                edge_index=torch.from_numpy(z['edges']).t().contiguous(),
                y=torch.from_numpy(z['node_labels']).long(),
                train_mask=masks['train'], val_mask=masks['val'],
                test_mask=masks['test'])
    col = _check_split(spec, split, data.train_mask.size(1))
    return _node(spec, data, masks_split(data, col), col, undirected, root,
                 int(data.y.max()) + 1,
                 num_splits=int(data.train_mask.size(1)))


def load_gnn_benchmark(spec: DatasetSpec, root: Optional[Path], split: int,
                       undirected: Optional[bool], train: int = 20,
                       valid: int = 30) -> GraphDataset:
    from torch_geometric.datasets import Amazon, Coauthor
    cls = Coauthor if spec.name.startswith('coauthor') else Amazon
    ds = cls(os.path.join(root, 'gnn_benchmark'), spec.arg)
    data = ds[0]
    idx = stratified_split(data.y, seed=split, train=train, valid=valid)
    return _node(spec, data, idx, int(split), undirected, root,
                 ds.num_classes)


def load_ogbn(spec: DatasetSpec, root: Optional[Path], split: int,
              undirected: Optional[bool]) -> GraphDataset:
    from ogb.nodeproppred import Evaluator as OgbEvaluator
    from ogb.nodeproppred import PygNodePropPredDataset
    with ogb_load_compat():
        ds = PygNodePropPredDataset(spec.arg, root=os.path.join(root, 'ogb'))
        idx = ds.get_idx_split()
    data = ds[0]
    info = {}
    if spec.name == 'ogbn-proteins':
        # Common practice (PyG/DGL examples): node features aggregated from
        # the 8-dim edge features; here the mean over incident edges.
        data.x = scatter(data.edge_attr, data.edge_index[1], dim=0,
                         dim_size=data.num_nodes, reduce='mean')
        info['num_edge_features'] = int(data.edge_attr.size(1))
        info['note'] = 'x = mean of incident edge features (8-dim)'
    if spec.task_type == 'multiclass' and data.y.dim() == 2:
        data.y = data.y.view(-1)
    nc = int(ds.num_classes) if spec.task_type == 'multiclass' else None
    out = _node(spec, data, idx, None, undirected, root, nc,
                evaluator=OgbEvaluator(spec.arg), **info)
    out.num_tasks = int(ds.num_tasks)
    return out


def load_ogbg(spec: DatasetSpec, root: Optional[Path], split: int,
              undirected: Optional[bool]) -> GraphDataset:
    from ogb.graphproppred import Evaluator as OgbEvaluator
    from ogb.graphproppred import PygGraphPropPredDataset
    with ogb_load_compat():
        ds = PygGraphPropPredDataset(spec.arg, root=os.path.join(root, 'ogb'))
        idx = ds.get_idx_split()
    return GraphDataset(
        name=spec.name, task='graph', task_type=spec.task_type,
        metric=spec.metric, dataset=ds, split=idx,
        num_features=int(ds.num_node_features), num_tasks=int(ds.num_tasks),
        num_classes=None, evaluator=OgbEvaluator(spec.arg), molecular=True,
        is_undirected=True, root=str(root),
        info={'num_edge_features': int(ds.num_edge_features)})


def load_lrgb(spec: DatasetSpec, root: Optional[Path], split: int,
              undirected: Optional[bool]) -> GraphDataset:
    from torch.utils.data import ConcatDataset
    from torch_geometric.datasets import LRGBDataset
    parts = {p: LRGBDataset(os.path.join(root, 'lrgb'), spec.arg, split=s)
             for p, s in (('train', 'train'), ('valid', 'val'),
                          ('test', 'test'))}
    idx, start = {}, 0
    for p, d in parts.items():
        idx[p] = torch.arange(start, start + len(d))
        start += len(d)
    first = parts['train']
    return GraphDataset(
        name=spec.name, task='graph', task_type=spec.task_type,
        metric=spec.metric, dataset=ConcatDataset(list(parts.values())),
        split=idx, num_features=int(first.num_node_features),
        num_tasks=int(first[0].y.size(-1)), num_classes=None,
        evaluator=Evaluator(spec.name, spec.metric, int(first[0].y.size(-1))),
        molecular=True, is_undirected=True, root=str(root),
        info={'subsets': parts,
              'num_edge_features': int(first.num_edge_features)})


def load_ogbl(spec: DatasetSpec, root: Optional[Path], split: int,
              undirected: Optional[bool]) -> GraphDataset:
    from ogb.linkproppred import Evaluator as OgbEvaluator
    from ogb.linkproppred import PygLinkPropPredDataset
    with ogb_load_compat():
        ds = PygLinkPropPredDataset(spec.arg, root=os.path.join(root, 'ogb'))
        edge_split = ds.get_edge_split()
    data = ds[0]
    data, sym = _symmetrise(data, undirected)
    return GraphDataset(
        name=spec.name, task='link', task_type=spec.task_type,
        metric=spec.metric, data=data, split=edge_split,
        num_features=int(data.num_features), num_tasks=1, num_classes=None,
        evaluator=OgbEvaluator(spec.arg), is_undirected=sym, root=str(root),
        info={'note': 'evaluator.eval({"y_pred_pos", "y_pred_neg"}) -> '
                      '{"hits@20"}'})


#: Family name (:attr:`DatasetSpec.family`) to its loader.
LOADERS: Dict[str, Callable[..., GraphDataset]] = {
    'csbm': load_csbm, 'karate': load_karate, 'planetoid': load_planetoid,
    'geom_gcn': load_geom_gcn, 'heterophilous': load_heterophilous,
    'filtered_npz': load_filtered_npz,
    'gnn_benchmark': load_gnn_benchmark, 'ogbn': load_ogbn,
    'ogbg': load_ogbg, 'lrgb': load_lrgb, 'ogbl': load_ogbl,
}
