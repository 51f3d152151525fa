"""The study's result folders: which hold records, which records belong to
their config as it stands, and which runs were cut off (a checkpoint and no
record yet).

Every tool in this folder reads ``study/results/<name>/`` through these
functions; they use only :class:`~ddl_gnn.experiment.records.ResultStore`,
:class:`~ddl_gnn.experiment.checkpoint.RunCheckpoint` and the sweep-config
expansion of :mod:`ddl_gnn.experiment.sweep`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ddl_gnn.experiment.checkpoint import RunCheckpoint
from ddl_gnn.experiment.records import ResultStore
from ddl_gnn.experiment.sweep import expand, load_config

STUDY = Path(__file__).resolve().parents[1]
RESULTS = STUDY / 'results'
CONFIGS = STUDY / 'configs'

Record = Dict[str, Any]


def record_folders(root: Path, name: str = 'results.jsonl') -> List[Path]:
    """The folders under ``root`` (one level) holding records, live
    (``name``) or archived (``name.gz``), sorted."""
    return sorted({p.parent for pattern in (name, f'{name}.gz')
                   for p in Path(root).glob(f'*/{pattern}')})


def split_current(records: Sequence[Record], config_path: str
                  ) -> Tuple[List[Record], List[Record]]:
    """``(current, stale)``: the records whose run key the config file at
    ``config_path`` still expands to, and the others (written under an
    older version of the config: a changed hyper-parameter gives new keys,
    while the old records stay in the JSONL)."""
    keys = {c.key() for c in expand(load_config(config_path))}
    current = [r for r in records if r.get('key') in keys]
    return current, [r for r in records if r.get('key') not in keys]


def current_records(folder: Path, configs: Optional[Path] = CONFIGS
                    ) -> List[Record]:
    """The records of ``folder``; when ``configs`` holds a config named
    like the folder, only those of that config as it stands (``None``:
    every record). A folder without records gives ``[]``."""
    folder = Path(folder)
    if not any((folder / n).exists()
               for n in ('results.jsonl', 'results.jsonl.gz')):
        return []          # ResultStore would create the folder
    records = ResultStore(str(folder)).load()
    if configs is None:
        return records
    config = Path(configs) / f'{folder.name}.toml'
    return split_current(records, str(config))[0] if config.exists() \
        else records


def pending_checkpoints(root: str) -> List[Dict[str, Any]]:
    """The checkpoints under ``root/<sweep>/checkpoints/`` whose run has no
    record in ``root/<sweep>`` yet (runs in flight or cut off), most
    training seconds first: ``dict(sweep, key, path, epoch, train_s,
    bytes, run)`` (``run``: model, depth, seed, epochs)."""
    found = []
    for folder in sorted(Path(root).glob('*/checkpoints')):
        done = ResultStore(str(folder.parent)).keys()
        for path in sorted(folder.glob('*.pt')):
            if path.stem in done:
                continue
            state = RunCheckpoint(str(folder), path.stem).load()
            found.append(dict(sweep=folder.parent.name, key=path.stem,
                              path=str(path), epoch=state['epoch'],
                              train_s=state['train_s'],
                              bytes=path.stat().st_size,
                              run=state.get('run', {})))
    return sorted(found, key=lambda c: -c['train_s'])


def adopt_checkpoint(path: str, root: str, sweep: str) -> bool:
    """Copies the checkpoint file ``path`` (from another machine) into
    ``root/sweep/checkpoints/`` unless that sweep already has the run's
    record or a checkpoint of it at the same or a later epoch. Returns
    whether it was copied."""
    key = Path(path).stem
    state = RunCheckpoint(str(Path(path).parent), key).load()
    dst = RunCheckpoint(os.path.join(root, sweep, 'checkpoints'), key)
    if state is None or key in ResultStore(os.path.join(root, sweep)).keys():
        return False
    have = dst.load()
    if have is not None and have['epoch'] >= state['epoch']:
        return False
    dst.save(state)                  # atomic: temporary file, os.replace
    return True
