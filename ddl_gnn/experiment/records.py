"""JSON-Lines result records: atomic appends, resume by run key."""
from __future__ import annotations

import fcntl
import json
import os
import platform
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set


def git_sha() -> Optional[str]:
    """HEAD of the package's checkout; ``$DDL_GNN_GIT_SHA`` names it where
    the code runs from a copy without ``.git`` (a lent GPU machine)."""
    if os.environ.get('DDL_GNN_GIT_SHA'):
        return os.environ['DDL_GNN_GIT_SHA']
    try:
        out = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=Path(
            __file__).resolve().parent, capture_output=True, text=True,
                             timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: str = 'cpu') -> Dict[str, Any]:
    """Versions, device and git SHA stamped on every record."""
    import torch
    import torch_geometric
    try:
        import ogb
        ogb_version = ogb.__version__
    except ImportError:  # pragma: no cover
        ogb_version = None
    return dict(torch=torch.__version__,
                torch_geometric=torch_geometric.__version__, ogb=ogb_version,
                python=platform.python_version(), device=device,
                cpu=platform.processor() or platform.machine(),
                threads=torch.get_num_threads(), git_sha=git_sha())


class ResultStore:
    """``DIR/results.jsonl``: one JSON record per finished run.

    Appends rewrite the file through a temporary file and ``os.replace``
    under an exclusive lock, so a kill at any moment leaves either the old or
    the new file, never a torn line; several processes may share a store.
    """

    def __init__(self, out_dir: str, name: str = 'results.jsonl'):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / name
        self._lock_path = self.dir / f'.{name}.lock'

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._lock_path, 'a') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def load(self) -> List[Dict[str, Any]]:
        if not self.path.exists():
            return []
        records = []
        for line in self.path.read_text().splitlines():
            line = line.strip()
            if line:
                records.append(json.loads(line))
        return records

    def keys(self) -> Set[str]:
        return {r['key'] for r in self.load() if 'key' in r}

    def append(self, record: Dict[str, Any]) -> bool:
        """Adds ``record`` unless a record with its ``key`` exists; returns
        whether it was written."""
        line = json.dumps(record, sort_keys=True, allow_nan=True) + '\n'
        with self._locked():
            old = self.path.read_bytes() if self.path.exists() else b''
            if record.get('key') and f'"key": "{record["key"]}"'.encode() \
                    in old:
                return False
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix='.results.')
            try:
                os.fchmod(fd, 0o644)          # mkstemp makes it 0600
                with os.fdopen(fd, 'wb') as f:
                    f.write(old)
                    f.write(line.encode())
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        return True
