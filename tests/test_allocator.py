"""The malloc setting is applied (large blocks are mmapped), reversible,
and follows ``DDL_GNN_MALLOC``; no timing is asserted."""
import ctypes

import pytest
import torch

import ddl_gnn
from ddl_gnn import _allocator

pytestmark = pytest.mark.skipif(_allocator._glibc() is None,
                                reason='glibc malloc only')


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks',
        'fsmblks', 'uordblks', 'fordblks', 'keepcost')]


def _mallinfo() -> _Mallinfo2:
    libc = _allocator._glibc()
    if not hasattr(libc, 'mallinfo2'):
        pytest.skip('glibc without mallinfo2')
    libc.mallinfo2.restype = _Mallinfo2
    return libc.mallinfo2()


def _mmapped_by_alloc() -> int:
    """Bytes newly mmapped by one block larger than the heap's free space
    (a block that fits a free heap chunk is served from there whatever the
    thresholds) and under the dynamic threshold's ceiling."""
    nbytes = max(3 << 20, _mallinfo().fordblks + (1 << 20))
    if nbytes >= _allocator.DYNAMIC_MMAP_CEILING:
        pytest.skip('too much free heap to tell mmap from heap')
    before = _mallinfo().hblkhd
    t = torch.empty(nbytes, dtype=torch.uint8)
    grown = _mallinfo().hblkhd - before
    del t
    return grown


@pytest.fixture
def restore():
    yield
    _allocator.restore_heap_growth()


def test_applied_and_reversible(monkeypatch, restore):
    monkeypatch.delenv('DDL_GNN_MALLOC', raising=False)
    assert ddl_gnn.limit_heap_growth() is True
    assert _allocator.heap_growth_limited()
    assert _mmapped_by_alloc() > 0
    assert ddl_gnn.restore_heap_growth() is True
    assert not _allocator.heap_growth_limited()
    assert _mmapped_by_alloc() == 0
    assert ddl_gnn.restore_heap_growth() is False   # nothing to undo


def test_opt_out_and_depth_rule(monkeypatch, restore):
    monkeypatch.setenv('DDL_GNN_MALLOC', '0')
    assert ddl_gnn.limit_heap_growth() is False
    assert _allocator.limit_heap_growth_for(1000) is False
    monkeypatch.setenv('DDL_GNN_MALLOC', 'auto')
    assert _allocator.limit_heap_growth_for(_allocator.DEEP - 1) is False
    assert not _allocator.heap_growth_limited()
    assert _allocator.limit_heap_growth_for(_allocator.DEEP) is True
    _allocator.restore_heap_growth()
    monkeypatch.setenv('DDL_GNN_MALLOC', '1')
    assert _allocator.limit_heap_growth_for(2) is True
    monkeypatch.setenv('DDL_GNN_MALLOC', 'sometimes')
    with pytest.raises(ValueError, match='DDL_GNN_MALLOC'):
        _allocator.limit_heap_growth_for(2)


def test_no_glibc_is_a_noop(monkeypatch, restore, caplog):
    monkeypatch.delenv('DDL_GNN_MALLOC', raising=False)
    monkeypatch.setattr(_allocator, '_glibc', lambda: None)
    with caplog.at_level('DEBUG', logger='ddl_gnn._allocator'):
        assert ddl_gnn.limit_heap_growth() is False
    assert 'glibc not found' in caplog.text
    assert not _allocator.heap_growth_limited()
