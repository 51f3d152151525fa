"""Claims: one process trains a run key at a time, across processes and
machines writing one sweep folder.

Two sweeps on one ``--out`` (``--shard`` on several machines, a rerun
started while the first still runs) both see a run without a record. The
result store keeps a single record per key, but both would train it, and a
checkpointed run would be resumed by one process from the other's file.
Before training a run, :func:`~.sweep.run_sweep` takes its claim,
``<out>/claims/<key>.claim``, created with ``O_CREAT | O_EXCL`` and holding
the holder's host, pid and start time; a run whose claim is held by a live
process is left to it.

A claim is stale, and is taken over, when its holder is gone: on the same
host when its pid no longer runs; from another host when it has not been
refreshed for ``stale_after_s`` seconds (a holder refreshes its claim's
modification time every ``refresh_s`` seconds from a background thread).
The stale check and the takeover run under an ``flock`` on
``claims/.lock``, so two processes never both take over one claim.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


class RunClaim:
    """The claim of run ``key`` in ``folder`` (``<out>/claims``).

    Args:
        folder: where the claims of a sweep live.
        key: the run key (:meth:`~.config.RunConfig.key`).
        stale_after_s: a claim from another host not refreshed for this long
            is taken over. (default: :obj:`600.`)
        refresh_s: how often a held claim is refreshed. (default: :obj:`60.`)
    """

    def __init__(self, folder: str, key: str, stale_after_s: float = 600.0,
                 refresh_s: float = 60.0):
        if not refresh_s > 0 or not stale_after_s > refresh_s:
            raise ValueError(f"need 0 < refresh_s < stale_after_s, got "
                             f"refresh_s={refresh_s}, "
                             f"stale_after_s={stale_after_s}")
        self.folder, self.key = folder, key
        self.path = os.path.join(folder, f'{key}.claim')
        self.stale_after_s, self.refresh_s = stale_after_s, refresh_s
        self._stop: Optional[threading.Event] = None

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.path!r})'

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(os.path.join(self.folder, '.lock'), 'a') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def holder(self) -> Optional[Dict[str, Any]]:
        """The holder's ``host``, ``pid``, ``time`` (``{}`` when the file
        cannot be parsed: a claim cut off while being written), or None
        when the run is not claimed."""
        try:
            with open(self.path) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        try:
            info = json.loads(text)
        except ValueError:
            return {}
        return info if isinstance(info, dict) else {}

    def _stale(self, info: Dict[str, Any]) -> bool:
        try:
            age = time.time() - os.stat(self.path).st_mtime
        except FileNotFoundError:
            return True
        if info.get('host') == socket.gethostname() and isinstance(
                info.get('pid'), int):
            return info['pid'] == os.getpid() or not _alive(info['pid'])
        return age > self.stale_after_s

    def acquire(self) -> bool:
        """Takes the claim (or a stale one); False when a live process
        holds it."""
        os.makedirs(self.folder, exist_ok=True)
        with self._locked():
            info = self.holder()
            if info is not None:
                if not self._stale(info):
                    return False
                os.unlink(self.path)
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                         0o644)
            with os.fdopen(fd, 'w') as f:
                json.dump(dict(host=socket.gethostname(), pid=os.getpid(),
                               time=time.time()), f)
        self._stop = threading.Event()
        threading.Thread(target=self._refresh, args=(self._stop, ),
                         daemon=True).start()
        return True

    def _refresh(self, stop: threading.Event) -> None:
        while not stop.wait(self.refresh_s):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                return

    def release(self) -> None:
        """Gives the claim up (only a claim this object holds)."""
        if self._stop is None:
            return
        self._stop.set()
        self._stop = None
        with self._locked():
            info = self.holder()
            if info and info.get('pid') == os.getpid() and \
                    info.get('host') == socket.gethostname():
                os.unlink(self.path)
