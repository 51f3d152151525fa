"""JSON-Lines result records: atomic appends, resume by run key."""
from __future__ import annotations

import fcntl
import gzip
import json
import math
import os
import platform
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set

from .. import __version__
from .._checkout import git_sha


def environment(device: str = 'cpu') -> Dict[str, Any]:
    """Versions, device and git SHA stamped on every record: ``ddl_gnn``
    is the package version, ``git_sha`` its commit when it runs from its
    own checkout (:func:`~ddl_gnn._checkout.git_sha`), ``dropout_masks``
    ``'hash'`` or ``'torch'`` (:mod:`ddl_gnn.ops.dropout`; a record
    without the field drew torch's)."""
    import torch
    import torch_geometric

    from ..ops.dropout import hash_dropout_enabled
    try:
        import ogb
        ogb_version = ogb.__version__
    except ImportError:  # pragma: no cover
        ogb_version = None
    return dict(ddl_gnn=__version__, torch=torch.__version__,
                torch_geometric=torch_geometric.__version__, ogb=ogb_version,
                python=platform.python_version(), device=device,
                cpu=platform.processor() or platform.machine(),
                threads=torch.get_num_threads(), git_sha=git_sha(),
                dropout_masks=('hash' if torch.device(device).type == 'cpu'
                               and hash_dropout_enabled() else 'torch'))


#: Record fields whose non-finite value means the run diverged.
SCORES = ('valid', 'test', 'train')


def _finite(value: Any) -> Any:
    """``value`` with every NaN/Inf float (at any depth) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def strict_record(record: Dict[str, Any]) -> Dict[str, Any]:
    """``record`` as strict JSON can hold it: NaN/Inf become ``null``, and
    ``diverged`` is set when a score or the loss curve was not finite (the
    training loop also sets it when it stops on a non-finite loss)."""
    def bad(v: Any) -> bool:
        return isinstance(v, float) and not math.isfinite(v)
    diverged = bool(record.get('diverged')) or any(
        bad(record.get(k)) for k in SCORES) or any(
            bad(v) for v in record.get('loss_curve') or [])
    out = _finite(record)
    if diverged or 'diverged' in record:
        out['diverged'] = diverged
    return out


def is_diverged(record: Dict[str, Any]) -> bool:
    """A diverged run: flagged, or (records written before the flag) a
    test score that is missing or not finite."""
    test = record.get('test')
    return bool(record.get('diverged')) or test is None or (
        isinstance(test, float) and not math.isfinite(test))


def has_score(record: Dict[str, Any]) -> bool:
    """Whether a run's test score is averaged in: a finite score, read at
    its best-validation epoch. A run that diverged after that epoch has
    one (the training loop keeps the best state of its finite epochs: the
    model early stopping returns); one that diverged before a finite
    evaluation, or a record written before the flag with a non-finite
    score, has none."""
    test = record.get('test')
    return (isinstance(test, (int, float)) and not isinstance(test, bool)
            and math.isfinite(test))


def _text(path: Path, data: bytes) -> str:
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError as err:
        raise ValueError(f'{path}: not a text file of JSON records ({err})'
                         ) from None


class ResultStore:
    """``DIR/results.jsonl``: one JSON record per finished run.

    Appends rewrite the file through a temporary file and ``os.replace``
    under an exclusive lock, so a kill at any moment leaves either the old or
    the new file, never a torn line; several processes may share a store.

    :meth:`compact` moves the records into ``DIR/results.jsonl.gz`` (per-layer
    curves make a finished sweep's JSONL several MiB; gzip keeps about a
    quarter). An archive part grows up to ``part_bytes`` compressed; the
    records that would pass that go to a new part (``results.jsonl.1.gz``,
    ``.2.gz``, ...), so no file of a tracked results folder grows without
    bound.
    :meth:`load` reads the archive parts in order and then the live file,
    and appends skip a key found in any of them.
    """
    #: Largest compressed size of an archive part that :meth:`compact`
    #: still appends to.
    part_bytes: int = 3 * 2 ** 19

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

    def _part(self, i: int) -> Path:
        return self.archive if i == 0 else self.dir / (
            f'{self.path.name}.{i}.gz')

    @property
    def archives(self) -> List[Path]:
        """The archive parts that exist, in order."""
        parts, i = [], 0
        while self._part(i).exists():
            parts.append(self._part(i))
            i += 1
        return parts

    @staticmethod
    def _unzip(path: Path) -> bytes:
        try:
            return gzip.decompress(path.read_bytes())
        except (OSError, EOFError) as err:  # BadGzipFile is an OSError
            raise ValueError(f"{path}: not a readable gzip archive "
                             f"of result records ({err}); restore it from "
                             f"git or move it aside to rerun its runs"
                             ) from None

    def _archived(self) -> bytes:
        return b''.join(self._unzip(p) for p in self.archives)

    def _live(self) -> bytes:
        if self.path.is_dir():
            raise ValueError(f'{self.path} is a folder; the result records '
                             f'need this name for a file')
        return self.path.read_bytes() if self.path.exists() else b''

    def load(self) -> List[Dict[str, Any]]:
        """Archived records, then live ones; a key seen twice (a compaction
        killed between writing the archive and emptying the live file) is
        kept once."""
        records, seen = [], set()
        lines = [(part, line) for part in self.archives for line in
                 _text(part, self._unzip(part)).splitlines()]
        lines += [(self.path, line) for line in
                  _text(self.path, self._live()).splitlines()]
        for where, line in lines:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: a line is not a JSON record "
                                 f"({err}): {line[:80]!r}") from None
            if not isinstance(record, dict):
                raise ValueError(f"{where}: a line is JSON but not a record "
                                 f"(an object with 'key', 'model', ...): "
                                 f"{line[:80]!r}")
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
        """Adds ``record`` (as :func:`strict_record`: strict JSON, never a
        bare ``NaN`` token) unless a record with its ``key`` exists;
        returns whether it was written."""
        line = json.dumps(strict_record(record), sort_keys=True,
                          allow_nan=False) + '\n'
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
            parts = self.archives
            last = parts[-1] if parts else self.archive
            data = gzip.compress((self._unzip(last) if parts else b'')
                                 + live, compresslevel=9, mtime=0)
            if parts and len(data) > self.part_bytes:   # a new part
                last = self._part(len(parts))
                data = gzip.compress(live, compresslevel=9, mtime=0)
            self._replace(last, data)
            self.path.unlink()
        return moved

