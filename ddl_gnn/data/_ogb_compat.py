"""ogb 1.3.6 on torch >= 2.6: the one place that makes ``torch.load`` work.

ogb 1.3.6 calls ``torch.load(path)`` without ``weights_only``.  Since torch
2.6 the default is ``weights_only=True``, which refuses

* the PyG ``Data`` objects in ogb's ``processed/geometric_data_processed.pt``
  ("Unsupported global: torch_geometric.data.data.DataEdgeAttr"), and
* the legacy numpy pickles in OGB link splits (ogbl-ddi
  ``split/target/{valid,test}.pt``: "numpy.core.multiarray._reconstruct").

(snap-stanford/ogb#497; not fixed in any ogb release.)  Instead of a global
monkeypatch or ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``, every ogb call in
:mod:`ddl_gnn.data` runs inside :func:`ogb_load_compat`, which allow-lists
exactly these classes with ``torch.serialization.safe_globals`` for the
duration of the call.  ``weights_only`` stays on: nothing else can be
unpickled.
"""
import contextlib
from typing import Any, Iterator, List

import numpy as np
import torch

try:  # numpy >= 2 keeps the implementation under numpy._core
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct


def _pyg_globals():
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage
    return [DataEdgeAttr, DataTensorAttr, GlobalStorage]


def _numpy_globals():
    # Pickles written with numpy 1.x name ``numpy.core.multiarray``; give the
    # old names explicitly so numpy 2 objects match them.
    out = [(_np_reconstruct, 'numpy.core.multiarray._reconstruct'),
           np.ndarray, np.dtype]
    for t in (np.int64, np.int32, np.float32, np.float64, np.bool_,
              np.uint8):
        out.append(type(np.dtype(t)))
    return out


def ogb_safe_globals() -> List[Any]:
    """The exact list allowed while ogb loads its files."""
    return _pyg_globals() + _numpy_globals()


@contextlib.contextmanager
def ogb_load_compat() -> Iterator[None]:
    """Context manager: run ogb dataset constructors / split getters inside."""
    safe = getattr(torch.serialization, 'safe_globals', None)
    if safe is None:  # pragma: no cover - torch < 2.4: weights_only=False
        yield
        return
    with safe(ogb_safe_globals()):
        yield
