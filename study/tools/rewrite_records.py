"""Rewriting records in place, for the tools that re-describe old runs when
a default changes (``name_paper_records.py``).

A record gets a new ``config`` and with it the ``key`` and ``command``
that :class:`RunConfig` gives that config (with the record's own ``--out``
and launcher); every other field and every other record is left byte for
byte. A file is rewritten (temporary file and ``os.replace`` under the
store's lock, an archive gzipped as :meth:`ResultStore.compact` writes it)
only when one of its records changes, so a second run changes nothing.
"""
from __future__ import annotations

import gzip
import json
import shlex
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

from ddl_gnn.experiment.config import RunConfig
from ddl_gnn.experiment.records import ResultStore

Record = Dict[str, Any]
#: ``change(record)``: ``None`` to leave it silently, ``(None, why)`` to
#: leave it and count why, ``(new_record, what)`` to write ``new_record``
#: (``what``: one label to count, or a tuple of them).
Change = Callable[[Record], Optional[Tuple[Optional[Record], Any]]]


def _launch(command: str) -> Tuple[str, Optional[int]]:
    """``(out, nproc)`` of a record's command (``nproc``: the torchrun
    process count, ``None`` for ``ddl-gnn train``)."""
    args = shlex.split(command)
    nproc = None
    if args[0] == 'torchrun':
        nproc = int(args[1].split('=', 1)[1])
    return args[args.index('--out') + 1], nproc


def with_config(record: Record, config: Dict[str, Any]) -> Record:
    """``record`` with ``config`` (and ``model`` from it), its key and its
    command; raises ``ValueError`` when the record's own ``key`` or
    ``command`` is not the one :class:`RunConfig` gives its old config
    (then nothing can be recomputed safely)."""
    out, nproc = _launch(record['command'])
    old = RunConfig(**record['config'])
    if old.key() != record['key'] or old.command(out, nproc) != \
            record['command']:
        raise ValueError('key or command is not the config\'s')
    cfg = RunConfig(**config)
    return dict(record, model=config['model'], config=config, key=cfg.key(),
                command=cfg.command(out, nproc))


def rewrite_folder(folder: Path, change: Change, check: bool) -> Counter:
    """Applies ``change`` to every record of ``folder`` (live file and
    archive parts); returns the counts of what changed and what was
    left. A new key that meets another record's key of the folder is
    left."""
    store, counts = ResultStore(str(folder)), Counter()
    # The store's own lock and atomic write: sweeps appending meanwhile
    # wait, and a kill leaves the old or the new file.
    with store._locked():
        texts = {p: (gzip.decompress(p.read_bytes()) if p.suffix == '.gz'
                     else p.read_bytes()).decode('utf-8')
                 for p in (*store.archives, store.path) if p.exists()}
        keys = Counter(json.loads(line).get('key') for text in texts.values()
                       for line in text.splitlines() if line.strip())
        writes = {}
        for path, text in texts.items():
            lines = text.splitlines(keepends=True)
            for i, line in enumerate(lines):
                if not line.strip():
                    continue
                outcome = change(json.loads(line))
                if outcome is None:
                    continue
                new, what = outcome
                if new is None:
                    counts[what] += 1
                    continue
                if keys[new['key']]:
                    counts['left: new key already in the folder'] += 1
                    continue
                keys[new['key']] += 1
                lines[i] = json.dumps(new, sort_keys=True) + (
                    '\n' if line.endswith('\n') else '')
                counts.update((what, ) if isinstance(what, str) else what)
                writes[path] = lines
        if not check:
            for path, lines in writes.items():
                data = ''.join(lines).encode('utf-8')
                if path.suffix == '.gz':
                    data = gzip.compress(data, compresslevel=9, mtime=0)
                store._replace(path, data)
    return counts
