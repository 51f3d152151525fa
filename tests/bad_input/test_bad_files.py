"""Hostile and damaged dataset files: never run code, always name the file.

Each payload test plants an object whose unpickling would write a marker
file, loads the dataset through :func:`ddl_gnn.data.load_dataset` and
checks that the error names the file and says why, and that the marker was
never written.
"""
import os
import pickle

import numpy as np
import pytest
import torch

from ddl_gnn.data import load_dataset
from ddl_gnn.data.errors import (CorruptFileError, DatasetFileError,
                                 UnsafeFileError)
from ddl_gnn.data.safe_files import load_pickle, safe_loading

CORA = 'planetoid/Cora'
TEXAS = 'geom_gcn/texas'


def _refused(exc, path, marker, unsafe=True):
    """The error names ``path`` and its reason; no code ran."""
    assert not marker.exists(), 'the payload ran'
    assert isinstance(exc, UnsafeFileError if unsafe else CorruptFileError)
    assert isinstance(exc, ValueError)
    assert str(path) in str(exc)
    assert ('could run code' in str(exc)) == unsafe


def _plant_pickle(path, obj):
    with open(path, 'wb') as f:
        pickle.dump(obj, f, protocol=2)


# -- code execution -------------------------------------------------------

@pytest.mark.parametrize('name', ['pre_transform.pt', 'pre_filter.pt',
                                  'data.pt'])
def test_pyg_processed_payload(dataset_copy, payload, name):
    root = dataset_copy(CORA, processed=False)
    load_dataset('cora', root=root)            # writes processed/
    obj, marker = payload
    target = root / CORA / 'processed' / name
    torch.save(obj, target)
    with pytest.raises(UnsafeFileError) as info:
        load_dataset('cora', root=root)
    _refused(info.value, target, marker)
    assert 'weights-only' in str(info.value)


@pytest.mark.parametrize('part', ['x', 'graph', 'ally'])
def test_planetoid_raw_pickle_payload(dataset_copy, payload, part):
    root = dataset_copy(CORA, processed=False)
    obj, marker = payload
    target = root / CORA / 'raw' / f'ind.cora.{part}'
    _plant_pickle(target, obj)
    with pytest.raises(UnsafeFileError) as info:
        load_dataset('cora', root=root)
    _refused(info.value, target, marker)
    assert ".exec'" in str(info.value)


def test_planetoid_raw_pickles_still_load(dataset_copy):
    """The restricted unpickler reads the genuine files (processing from
    raw), with the published sizes."""
    root = dataset_copy(CORA, processed=False)
    ds = load_dataset('cora', root=root)
    assert ds.data.num_nodes == 2708 and ds.data.x.shape == (2708, 1433)
    assert ds.split['train'].numel() == 140


def test_peptides_split_pickle_payload(dataset_copy, payload):
    root = dataset_copy('lrgb/peptides_func_graphs_ogb.npz',
                        'lrgb/peptides-functional')
    obj, marker = payload
    target = (root / 'lrgb/peptides-functional/'
              'splits_random_stratified_peptide.pickle')
    _plant_pickle(target, {'train': obj, 'val': obj, 'test': obj})
    with pytest.raises(UnsafeFileError) as info:
        load_dataset('peptides-func', root=root)
    _refused(info.value, target, marker)


def test_peptides_split_of_wrong_shape(dataset_copy):
    root = dataset_copy('lrgb/peptides_func_graphs_ogb.npz',
                        'lrgb/peptides-functional')
    target = (root / 'lrgb/peptides-functional/'
              'splits_random_stratified_peptide.pickle')
    _plant_pickle(target, [1, 2, 3])
    with pytest.raises(CorruptFileError, match="keys 'train', 'val'") as info:
        load_dataset('peptides-func', root=root)
    assert str(target) in str(info.value)


def test_lrgb_raw_tensor_file_payload(dataset_copy, payload, data_root):
    if not (os.path.exists(os.path.join(data_root, 'lrgb/peptides-func/raw/'
                                        'train.pt'))):
        pytest.skip('Peptides-func raw files not written yet')
    root = dataset_copy('lrgb/peptides-func', processed=False)
    obj, marker = payload
    target = root / 'lrgb/peptides-func/raw/train.pt'
    torch.save([obj], target)
    with pytest.raises(UnsafeFileError) as info:
        load_dataset('peptides-func', root=root)
    _refused(info.value, target, marker)


def test_ogb_processed_payload(dataset_copy, payload):
    root = dataset_copy('ogb/ogbg_molbace')
    load_dataset('ogbg-molbace', root=root)           # processed/ exists
    obj, marker = payload
    target = root / 'ogb/ogbg_molbace/processed/geometric_data_processed.pt'
    torch.save(obj, target)
    with pytest.raises(UnsafeFileError) as info:
        load_dataset('ogbg-molbace', root=root)
    _refused(info.value, target, marker)


