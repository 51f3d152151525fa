"""Fixtures for the data tests.

* ``data_root`` (``tests/conftest.py``): the offline data or a skip.
* ``no_network``: every socket connect / DNS lookup raises ``OSError``.
* ``ogbn_fixture_root`` / ``pubmed_fixture_root``: tiny graphs written in the
  exact on-disk formats of sets that are not shipped offline (ogbn-arxiv,
  ogbn-proteins: OGB nodeproppred raw CSVs; PubMed: Planetoid pickles), so
  that their real loader paths run.
"""
import gzip
import os
import pickle
import socket
from collections import defaultdict

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Never write to ~/.cache from tests; no stray offline setting."""
    monkeypatch.setenv('DDL_GNN_CACHE', str(tmp_path / 'cache'))
    monkeypatch.delenv('DDL_GNN_OFFLINE', raising=False)


@pytest.fixture
def no_network(monkeypatch):
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise OSError('network disabled by the test')

    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)
    monkeypatch.setattr(socket, 'getaddrinfo', refuse)
    return calls


def _csv_gz(path, rows, fmt='%d'):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arr = np.atleast_2d(np.asarray(rows))
    if arr.shape[0] == 1 and np.asarray(rows).ndim == 1:
        arr = arr.T
    with gzip.open(path, 'wt') as f:
        np.savetxt(f, arr, fmt=fmt, delimiter=',')


def write_ogbn(root, name, n=40, seed=0):
    """A tiny ``ogbn-arxiv`` / ``ogbn-proteins`` folder in the OGB raw layout
    (``raw/*.csv.gz``, ``split/<type>/*.csv.gz``, ``RELEASE_v1.txt``)."""
    rng = np.random.default_rng(seed)
    d = os.path.join(root, 'ogb', name.replace('-', '_'))
    raw = os.path.join(d, 'raw')
    src = rng.integers(0, n, 3 * n)
    dst = (src + rng.integers(1, n, 3 * n)) % n  # no self loops
    edges = np.unique(np.stack([src, dst], 1), axis=0)
    _csv_gz(f'{raw}/edge.csv.gz', edges)
    _csv_gz(f'{raw}/num-node-list.csv.gz', [n])
    _csv_gz(f'{raw}/num-edge-list.csv.gz', [len(edges)])
    if name == 'ogbn-arxiv':
        _csv_gz(f'{raw}/node-feat.csv.gz', rng.normal(size=(n, 128)), '%.6f')
        _csv_gz(f'{raw}/node-label.csv.gz', rng.integers(0, 40, n))
        _csv_gz(f'{raw}/node_year.csv.gz', rng.integers(2010, 2021, n))
        split = 'time'
    else:
        _csv_gz(f'{raw}/edge-feat.csv.gz', rng.random((len(edges), 8)),
                '%.3f')
        _csv_gz(f'{raw}/node-label.csv.gz', rng.integers(0, 2, (n, 112)))
        _csv_gz(f'{raw}/node_species.csv.gz', rng.integers(0, 8, n))
        split = 'species'
    perm = rng.permutation(n)
    a, b = n // 2, 3 * n // 4
    for part, idx in (('train', perm[:a]), ('valid', perm[a:b]),
                      ('test', perm[b:])):
        _csv_gz(f'{d}/split/{split}/{part}.csv.gz', np.sort(idx))
    with open(f'{d}/RELEASE_v1.txt', 'w') as f:
        f.write('# fixture\n')
    return dict(n=n, edges=len(edges), train=a, valid=b - a, test=n - b)


@pytest.fixture
def ogbn_fixture_root(tmp_path):
    root = tmp_path / 'fixture_data'
    sizes = {name: write_ogbn(str(root), name)
             for name in ('ogbn-arxiv', 'ogbn-proteins')}
    return str(root), sizes


def write_pubmed(root, n_train_per_class=2, n_all=560, n_test=40, f=20,
                 c=3, seed=0):
    """Planetoid ``ind.pubmed.*`` pickles of a tiny graph (PyG reads
    ``x``/``tx``/``allx`` as scipy sparse, ``y``/``ty``/``ally`` as one-hot
    arrays, ``graph`` as a dict of neighbour lists, ``test.index`` as text).
    Planetoid's validation set is the 500 nodes after the training nodes,
    hence ``n_all`` > 500."""
    import scipy.sparse as sp
    rng = np.random.default_rng(seed)
    raw = os.path.join(root, 'planetoid', 'PubMed', 'raw')
    os.makedirs(raw, exist_ok=True)
    n = n_all + n_test
    labels = rng.integers(0, c, n)
    n_tr = n_train_per_class * c
    labels[:n_tr] = np.repeat(np.arange(c), n_train_per_class)
    onehot = np.eye(c)[labels]
    feats = sp.csr_matrix(rng.random((n, f)).astype(np.float32))
    test_index = np.arange(n_all, n)[rng.permutation(n_test)]
    graph = defaultdict(list)
    for i in range(n):
        for j in rng.integers(0, n, 3):
            if j != i:
                graph[i].append(int(j))
                graph[int(j)].append(i)
    objs = {'x': feats[:n_tr], 'y': onehot[:n_tr], 'allx': feats[:n_all],
            'ally': onehot[:n_all], 'tx': feats[test_index],
            'ty': onehot[test_index], 'graph': graph}
    for k, v in objs.items():
        with open(os.path.join(raw, f'ind.pubmed.{k}'), 'wb') as fh:
            pickle.dump(v, fh, protocol=2)
    with open(os.path.join(raw, 'ind.pubmed.test.index'), 'w') as fh:
        fh.write('\n'.join(str(i) for i in test_index) + '\n')
    return dict(n=n, train=n_tr, valid=500, test=n_test, features=f,
                classes=c)


@pytest.fixture
def pubmed_fixture_root(tmp_path):
    root = tmp_path / 'fixture_data'
    return str(root), write_pubmed(str(root))
