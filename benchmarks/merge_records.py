"""Merge result records written elsewhere (a lent GPU, another machine)
into ``benchmarks/results/<name>/results.jsonl``, by run key.

    python benchmarks/merge_records.py SRC_ROOT [DST_ROOT]

``SRC_ROOT`` holds ``<name>/results.jsonl[.gz]`` folders (e.g. the unpacked
``campaign.tgz`` of ``benchmarks/gpu_campaign.sh``: ``.../benchmarks/results``).
A key already in the destination is kept as it is (the first finished run
of a configuration wins, as in a sweep); appends go through
:class:`~ddl_gnn.experiment.records.ResultStore` (file lock, atomic)."""
from __future__ import annotations

import sys
from pathlib import Path

from ddl_gnn.experiment.records import ResultStore, record_folders


def merge(src_root: Path, dst_root: Path) -> dict:
    added = {}
    for src in record_folders(src_root):
        store = ResultStore(dst_root / src.name)
        added[src.name] = sum(store.append(r)
                              for r in ResultStore(src).load())
    return added


if __name__ == '__main__':
    src = Path(sys.argv[1])
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else \
        Path(__file__).resolve().parent / 'results'
    for name, n in merge(src, dst).items():
        print(f'{name}: {n} records added')
