r"""Keeping the process's resident memory close to its live tensors.

Under glibc malloc a tensor below the *mmap threshold* comes from the heap,
and the threshold is dynamic: it rises to the size of every mmapped block
freed (up to 32 MiB), so after the first free of an :math:`N \times d`
activation all later ones come from the heap. A deep training step frees
such blocks by the thousand while small long-lived objects (autograd nodes,
saved-tensor records) are carved out of the freed space; the big blocks can
then no longer be reused and the heap grows. A 1000-layer checkpointed step
on 5,000 nodes keeps about 200 MB live but grows the resident set by 8 GB
this way (``benchmarks/README.md``, case ``rss``).

:func:`limit_heap_growth` fixes the thresholds with ``mallopt``: blocks of
1 MiB and more are mmapped, and so returned to the system on free, and
the heap's free top is trimmed above 2 MiB (glibc's own ratio of twice the
mmap threshold). The same step then grows by 1.8x its live memory.
The cost is time: an mmap, a page fault per page and an munmap for every
large block. The deep step above took 2.6-3.5x as long, a Cora-size
depth-64 step (its :math:`E \times d` messages are 2.7 MB) 1.33x.

Hence ``ddl-gnn train`` and ``ddl-gnn sweep`` apply it at start only when a
run is deep (:data:`DEEP`, where the growth is proportional to the depth),
trading step time for resident memory there:
``DDL_GNN_MALLOC=1`` applies it to every run, ``0`` never
(:func:`limit_heap_growth_for`). Where glibc is absent (macOS, musl) it is a
no-op with a debug log message; under a preloaded allocator (tcmalloc,
jemalloc) it sets glibc's unused thresholds, also harmless.
"""
from __future__ import annotations

import ctypes
import logging
import os
from typing import Optional

log = logging.getLogger(__name__)

#: ``mallopt`` parameters (``<malloc.h>``).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks at least this large are mmapped under :func:`limit_heap_growth`.
MMAP_THRESHOLD = 1 << 20
#: Where glibc's dynamic thresholds end (64-bit ``DEFAULT_MMAP_THRESHOLD_MAX``
#: and twice it for the trim threshold): what :func:`restore_heap_growth`
#: sets, since glibc has no call that turns the dynamic rule back on.
DYNAMIC_MMAP_CEILING = 32 << 20

#: Depth from which the CLI limits heap growth (``DDL_GNN_MALLOC=auto``).
DEEP = 256

_state = {'limited': False}


def _flag() -> str:
    flag = os.environ.get('DDL_GNN_MALLOC', 'auto').strip().lower() or 'auto'
    if flag in ('0', 'false', 'no', 'off', 'never'):
        return 'never'
    if flag in ('1', 'true', 'yes', 'on', 'always'):
        return 'always'
    if flag != 'auto':
        raise ValueError(f'DDL_GNN_MALLOC must be auto, 1/always or '
                         f'0/never, got {flag!r}')
    return flag


def _glibc() -> Optional[ctypes.CDLL]:
    try:
        libc = ctypes.CDLL('libc.so.6')
        libc.gnu_get_libc_version  # glibc only (musl has no such symbol)
        libc.mallopt
    except (OSError, AttributeError):
        return None
    return libc


def _set(mmap_threshold: int) -> bool:
    libc = _glibc()
    if libc is None:
        log.debug('ddl_gnn: glibc not found; malloc thresholds left as they '
                  'are')
        return False
    ok = (libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1
          and libc.mallopt(M_TRIM_THRESHOLD, 2 * mmap_threshold) == 1)
    if not ok:
        log.debug('ddl_gnn: mallopt refused an mmap threshold of %d',
                  mmap_threshold)
    return ok


def limit_heap_growth(mmap_threshold: int = MMAP_THRESHOLD) -> bool:
    r"""Makes glibc malloc mmap blocks of ``mmap_threshold`` bytes and more
    (so they go back to the system when freed) and trim the heap's free
    top above twice that, so that the resident set follows the live
    tensors (see the module docstring).

    Returns :obj:`True` if the setting was applied; :obj:`False` (a no-op)
    where glibc is absent or ``DDL_GNN_MALLOC=0`` is set.
    :func:`restore_heap_growth` undoes it.

    Args:
        mmap_threshold (int, optional): Smallest block size in bytes that
            is mmapped. (default: :obj:`1 MiB`)
    """
    if _flag() == 'never':
        log.debug('ddl_gnn: DDL_GNN_MALLOC=0; malloc thresholds left as '
                  'they are')
        return False
    applied = _set(int(mmap_threshold))
    _state['limited'] = _state['limited'] or applied
    return applied


def limit_heap_growth_for(depth: int) -> bool:
    r"""What the CLI calls at start: :func:`limit_heap_growth` if the
    deepest run has at least :data:`DEEP` layers, or always with
    ``DDL_GNN_MALLOC=1``; never with ``DDL_GNN_MALLOC=0``. Returns whether
    it was applied.

    Args:
        depth (int): The deepest run's number of layers.
    """
    if _flag() == 'always' or depth >= DEEP:
        return limit_heap_growth()
    log.debug('ddl_gnn: depth %d < %d; malloc thresholds left as they are',
              depth, DEEP)
    return False


def restore_heap_growth() -> bool:
    r"""Undoes :func:`limit_heap_growth`: sets the thresholds where glibc's
    dynamic rule ends (mmap 32 MiB, trim 64 MiB). Returns :obj:`True` if
    they were set; a no-op returning :obj:`False` if the limit was never
    applied in this process."""
    if not _state['limited']:
        return False
    _state['limited'] = False
    return _set(DYNAMIC_MMAP_CEILING)


def heap_growth_limited() -> bool:
    r"""Whether :func:`limit_heap_growth` is in effect in this process."""
    return _state['limited']
