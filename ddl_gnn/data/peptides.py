"""Peptides-func raw files from a compact copy under the data root.

``LRGBDataset(ROOT/lrgb, 'Peptides-func')`` reads
``ROOT/lrgb/peptides-func/raw/{train,val,test}.pt`` (lists of
``(x, edge_attr, edge_index, y)`` tuples).  They are 358 MB, so the offline
layout may hold ``lrgb/peptides_func_graphs_ogb.npz`` (OGB ``smiles2graph``
of every SMILES) plus the official split pickle instead;
:func:`write_peptides_raw` writes the raw files from them.  If a raw file is missing, PyG's
``LRGBDataset.download`` deletes ``raw/`` before downloading: so we write them
first whenever the compact copy is there.
"""
import os

import numpy as np
import torch

from .errors import CorruptFileError
from .root import PathLike
from .safe_files import load_pickle

NPZ = os.path.join('lrgb', 'peptides_func_graphs_ogb.npz')
SPLIT = os.path.join('lrgb', 'peptides-functional',
                     'splits_random_stratified_peptide.pickle')
RAW = os.path.join('lrgb', 'peptides-func', 'raw')


def can_write_raw(src_root: PathLike) -> bool:
    """Whether ``src_root`` holds the compact copy (graphs and split)."""
    return all(os.path.exists(os.path.join(src_root, p)) for p in (NPZ, SPLIT))


def write_peptides_raw(src_root: PathLike, dst_root: PathLike) -> str:
    """Read the compact copy under ``src_root``, write raw files under
    ``dst_root`` (the two may be the same folder); returns the raw folder."""
    z = np.load(os.path.join(src_root, NPZ))
    # The official split is a pickle: read it with the restricted
    # unpickler (numpy arrays and plain containers only).
    split_path = os.path.join(src_root, SPLIT)
    split = load_pickle(split_path)
    if not isinstance(split, dict) or not all(
            isinstance(split.get(p), np.ndarray) for p in ('train', 'val',
                                                           'test')):
        raise CorruptFileError(split_path, "expected a dict of index arrays "
                               "with keys 'train', 'val', 'test'")
    n_off = np.concatenate([[0], np.cumsum(z['num_nodes'], dtype=np.int64)])
    e_off = np.concatenate([[0], np.cumsum(z['num_edges'], dtype=np.int64)])
    x_all, ei_all = z['node_feat'], z['edge_index']
    ea_all, y_all = z['edge_feat'], z['y_func']
    raw = os.path.join(dst_root, RAW)
    os.makedirs(raw, exist_ok=True)
    for part in ('train', 'val', 'test'):
        graphs = []
        for i in split[part].tolist():
            n0, n1, e0, e1 = n_off[i], n_off[i + 1], e_off[i], e_off[i + 1]
            graphs.append((
                torch.from_numpy(x_all[n0:n1].astype(np.int64)),
                torch.from_numpy(ea_all[e0:e1].astype(np.int64)),
                torch.from_numpy(ei_all[:, e0:e1].astype(np.int64)),
                torch.from_numpy(y_all[i:i + 1].copy()),
            ))
        tmp = os.path.join(raw, f'.{part}.pt.tmp')
        torch.save(graphs, tmp)
        os.replace(tmp, os.path.join(raw, f'{part}.pt'))
    return raw
