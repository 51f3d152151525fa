"""Root resolution, read-only roots, missing datasets without network."""
import builtins
import os
import shutil
from pathlib import Path

import pytest

from ddl_gnn.data import DatasetNotFoundError, load_dataset, resolve_root


def _chmod_tree(path, dirs, files):
    for d, _, fs in os.walk(path):
        os.chmod(d, dirs)
        for f in fs:
            os.chmod(os.path.join(d, f), files)


def test_root_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv('DDL_GNN_DATA', str(tmp_path / 'a'))
    assert resolve_root() == (tmp_path / 'a').resolve()
    assert resolve_root(tmp_path / 'b') == (tmp_path / 'b').resolve()
    monkeypatch.delenv('DDL_GNN_DATA')
    assert resolve_root() == (tmp_path / 'cache').resolve()  # DDL_GNN_CACHE
    monkeypatch.delenv('DDL_GNN_CACHE')
    assert resolve_root() == Path('~/.cache/ddl_gnn/data').expanduser() \
        .resolve()


@pytest.mark.dataset
def test_read_only_root_is_copied_to_cache(data_root, tmp_path, monkeypatch):
    ro = tmp_path / 'ro'
    shutil.copytree(Path(data_root) / 'geom_gcn' / 'texas' / 'raw',
                    ro / 'geom_gcn' / 'texas' / 'raw')
    cache = tmp_path / 'cache2'
    monkeypatch.setenv('DDL_GNN_CACHE', str(cache))
    _chmod_tree(ro, 0o555, 0o444)
    try:
        ds = load_dataset('texas', root=ro, download=False)
        assert ds.root == str(cache.resolve())
        assert (ds.data.num_nodes, len(ds.split['train'])) == (183, 87)
        assert not (ro / 'geom_gcn' / 'texas' / 'processed').exists()
        assert (cache / 'geom_gcn' / 'texas' / 'processed').is_dir()
        again = load_dataset('texas', root=ro)  # reuses the cached copy
        assert again.root == ds.root
    finally:
        _chmod_tree(ro, 0o755, 0o644)


def _check_message(err, name, path):
    msg = str(err.value)
    assert name in msg and str(path) in msg
    assert 'download=True' in msg and 'DDL_GNN_DATA=' in msg
    assert 'ddl_gnn/data/README.md' in msg
    assert 'verify_data' not in msg      # a script users do not have
    assert isinstance(err.value, FileNotFoundError)


def test_missing_dataset_offline_mode(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv('DDL_GNN_OFFLINE', '1')
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset('cora', root=tmp_path)
    _check_message(err, 'cora', tmp_path / 'planetoid' / 'Cora')
    assert no_network == []  # refused before any loader ran
    with pytest.raises(DatasetNotFoundError):
        load_dataset('ogbg-molhiv', root=tmp_path, download=False)
    assert not (tmp_path / 'ogb').exists()
    with pytest.raises(DatasetNotFoundError) as err:   # no PyG class
        load_dataset('chameleon-filtered', root=tmp_path)
    _check_message(err, 'chameleon-filtered',
                   tmp_path / 'heterophilous' / 'extra_npz')


@pytest.mark.parametrize('name, folder', [
    ('pubmed', 'planetoid/PubMed'),
    ('ogbn-arxiv', 'ogb/ogbn_arxiv'),
    ('chameleon-filtered', 'heterophilous/extra_npz'),   # download_url
])
def test_missing_dataset_no_network_download_fails_cleanly(
        tmp_path, no_network, name, folder, monkeypatch):
    def no_stdin(*a, **k):
        raise AssertionError('stdin prompt')
    monkeypatch.setattr(builtins, 'input', no_stdin)
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset(name, root=tmp_path, download=True)
    _check_message(err, name, tmp_path / folder)
    assert 'download by the real loader failed' in str(err.value)
    assert no_network  # the real loader did try the network
    if name.startswith('ogbn'):  # no marker-less leftover → no prompt later
        assert not (tmp_path / folder).exists()
        with pytest.raises(DatasetNotFoundError):
            load_dataset(name, root=tmp_path, download=True)


def test_ogb_folder_without_release_marker_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / 'ogb' / 'ogbg_molbace' / 'raw'
    folder.mkdir(parents=True)
    (folder / 'edge.csv.gz').write_bytes(b'')

    def no_stdin(*a, **k):
        raise AssertionError('ogb prompted on stdin')
    monkeypatch.setattr(builtins, 'input', no_stdin)
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset('ogbg-molbace', root=tmp_path)
    assert 'RELEASE_v1.txt' in str(err.value)
    assert (folder / 'edge.csv.gz').exists()  # nothing deleted


def test_unknown_name():
    with pytest.raises(KeyError, match='known'):
        load_dataset('no-such-set')


def test_filtered_npz_without_its_arrays_is_named(tmp_path, monkeypatch):
    import numpy as np
    monkeypatch.setenv('DDL_GNN_OFFLINE', '1')
    folder = tmp_path / 'heterophilous' / 'extra_npz'
    folder.mkdir(parents=True)
    np.savez(folder / 'chameleon_filtered.npz', node_features=np.zeros((3, 2)))
    with pytest.raises(ValueError, match='lacks.*edges'):
        load_dataset('chameleon-filtered', root=tmp_path)
