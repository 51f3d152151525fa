"""Merge result records written on another machine into
``study/results/<name>/results.jsonl``, by run key, and the checkpoints of
runs cut off there (``<name>/checkpoints/<key>.pt``, see
``pack_checkpoints.py``) so that the next sweep resumes them.

    python study/tools/merge_records.py SRC_ROOT [DST_ROOT]

``SRC_ROOT`` holds ``<name>/results.jsonl[.gz]`` folders (e.g. the unpacked
``records.tgz`` of ``gpu_sweeps.sh``: ``.../study/results``).
A key already in the destination is kept as it is (the first finished run
of a configuration wins, as in a sweep); appends go through
:class:`~ddl_gnn.experiment.records.ResultStore` (file lock, atomic). A
checkpoint is copied only for a run without a record here and further
trained than any checkpoint of it here."""
from __future__ import annotations

import sys
from pathlib import Path

from folders import RESULTS, adopt_checkpoint, record_folders

from ddl_gnn.experiment.records import ResultStore


def merge(src_root: Path, dst_root: Path) -> dict:
    added = {}
    for src in record_folders(src_root):
        store = ResultStore(dst_root / src.name)
        added[src.name] = sum(store.append(r)
                              for r in ResultStore(src).load())
    return added


def merge_checkpoints(src_root: Path, dst_root: Path) -> dict:
    adopted: dict = {}
    for path in sorted(Path(src_root).glob('*/checkpoints/*.pt')):
        sweep = path.parent.parent.name
        adopted[sweep] = adopted.get(sweep, 0) + adopt_checkpoint(
            str(path), str(dst_root), sweep)
    return adopted


if __name__ == '__main__':
    src = Path(sys.argv[1])
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else RESULTS
    for name, n in merge(src, dst).items():
        print(f'{name}: {n} records added')
    for name, n in merge_checkpoints(src, dst).items():
        print(f'{name}: {n} checkpoints of unfinished runs adopted')
