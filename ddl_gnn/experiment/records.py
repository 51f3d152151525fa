"""JSON-Lines result records: atomic appends, resume by run key."""
from __future__ import annotations

import fcntl
import gzip
import json
import os
import platform
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set

from .._checkout import git_sha


def environment(device: str = 'cpu') -> Dict[str, Any]:
    """Versions, device and git SHA stamped on every record: ``ddl_gnn``
    is the package version, ``git_sha`` its commit when it runs from its
    own checkout (:func:`~ddl_gnn._checkout.git_sha`)."""
    from .. import __version__
    import torch
    import torch_geometric
    try:
        import ogb
        ogb_version = ogb.__version__
    except ImportError:  # pragma: no cover
        ogb_version = None
    return dict(ddl_gnn=__version__, torch=torch.__version__,
                torch_geometric=torch_geometric.__version__, ogb=ogb_version,
                python=platform.python_version(), device=device,
                cpu=platform.processor() or platform.machine(),
                threads=torch.get_num_threads(), git_sha=git_sha())


class ResultStore:
    """``DIR/results.jsonl``: one JSON record per finished run.

    Appends rewrite the file through a temporary file and ``os.replace``
    under an exclusive lock, so a kill at any moment leaves either the old or
    the new file, never a torn line; several processes may share a store.

    :meth:`compact` moves the records into ``DIR/results.jsonl.gz`` (per-layer
    curves make a finished sweep's JSONL several MiB; gzip keeps about a
    quarter);
    :meth:`load` reads the archive and then the live file, and appends skip
    a key found in either.
    """

    def __init__(self, out_dir: str, name: str = 'results.jsonl'):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / name
        self.archive = self.dir / f'{name}.gz'
        self._lock_path = self.dir / f'.{name}.lock'

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._lock_path, 'a') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _archived(self) -> bytes:
        if not self.archive.exists():
            return b''
        try:
            return gzip.decompress(self.archive.read_bytes())
        except (OSError, EOFError) as err:  # BadGzipFile is an OSError
            raise ValueError(f"{self.archive}: not a readable gzip archive "
                             f"of result records ({err}); restore it from "
                             f"git or move it aside to rerun its runs"
                             ) from None

    def _live(self) -> bytes:
        return self.path.read_bytes() if self.path.exists() else b''

    def load(self) -> List[Dict[str, Any]]:
        """Archived records, then live ones; a key seen twice (a compaction
        killed between writing the archive and emptying the live file) is
        kept once."""
        records, seen = [], set()
        lines = [(self.archive, line) for line in
                 self._archived().decode().splitlines()]
        lines += [(self.path, line) for line in
                  self._live().decode().splitlines()]
        for where, line in lines:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: a line is not a JSON record "
                                 f"({err}): {line[:80]!r}") from None
            key = record.get('key')
            if key is not None:
                if key in seen:
                    continue
                seen.add(key)
            records.append(record)
        return records

    def keys(self) -> Set[str]:
        return {r['key'] for r in self.load() if 'key' in r}

    def _replace(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix='.results.')
        try:
            os.fchmod(fd, 0o644)              # mkstemp makes it 0600
            with os.fdopen(fd, 'wb') as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def append(self, record: Dict[str, Any]) -> bool:
        """Adds ``record`` unless a record with its ``key`` exists; returns
        whether it was written."""
        line = json.dumps(record, sort_keys=True, allow_nan=True) + '\n'
        with self._locked():
            old = self._live()
            if record.get('key'):
                needle = f'"key": "{record["key"]}"'.encode()
                if needle in old or needle in self._archived():
                    return False
            self._replace(self.path, old + line.encode())
        return True

    def compact(self) -> int:
        """Moves the live records into the gzip archive (byte-stable:
        no timestamp in the gzip header); returns how many moved."""
        with self._locked():
            live = self._live()
            moved = sum(1 for ln in live.splitlines() if ln.strip())
            if not moved:
                return 0
            data = self._archived() + live
            self._replace(self.archive,
                          gzip.compress(data, compresslevel=9, mtime=0))
            self.path.unlink()
        return moved


def record_folders(root: Path, name: str = 'results.jsonl') -> List[Path]:
    """The folders under ``root`` (one level) holding records, live
    (``name``) or archived (``name.gz``), sorted."""
    return sorted({p.parent for pattern in (name, f'{name}.gz')
                   for p in Path(root).glob(f'*/{pattern}')})
