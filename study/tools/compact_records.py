"""Moves finished result records into their gzip archive
(``results.jsonl`` -> ``results.jsonl.gz``, then ``results.jsonl.1.gz``,
... past :attr:`ResultStore.part_bytes`; :meth:`ResultStore.compact`).

    python study/tools/compact_records.py [FOLDER ...]

Without arguments: every folder under ``study/results``. Readers
(sweeps' resume, reports, merges) see archived and live records alike, so
this may run at any time; a sweep still running keeps appending to the live
file (a process started before the archive existed would not see archived
keys: compact a folder when no sweep on it is running).
"""
from __future__ import annotations

import sys
from pathlib import Path

from folders import RESULTS, record_folders

from ddl_gnn.experiment.records import ResultStore

if __name__ == '__main__':
    folders = [Path(f) for f in sys.argv[1:]] or record_folders(RESULTS)
    for folder in folders:
        store = ResultStore(folder)
        moved = store.compact()
        parts = ', '.join(f'{p.name} {p.stat().st_size / 2**20:.2f} MiB'
                          for p in store.archives) or 'none'
        print(f'{folder.name}: {moved} records moved; archive {parts}')
