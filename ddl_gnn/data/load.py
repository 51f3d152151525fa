"""``load_dataset``: registry lookup, root and offline handling, loader call."""
import contextlib
import hashlib
import os
import pickle
import shutil
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any, Optional, Sequence
from urllib.error import URLError

from . import peptides
from .dataset import GraphDataset
from .errors import CorruptFileError, DatasetFileError, DatasetNotFoundError
from .loaders import LOADERS
from .registry import get_spec
from .root import (PathLike, missing_files, offline_mode, resolve_root,
                   writable_root)
from .safe_files import safe_loading

_NET_ERRORS = (URLError, OSError, EOFError, ConnectionError, TimeoutError)


def load_dataset(name: str, root: Optional[PathLike] = None, split: int = 0,
                 *, download: Optional[bool] = None,
                 undirected: Optional[bool] = None,
                 cache: Optional[PathLike] = None,
                 normalize_features: bool = False,
                 **kwargs: Any) -> GraphDataset:
    """Load ``name`` through its real PyG / OGB loader.

    Args:
        name: a key of :data:`ddl_gnn.data.DATASETS` (case-insensitive).
        root: data root; default ``$DDL_GNN_DATA``, else
            ``~/.cache/ddl_gnn/data``.  Layout: ``ddl_gnn/data/README.md``.
        split: which split: a column of the 10 stored splits (geom-gcn and
            heterophilous sets), the seed of a random stratified split (csbm,
            karate, Amazon, Coauthor); ignored for sets with one official
            split (Planetoid, OGB, Peptides-func).
        download: ``False`` forbids downloads (missing files raise
            :class:`DatasetNotFoundError` before any loader runs); ``True``
            lets the real loader download; ``None`` (default): offline when
            ``$DDL_GNN_OFFLINE`` is 1/true/yes.  A download that fails
            (no network) is also re-raised as ``DatasetNotFoundError``.
        undirected: ``None``/``True`` symmetrises directed single graphs with
            ``T.ToUndirected()`` (WebKB, chameleon, squirrel, actor,
            ogbn-arxiv are directed as loaded); ``False`` keeps them as
            loaded.  Check ``GraphDataset.is_undirected``.
        cache: writable folder used when the root is read-only (default
            ``$DDL_GNN_CACHE``, else ``~/.cache/ddl_gnn/data``).
        normalize_features: row-normalise node features to sum 1
            (``T.NormalizeFeatures()``, the GCN/GCNII papers' Planetoid
            preprocessing); single-graph datasets only.
        **kwargs: family options, e.g. csbm ``num_nodes``, ``num_classes``,
            ``num_features``, ``avg_degree``, ``homophily``, ``feature_snr``,
            ``seed``, ``train``, ``valid``; Amazon/Coauthor ``train``/``valid``
            counts per class.

    Returns:
        :class:`ddl_gnn.data.GraphDataset`.  ``info['load_seconds']`` holds the
        wall time of the loader call.
    """
    if not isinstance(name, str):
        raise TypeError(f"load_dataset: 'name' must be a dataset name (str), "
                        f"got {type(name).__name__}")
    spec = get_spec(name)
    fn = LOADERS[spec.family]
    if normalize_features:
        return _normalized(load_dataset(name, root, split, download=download,
                                        undirected=undirected, cache=cache,
                                        **kwargs))
    if spec.subdir is None:  # generated / built in: no files
        t0 = time.perf_counter()
        out = fn(spec, None, split, undirected, **kwargs)
        out.info['load_seconds'] = time.perf_counter() - t0
        return out

    src = resolve_root(root)
    offline = offline_mode(download)
    _check_ogb_marker(spec, src)
    missing = missing_files(src, spec.required)
    can_make = spec.family == 'lrgb' and peptides.can_write_raw(src)
    if missing and offline and not can_make:
        raise DatasetNotFoundError(
            spec.name, src / spec.subdir, missing,
            reason='offline mode (download=False or DDL_GNN_OFFLINE=1)',
            how=f'loader: {spec.loader}')

    work = writable_root(src, [spec.subdir], cache=cache)
    if missing and can_make:
        work = writable_root(src, [peptides.RAW], cache=cache)
        verify_checksums(src, [peptides.NPZ, peptides.SPLIT])
        peptides.write_peptides_raw(src, work)
        missing = missing_files(work, spec.required)
    if not missing and _will_process(work / spec.subdir):
        verify_checksums(src, [spec.subdir])

    t0 = time.perf_counter()
    with _download_guard(spec, work, bool(missing)), \
            _file_errors(work / spec.subdir, bool(missing)), safe_loading():
        out = fn(spec, work, split, undirected, **kwargs)
    out.info['load_seconds'] = time.perf_counter() - t0
    return out


