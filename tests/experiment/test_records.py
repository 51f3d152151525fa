"""ResultStore: the gzip archive of finished records (compact) is read like
the live JSONL file; resume keys, order and duplicates survive it."""
import gzip
import json

import pytest

from ddl_gnn.experiment.records import ResultStore


def _records(n, start=0):
    return [dict(key=f'k{i}', test=i / 10, curve=[i, i + 0.5])
            for i in range(start, start + n)]


def test_compact_round_trip_and_resume(tmp_path):
    store = ResultStore(tmp_path)
    recs = _records(5)
    assert all(store.append(r) for r in recs)
    assert store.compact() == 5
    assert not store.path.exists() and store.archive.exists()
    # the archive is plain gzip of the JSON lines, in append order
    lines = gzip.decompress(store.archive.read_bytes()).decode().splitlines()
    assert [json.loads(ln) for ln in lines] == recs
    assert store.load() == recs
    assert store.keys() == {r['key'] for r in recs}
    assert not store.append(recs[2])            # archived key: not again
    new = _records(2, start=5)
    assert all(store.append(r) for r in new)
    assert store.load() == recs + new           # archive first, then live
    assert store.compact() == 2 and store.compact() == 0
    assert ResultStore(tmp_path).load() == recs + new


def test_interrupted_compaction_keeps_each_key_once(tmp_path):
    """Killed after the archive was written, before the live file went:
    both hold the same records, which load once."""
    store = ResultStore(tmp_path)
    recs = _records(3)
    for r in recs:
        store.append(r)
    live = store.path.read_bytes()
    store.compact()
    store.path.write_bytes(live)
    assert store.load() == recs
    assert not store.append(recs[0])


def test_archive_parts_are_bounded_and_read_in_order(tmp_path):
    """A compaction that would grow the last part past part_bytes starts
    the next part; loads, keys and resume read every part in order."""
    store = ResultStore(tmp_path)
    store.part_bytes = 150
    batches = [_records(6, start=6 * b) for b in range(4)]
    for batch in batches:
        for r in batch:
            store.append(r)
        store.compact()
    parts = store.archives
    assert [p.name for p in parts][:2] == ['results.jsonl.gz',
                                            'results.jsonl.1.gz']
    assert len(parts) >= 3
    assert all(p.stat().st_size <= 150 for p in parts[:-1])
    everything = [r for batch in batches for r in batch]
    assert ResultStore(tmp_path).load() == everything
    from_parts = [json.loads(ln) for p in parts for ln in
                  gzip.decompress(p.read_bytes()).decode().splitlines()]
    assert from_parts == everything
    assert not store.append(everything[0])      # in the first part
    assert store.append(_records(1, start=99)[0])


def test_archive_bytes_do_not_depend_on_time(tmp_path):
    a, b = ResultStore(tmp_path / 'a'), ResultStore(tmp_path / 'b')
    for store in (a, b):
        for r in _records(4):
            store.append(r)
        store.compact()
    assert a.archive.read_bytes() == b.archive.read_bytes()


def test_damaged_files_are_errors_naming_the_file(tmp_path):
    store = ResultStore(str(tmp_path))
    store.append({'key': 'a', 'test': 0.5})
    store.compact()
    store.archive.write_bytes(b'not gzip at all')
    with pytest.raises(ValueError, match='results.jsonl.gz: not a readable'):
        store.load()
    store.archive.unlink()
    store.path.write_text('{"key": "b", "test": 0.1}\n{"key": "c", "te\n')
    with pytest.raises(ValueError, match=r'results.jsonl: a line is not'):
        store.keys()


def test_recorded_command_names_out_relative_to_the_working_directory(
        tmp_path, monkeypatch):
    """A record's command must rerun on another machine: an output folder
    under the working directory is written relative to it, one elsewhere
    as given."""
    from ddl_gnn.experiment.config import RunConfig, portable_path
    monkeypatch.chdir(tmp_path)
    inside = str(tmp_path / 'study' / 'results' / 'x')
    cfg = RunConfig(dataset='karate', model='delta', depth=3)
    assert cfg.command(inside).endswith(' --out study/results/x')
    assert portable_path('runs/a') == 'runs/a'
    elsewhere = str(tmp_path.parent / 'other')
    assert portable_path(elsewhere) == elsewhere
    assert cfg.command(elsewhere).endswith(f' --out {elsewhere}')
