"""Datasets for ddl_gnn through the real PyG / OGB loaders.

>>> from ddl_gnn.data import load_dataset
>>> ds = load_dataset('csbm', num_nodes=500, homophily=0.2, seed=0)
>>> ds.data, ds.split['train'].shape, ds.metric

See ``ddl_gnn/data/README.md`` for the table of datasets and paths.
"""
from typing import List, Optional

from . import peptides
from .dataset import GraphDataset
from .errors import DatasetNotFoundError
from .evaluators import Evaluator
from .load import load_dataset
from .registry import DATASETS, DatasetSpec, get_spec
from .root import PathLike, missing_files, resolve_root


def available_offline(root: Optional[PathLike] = None) -> List[str]:
    """Names whose files are all present under the root (plus the generated
    ones); Peptides-func counts when its compact copy is there."""
    root = resolve_root(root)
    out = []
    for name, spec in DATASETS.items():
        if spec.subdir is None or not missing_files(root, spec.required):
            out.append(name)
        elif spec.family == 'lrgb' and peptides.can_write_raw(root):
            out.append(name)
    return out


__all__ = ['load_dataset', 'GraphDataset', 'DatasetNotFoundError', 'DATASETS',
           'DatasetSpec', 'Evaluator', 'available_offline', 'get_spec',
           'resolve_root']
