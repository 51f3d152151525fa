"""Reading dataset files without running code from them.

A pickle can name any importable callable and have the unpickler call it,
so a data folder received from elsewhere (or a sweep config pointing at
one) is enough to run code when a loader unpickles a file. Three loaders
on the data path unpickle:

* PyG's ``InMemoryDataset.load`` (``processed/data.pt``): weights-only
  first, but it retries with ``weights_only=False`` when the file names a
  global outside torch's allow-list;
* PyG's ``Dataset._process`` (``processed/pre_transform.pt``,
  ``pre_filter.pt``): always ``weights_only=False``;
* the Planetoid raw files (``raw/ind.<name>.*``) and the Peptides-func
  split file: plain ``pickle.load``.

:func:`safe_loading` wraps a loader call so that every ``torch.load`` is
weights-only (whatever the caller asked for) and PyG's Planetoid reader
unpickles through :class:`RestrictedUnpickler`, which builds only plain
containers, numpy arrays and scipy sparse matrices. A file that names
anything else raises :class:`~.errors.UnsafeFileError` before the object is
built; a truncated or foreign file raises
:class:`~.errors.CorruptFileError`. Both name the file.

The patch is scoped to the ``with`` block (like :func:`._ogb_compat.
ogb_load_compat`) because PyG gives no option to turn the fallback off.
"""
from __future__ import annotations

import contextlib
import functools
import os
import pickle
import zipfile
from typing import Any, BinaryIO, Iterator

import torch

from .errors import CorruptFileError, UnsafeFileError

#: ``(module, name)`` pairs a dataset pickle may name. Both spellings of
#: numpy's and scipy's private modules (pickles written by numpy 1 / scipy
#: < 1.8 name the old ones) and Python 2's ``__builtin__``.
SAFE_GLOBALS = frozenset(
    [(m, '_reconstruct') for m in ('numpy.core.multiarray',
                                   'numpy._core.multiarray')]
    + [(m, 'scalar') for m in ('numpy.core.multiarray',
                               'numpy._core.multiarray')]
    + [(m, '_frombuffer') for m in ('numpy.core.numeric',
                                    'numpy._core.numeric')]
    + [('numpy', 'ndarray'), ('numpy', 'dtype')]
    + [(m, f'{fmt}_matrix') for fmt in ('csr', 'csc', 'coo')
       for m in ('scipy.sparse', f'scipy.sparse.{fmt}',
                 f'scipy.sparse._{fmt}')]
    + [(m, name) for m in ('builtins', '__builtin__')
       for name in ('list', 'dict', 'tuple', 'set', 'frozenset', 'int',
                    'float', 'complex', 'str', 'bytes', 'bool', 'object')]
    + [('collections', 'defaultdict'), ('collections', 'OrderedDict'),
       ('copy_reg', '_reconstructor'), ('copyreg', '_reconstructor'),
       # protocol-2 pickles written by Python 3 encode bytes with it
       ('_codecs', 'encode')])


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`SAFE_GLOBALS`; ``path`` names
    the file in the error."""

    def __init__(self, file: BinaryIO, path: str, **kwargs: Any):
        super().__init__(file, **kwargs)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in SAFE_GLOBALS:
            raise UnsafeFileError(
                self.path, f"it names '{module}.{name}', which is not a "
                'plain container, numpy array or scipy sparse matrix; a '
                'dataset pickle never needs it and unpickling it could run '
                'code')
        return super().find_class(module, name)


def _name(f: Any) -> str:
    if isinstance(f, (str, os.PathLike)):
        return os.fspath(f)
    return str(getattr(f, 'path', None) or getattr(f, 'name', '<stream>'))


def restricted_load(file: BinaryIO, path: str = '', **kwargs: Any) -> Any:
    """``pickle.load`` through :class:`RestrictedUnpickler`; a truncated or
    non-pickle file raises :class:`CorruptFileError`."""
    path = path or _name(file)
    try:
        return RestrictedUnpickler(file, path, **kwargs).load()
    except UnsafeFileError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError,
            AttributeError, IndexError, KeyError) as err:
        raise CorruptFileError(path, f'{type(err).__name__}: {err}') from None


def load_pickle(path: str, **kwargs: Any) -> Any:
    """Opens ``path`` and unpickles it with :func:`restricted_load`."""
    with open(path, 'rb') as f:
        return restricted_load(f, path, **kwargs)


class _RestrictedPickleModule:
    """Stands in for the ``pickle`` module of a PyG reader."""
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def load(file: BinaryIO, **kwargs: Any) -> Any:
        return restricted_load(file, **kwargs)


#: PyG modules whose readers call ``pickle.load`` on dataset files.
_PICKLE_READERS = ('torch_geometric.io.planetoid',
                   'torch_geometric.datasets.lrgb')


def _weights_only(load):
    @functools.wraps(load)
    def safe_load(f, map_location=None, pickle_module=None, *,
                  weights_only=None, **kwargs):
        # pickle_module and weights_only=False are the caller's, not ours:
        # both would let the file name arbitrary globals.
        path = _name(f)
        try:
            return load(f, map_location, weights_only=True, **kwargs)
        except pickle.UnpicklingError as err:
            raise UnsafeFileError(
                path, 'it holds objects outside the weights-only allow-list '
                f'of torch.load ({str(err).splitlines()[0][:200]}); delete '
                'it if it is a processed file so that the loader rebuilds it'
            ) from None
        except (RuntimeError, EOFError, zipfile.BadZipFile) as err:
            raise CorruptFileError(
                path, f'{type(err).__name__}: {str(err)[:200]}; delete it if '
                'it is a processed file so that the loader rebuilds it'
            ) from None
    return safe_load


@contextlib.contextmanager
def safe_loading() -> Iterator[None]:
    """Context manager: dataset loaders called inside never unpickle
    anything but tensors, plain containers, numpy arrays and scipy sparse
    matrices (see the module docstring)."""
    import importlib
    saved = [(torch, 'load', torch.load)]
    torch.load = _weights_only(torch.load)
    try:
        for name in _PICKLE_READERS:
            module = importlib.import_module(name)
            saved.append((module, 'pickle', module.pickle))
            module.pickle = _RestrictedPickleModule
        yield
    finally:
        for obj, attr, value in reversed(saved):
            setattr(obj, attr, value)