def test_restricted_unpickler_refuses_any_callable(tmp_path, payload):
    """Beyond ``exec``: ``os.system``, ``eval``, ``getattr`` chains."""
    _, marker = payload
    for reduce in ((os.system, (f'touch {marker}', )),
                   (eval, (f"open({str(marker)!r}, 'w')", )),
                   (getattr, ('text', 'upper'))):
        class Evil:
            def __reduce__(self, r=reduce):
                return r
        path = tmp_path / 'evil.pkl'
        _plant_pickle(path, {'a': [Evil()]})
        with pytest.raises(UnsafeFileError, match='could run code'):
            load_pickle(str(path))
        assert not marker.exists()


def test_restricted_unpickler_keeps_plain_data(tmp_path):
    import scipy.sparse as sp
    from collections import defaultdict
    graph = defaultdict(list, {0: [1, 2], 1: [0]})
    obj = dict(a=np.arange(5), m=sp.csr_matrix(np.eye(3, dtype=np.float32)),
               g=graph, t=(1, 2.5, 'x', None, True), s={1, 2})
    path = tmp_path / 'ok.pkl'
    for proto in (2, 4, 5):
        _plant_pickle(path, obj) if proto == 2 else path.write_bytes(
            pickle.dumps(obj, protocol=proto))
        back = load_pickle(str(path))
        assert np.array_equal(back['a'], obj['a'])
        assert (back['m'] != obj['m']).nnz == 0
        assert back['g'] == graph and back['t'] == obj['t']


def test_torch_load_inside_safe_loading_is_weights_only(tmp_path, payload):
    """A caller's weights_only=False is overridden inside the block, and
    torch.load is restored afterwards."""
    obj, marker = payload
    path = tmp_path / 'x.pt'
    torch.save(obj, path)
    before = torch.load
    with safe_loading():
        with pytest.raises(UnsafeFileError):
            torch.load(path, weights_only=False)
    assert torch.load is before and not marker.exists()


def test_config_cannot_move_the_data_root(tmp_path):
    from ddl_gnn.experiment.config import RunConfig
    for key in ('root', 'cache', 'download'):
        with pytest.raises(ValueError, match=f"may not set \\['{key}'\\]"):
            RunConfig(dataset='cora', model='res', depth=2,
                      dataset_kwargs={key: str(tmp_path)})


# -- damaged files -----------------------------------------------------------

def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


@pytest.mark.parametrize('name', ['out1_graph_edges.txt',
                                  'out1_node_feature_label.txt',
                                  'texas_split_0.6_0.2_3.npz'])
def test_truncated_raw_file_named_by_checksum(dataset_copy, name):
    root = dataset_copy(TEXAS, 'SHA256SUMS', processed=False)
    target = root / TEXAS / 'raw' / name
    _truncate(target)
    with pytest.raises(CorruptFileError, match='SHA-256') as info:
        load_dataset('texas', root=root)
    assert str(target) in str(info.value)


def test_truncated_feature_file_without_manifest(dataset_copy):
    """No SHA256SUMS: the lengths of x and of the split masks disagree."""
    root = dataset_copy(TEXAS, processed=False)
    raw = root / TEXAS / 'raw'
    _truncate(raw / 'out1_node_feature_label.txt')
    with pytest.raises(CorruptFileError, match='disagree') as info:
        load_dataset('texas', root=root)
    assert str(raw) in str(info.value)
    assert 'out1_node_feature_label.txt' in str(info.value)


# (dataset, its folder, the file to cut, build processed/ first, the path the
# error must name: the file itself, or the folder when the reader cannot
# say which file failed)
TRUNCATED = [
    ('cora', CORA, 'raw/ind.cora.x', False, 'file'),
    ('cora', CORA, 'raw/ind.cora.graph', False, 'file'),
    ('cora', CORA, 'raw/ind.cora.ty', False, 'file'),
    ('cora', CORA, 'processed/data.pt', True, 'file'),
    ('cora', CORA, 'processed/pre_transform.pt', True, 'file'),
    ('minesweeper', 'heterophilous/minesweeper', 'raw/minesweeper.npz',
     False, 'folder'),
    ('ogbg-molbace', 'ogb/ogbg_molbace', 'raw/edge.csv.gz', False, 'folder'),
]


@pytest.mark.parametrize('name, rel, cut, processed, named', TRUNCATED)
def test_truncated_file_is_named(dataset_copy, name, rel, cut, processed,
                                 named):
    """Without SHA256SUMS in the root: the reader's own failure."""
    root = dataset_copy(rel, processed=False)
    if processed:
        load_dataset(name, root=root)          # writes processed/
    target = root / rel / cut
    _truncate(target)
    with pytest.raises(DatasetFileError) as info:
        load_dataset(name, root=root)
    assert str(target if named == 'file' else root / rel) in str(info.value)
    if cut.startswith('processed/'):
        assert 'rebuilds it' in str(info.value)


def test_binary_garbage_raw_file(dataset_copy):
    root = dataset_copy(CORA, processed=False)
    target = root / CORA / 'raw' / 'ind.cora.allx'
    target.write_bytes(os.urandom(4096))
    with pytest.raises(DatasetFileError) as info:
        load_dataset('cora', root=root)
    assert str(target) in str(info.value)