def _normalized(ds):
    import torch_geometric.transforms as T
    if ds.data is None or ds.data.x is None or \
            not ds.data.x.is_floating_point():
        raise ValueError(f'normalize_features: {ds.name!r} has no float node '
                         f'feature matrix of a single graph to normalise')
    ds.data = T.NormalizeFeatures()(ds.data.clone())
    ds.info['normalize_features'] = True
    return ds


def _check_ogb_marker(spec, root):
    """ogb asks on stdin and may delete a folder that lacks RELEASE_v1.txt:
    refuse before ogb gets there."""
    if not spec.family.startswith('ogb'):
        return
    folder = Path(root) / spec.subdir
    marker = folder / 'RELEASE_v1.txt'
    if folder.is_dir() and not marker.exists():
        raise DatasetNotFoundError(
            spec.name, folder, [str(marker.relative_to(root))],
            reason='the OGB folder exists but has no RELEASE_v1.txt; ogb would '
                   'prompt on stdin and delete the folder',
            how='add the release marker from the official zip, or remove '
                'the folder so that the loader downloads it again')


@contextlib.contextmanager
def _download_guard(spec, root, will_download):
    """Turn a failed download into DatasetNotFoundError, and remove the
    empty folders the failed loader left behind (an empty OGB folder without
    its marker would make the next run prompt on stdin)."""
    folder = Path(root) / spec.subdir
    existed = folder.exists()
    try:
        yield
    except _NET_ERRORS as e:
        if not will_download or isinstance(e, DatasetNotFoundError):
            raise
        if not existed and folder.exists() and not any(
                f for _, _, fs in os.walk(folder) for f in fs):
            shutil.rmtree(folder, ignore_errors=True)
        raise DatasetNotFoundError(
            spec.name, folder, missing_files(root, spec.required),
            reason=f'download by the real loader failed: '
                   f'{type(e).__name__}: {e}',
            how=f'loader: {spec.loader}') from e


#: What a reader raises on a truncated or foreign file (and never on a
#: user's argument): re-raised as CorruptFileError naming the folder.
_FILE_ERRORS = (EOFError, zipfile.BadZipFile, pickle.UnpicklingError,
                zlib.error, UnicodeDecodeError)


@contextlib.contextmanager
def _file_errors(folder, will_download):
    """Name the dataset folder when a reader fails on a damaged file
    without saying which (numpy's BadZipFile, pickle's EOFError, ...)."""
    try:
        yield
    except _FILE_ERRORS as err:
        if will_download or isinstance(err, DatasetFileError):
            raise
        raise CorruptFileError(
            folder, f'a file under it is truncated or not in the expected '
            f'format ({type(err).__name__}: {str(err)[:200]}); compare the '
            f'files with the data\'s SHA256SUMS or fetch them again'
        ) from None


def _will_process(folder):
    """True when ``folder`` holds no processed files yet, i.e. the loader
    is about to read the raw ones."""
    return not any(files for d, _, files in os.walk(folder)
                   if os.path.basename(d) == 'processed')


def verify_checksums(root: PathLike, prefixes: Sequence[str]) -> None:
    """Checks the files under ``root`` whose paths start with one of
    ``prefixes`` against ``root/SHA256SUMS`` (the data's manifest; roots
    without one are not checked). A file that differs, e.g. one cut short
    by a failed copy, raises :class:`CorruptFileError` naming it."""
    sums = Path(root) / 'SHA256SUMS'
    if not sums.is_file():
        return
    for line in sums.read_text(errors='replace').splitlines():
        parts = line.split(None, 1)
        if len(parts) != 2:
            continue
        digest, rel = parts[0].lower(), parts[1].strip().lstrip('*')
        if not any(rel == p or rel.startswith(p.rstrip('/') + '/')
                   for p in prefixes):
            continue
        path = Path(root) / rel
        if not path.is_file():
            continue
        h = hashlib.sha256()
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                h.update(block)
        if h.hexdigest() != digest:
            raise CorruptFileError(
                path, f'its SHA-256 ({h.hexdigest()[:16]}…, '
                f'{path.stat().st_size} bytes) differs from the one in '
                f'{sums} ({digest[:16]}…): the file is truncated or '
                f'modified; fetch it again')
