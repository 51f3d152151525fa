r"""Predictable just-in-time builds of C++ extensions.

:func:`torch.utils.cpp_extension.load` guards its build folder with a
``lock`` file; a build that is killed leaves that file behind, and every
later load then waits for it forever, silently. Here a build runs under an
advisory :func:`fcntl.flock` on ``build.lock`` in the folder instead: the
operating system releases it when its holder exits, however it exits, so
the process holding it knows that a ``lock`` file it finds is stale,
removes it and says so. A process that has to wait for another one's build
says whom it waits for.

Build folders are keyed by everything a compiled module depends on (the
Python environment ``sys.prefix``, the Python and torch versions, the
compiler flags and the sources' bytes): two virtual environments never
rebuild each other's modules, and an edited source gets a new folder.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import shutil
import sys
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import IO, List, Sequence

#: The lock file :func:`torch.utils.cpp_extension.load` creates.
TORCH_LOCK = 'lock'
#: Our lock: held (``flock``) by the process that builds or loads.
OUR_LOCK = 'build.lock'


def cache_root() -> Path:
    """``$DDL_GNN_KERNELS_DIR``, else ``$XDG_CACHE_HOME/ddl_gnn/kernels``
    (``~/.cache/ddl_gnn/kernels``)."""
    if os.environ.get('DDL_GNN_KERNELS_DIR'):
        return Path(os.environ['DDL_GNN_KERNELS_DIR'])
    cache = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(cache) / 'ddl_gnn' / 'kernels'


def build_folder(name: str, sources: Sequence[Path],
                 flags: Sequence[str]) -> Path:
    """``cache_root()/<name>-<key>``: the key hashes the environment
    (``sys.prefix``, Python, torch), the flags and the sources, their
    paths as well as their bytes: the build files name the sources by
    path, so two copies of the package sharing a folder would rebuild the
    module each time the other loaded it."""
    import torch
    digest = hashlib.sha256()
    for part in (sys.prefix, platform.python_version(), torch.__version__,
                 ' '.join(flags)):
        digest.update(part.encode() + b'\0')
    for src in sources:
        digest.update(str(Path(src).resolve()).encode() + b'\0')
        digest.update(Path(src).read_bytes())
    return cache_root() / f'{name}-{digest.hexdigest()[:16]}'


def _ensure_ninja() -> None:
    """torch runs ``ninja`` from ``PATH``; the ``ninja`` wheel (a declared
    dependency) installs it next to the interpreter, which is not on
    ``PATH`` when a virtual environment's scripts run unactivated."""
    if shutil.which('ninja'):
        return
    try:
        import ninja
        extra = ninja.BIN_DIR
    except (ImportError, AttributeError):
        extra = os.path.dirname(sys.executable)
    os.environ['PATH'] = extra + os.pathsep + os.environ.get('PATH', '')


def _lock(fh: IO[str], folder: Path) -> None:
    """Takes the folder's lock, saying whom it waits for if it must."""
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or 'another process'
        print(f'ddl_gnn: waiting for {holder} to finish building in '
              f'{folder}', file=sys.stderr, flush=True)
        fcntl.flock(fh, fcntl.LOCK_EX)
    fh.seek(0)
    fh.truncate()
    fh.write(f'pid {os.getpid()}\n')
    fh.flush()


def load(name: str, sources: Sequence[Path], folder: Path,
         cflags: List[str], ldflags: List[str], what: str,
         seconds: int) -> ModuleType:
    """Builds (once per folder) and imports extension ``name``.

    Args:
        name: module name (the ``TORCH_EXTENSION_NAME`` of the sources).
        sources: C++ files.
        folder: build folder (:func:`build_folder`).
        cflags, ldflags: extra compiler and linker flags.
        what: what is built, for the first-build message.
        seconds: roughly how long a first build takes, for that message.

    Raises whatever the build raises (no compiler, no ``ninja``, a compile
    error); the caller decides on a fallback.
    """
    from torch.utils.cpp_extension import load as torch_load
    _ensure_ninja()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / OUR_LOCK, 'a+') as fh:
        _lock(fh, folder)
        stale = folder / TORCH_LOCK
        if stale.exists():     # we hold the lock: its builder is gone
            print(f'ddl_gnn: removing the lock left in {folder} by a build '
                  f'that was stopped', file=sys.stderr,
                  flush=True)
            stale.unlink()
        first = not (folder / f'{name}.so').exists()
        if first:
            print(f'ddl_gnn: building {what} (once per environment, about '
                  f'{seconds} s) in {folder}; set DDL_GNN_CPU_KERNELS=0 to '
                  f'skip', file=sys.stderr, flush=True)
        start = time.perf_counter()
        with warnings.catch_warnings():
            # torch's compiler checks warn on their own; the caller reports
            # a failed build once
            warnings.simplefilter('ignore')
            module = torch_load(name=name, sources=[str(s) for s in sources],
                                extra_cflags=cflags, extra_ldflags=ldflags,
                                build_directory=str(folder), verbose=False)
        if first:
            print(f'ddl_gnn: built {what} in '
                  f'{time.perf_counter() - start:.0f} s', file=sys.stderr,
                  flush=True)
    return module
