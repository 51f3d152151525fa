"""The study's tools (``study/tools/``): result folders, record merges,
checkpoint packs."""
import shutil
import tarfile
from pathlib import Path

import pytest
import torch

from ddl_gnn.experiment.checkpoint import RunCheckpoint
from ddl_gnn.experiment.records import ResultStore


def _record(i):
    return {'key': f'k{i}', 'test': i / 10}


def test_record_folders_sees_live_and_archived(tmp_path, study_tool):
    record_folders = study_tool('folders').record_folders
    for name in ('live', 'archived', 'both'):
        ResultStore(tmp_path / name).append(_record(0))
    ResultStore(tmp_path / 'archived').compact()
    both = ResultStore(tmp_path / 'both')
    both.compact()
    both.append(_record(1))
    (tmp_path / 'empty').mkdir()
    shutil.copy(both.archive, tmp_path / 'empty' / 'other.gz')
    assert [p.name for p in record_folders(tmp_path)] == [
        'archived', 'both', 'live']


def test_merge_records_adds_new_keys_only(tmp_path, study_tool):
    """merge_records.py (records from another machine) reads archived and
    live sources and never writes a key twice."""
    mod = study_tool('merge_records')
    src, dst = ResultStore(tmp_path / 'src' / 'x'), ResultStore(
        tmp_path / 'dst' / 'x')
    for i in range(3):
        src.append(_record(i))
    src.compact()
    for i in range(3, 5):
        src.append(_record(i))
    dst.append(_record(0))
    dst.compact()
    assert mod.merge(tmp_path / 'src', tmp_path / 'dst') == {'x': 4}
    assert [r['key'] for r in dst.load()] == ['k0', 'k1', 'k2', 'k3', 'k4']
    assert mod.merge(tmp_path / 'src', tmp_path / 'dst') == {'x': 0}


def test_pack_fills_parts_most_trained_first_and_drops_stale_parts(
        tmp_path, study_tool):
    """Three pending checkpoints, room for one per part: with two parts the
    two most-trained runs travel (one per file), the third is left out; a
    later call needing one part removes the stale second file."""
    pack = study_tool('pack_checkpoints')
    root = tmp_path / 'results'
    for key, train_s in (('a', 30.0), ('b', 20.0), ('c', 10.0)):
        RunCheckpoint(str(root / 'sw' / 'checkpoints'), key).save(
            dict(epoch=int(train_s), train_s=train_s,
                 pad=torch.zeros(20000)))    # ~80 kB each
    out = str(tmp_path / 'ck.tgz')
    assert pack.part_path(out, 1) == str(tmp_path / 'ck.2.tgz')
    chosen = pack.pack(out, root, limit_mib=0.1, parts=2)
    assert [c['key'] for c in chosen] == ['a', 'b']

    def members(path):
        with tarfile.open(path) as tar:
            return tar.getnames()
    assert members(out) == ['study/results/sw/checkpoints/a.pt']
    assert members(pack.part_path(out, 1)) == [
        'study/results/sw/checkpoints/b.pt']
    ResultStore(str(root / 'sw')).append({'key': 'a'})   # a finished
    ResultStore(str(root / 'sw')).append({'key': 'b'})   # b finished
    assert [c['key'] for c in pack.pack(out, root, 0.1, parts=2)] == ['c']
    assert members(out) == ['study/results/sw/checkpoints/c.pt']
    assert not Path(pack.part_path(out, 1)).exists()
    with pytest.raises(ValueError, match='parts must be >= 1'):
        pack.pack(out, root, parts=0)


def test_tuning_budget_counts_configurations_once_over_seeds_and_folders(
        tmp_path, study_tool):
    """A configuration's seeds count once among the configurations; a run
    recorded in two folders counts once; other depths and sets are out."""
    from dataclasses import asdict

    from ddl_gnn.experiment.config import RunConfig
    mod = study_tool('tuning_budget')

    def rec(folder, model, depth, seed, lr=0.01, dataset='cora'):
        cfg = RunConfig(dataset=dataset, model=model, depth=depth,
                        seed=seed, lr=lr)
        ResultStore(tmp_path / folder).append(
            dict(key=cfg.key(), dataset=dataset, model=model, depth=depth,
                 config=asdict(cfg)))
    for s in range(3):
        rec('screen', 'delta', 64, s)
        rec('depth', 'delta', 64, s)                 # the same runs again
    rec('screen', 'delta', 64, 0, lr=0.005)
    rec('screen', 'gcnii', 64, 0)
    rec('screen', 'gcnii', 16, 0)
    rec('screen', 'gcnii', 64, 0, dataset='pubmed')
    counts = mod.budget(sorted(tmp_path.iterdir()), ['cora'], [64])
    assert counts == {('cora', 64, 'delta'): (2, 4),
                      ('cora', 64, 'gcnii'): (1, 1)}
    assert mod.table(counts)[2:] == ['| delta | 2 / 4 |', '| gcnii | 1 / 1 |']

