"""``load_dataset``: registry lookup, root and offline handling, loader call."""
import contextlib
import os
import shutil
import time
from pathlib import Path
from urllib.error import URLError

from . import peptides
from .errors import DatasetNotFoundError
from .loaders import LOADERS
from .registry import get_spec
from .root import missing_files, offline_mode, resolve_root, writable_root

_NET_ERRORS = (URLError, OSError, EOFError, ConnectionError, TimeoutError)


def load_dataset(name, root=None, split=0, *, download=None, undirected=None,
                 cache=None, normalize_features=False, **kwargs):
    """Load ``name`` through its real PyG / OGB loader.

    Args:
        name: a key of :data:`ddl_gnn.data.DATASETS` (case-insensitive).
        root: data root; default ``$DDL_GNN_DATA``, else
            ``~/.cache/ddl_gnn/data``.  Layout as in ``shared/data``.
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
        peptides.write_peptides_raw(src, work)
        missing = missing_files(work, spec.required)

    t0 = time.perf_counter()
    with _download_guard(spec, work, bool(missing)):
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
