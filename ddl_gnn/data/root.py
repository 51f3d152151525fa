"""Where datasets live: root resolution, offline mode, read-only roots.

Root order: the ``root`` argument, else ``$DDL_GNN_DATA``, else
``~/.cache/ddl_gnn/data``.  The layout under the root (``planetoid/``,
``geom_gcn/``, ``heterophilous/``, ``gnn_benchmark/``, ``lrgb/``, ``ogb/``)
is documented in ``ddl_gnn/data/README.md``.

Every real loader writes ``processed/`` next to ``raw/``.  When a dataset's
folder is not writable (e.g. a read-only CI mount) it is copied once to the
writable cache (``$DDL_GNN_CACHE``, else ``~/.cache/ddl_gnn/data``) with the
same layout, and loaded from there.
"""
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterable, List, Optional, Union

#: A folder or file given as a string or a path object.
PathLike = Union[str, os.PathLike]

DEFAULT_DIR = Path('~/.cache/ddl_gnn/data')


def default_cache() -> Path:
    return Path(os.environ.get('DDL_GNN_CACHE') or DEFAULT_DIR).expanduser()


def resolve_root(root: Optional[PathLike] = None) -> Path:
    """The data root: argument, else ``$DDL_GNN_DATA``, else the cache."""
    if root is None:
        root = os.environ.get('DDL_GNN_DATA') or default_cache()
    return Path(root).expanduser().resolve()


def offline_mode(download: Optional[bool] = None) -> bool:
    """``download=False`` or ``$DDL_GNN_OFFLINE`` in (1, true, yes) → True.

    ``download=True`` forces the real loader's download even when the
    environment says offline."""
    if download is not None:
        return not download
    return os.environ.get('DDL_GNN_OFFLINE', '').lower() in ('1', 'true',
                                                             'yes')


def missing_files(root: PathLike, relpaths: Iterable[str]) -> List[str]:
    return [p for p in relpaths if not (Path(root) / p).exists()]


def _dir_writable(d):
    """``os.access`` (catches read-only mounts) and at least one write bit
    (a folder chmod'ed to 0o555 counts as read-only even for root, for whom
    ``os.access`` always says yes)."""
    return (os.access(d, os.W_OK | os.X_OK)
            and bool(os.stat(d).st_mode & 0o222))


def _tree_writable(path):
    """True when ``path`` and every folder below it can be written to."""
    path = Path(path)
    if not path.exists():  # will be created by the loader: parent must be ok
        parent = path.parent
        while not parent.exists():
            parent = parent.parent
        return _dir_writable(parent)
    return all(_dir_writable(d) for d, _, _ in os.walk(path))


def writable_root(root: PathLike, dataset_dirs: Iterable[str],
                  cache: Optional[PathLike] = None) -> Path:
    """Return a root under which ``dataset_dirs`` (relative) can be written.

    If every folder in ``dataset_dirs`` is writable under ``root``, that is
    ``root``.  Otherwise each folder is copied (once) to the same relative
    place under the cache, and the cache is returned.  The copy is made in a
    temporary sibling and renamed, so an interrupted copy is never reused.
    """
    root = Path(root)
    if all(_tree_writable(root / d) for d in dataset_dirs):
        return root
    cache = Path(cache) if cache is not None else default_cache()
    cache = cache.expanduser().resolve()
    if cache == root.resolve():
        raise PermissionError(f'data root {root} is read-only and is also the '
                              'cache; set DDL_GNN_CACHE to a writable folder')
    for d in dataset_dirs:
        src, dst = root / d, cache / d
        if dst.exists() or not src.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.parent / f'.{dst.name}.tmp-{uuid.uuid4().hex[:8]}'
        try:
            shutil.copytree(src, tmp, copy_function=shutil.copy)
            for sub, _, files in os.walk(tmp):  # copied modes may be 0o555
                os.chmod(sub, 0o755)
                for f in files:
                    os.chmod(os.path.join(sub, f), 0o644)
            os.replace(tmp, dst)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return cache
