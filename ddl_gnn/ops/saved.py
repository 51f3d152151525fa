r"""Counts the bytes autograd keeps for backward (memory audits, tests)."""
from __future__ import annotations

from typing import Any, Callable, Tuple

import torch


def saved_tensor_bytes(fn: Callable[[], Any]) -> Tuple[Any, int]:
    r"""Runs ``fn()`` and returns ``(result, bytes)``, where ``bytes`` sums
    the sizes of the *unique storages* that autograd saves for backward
    while ``fn`` runs (a tensor saved by several ops, or views of one
    storage, count once). Tensors saved inside a non-reentrant
    :func:`torch.utils.checkpoint.checkpoint` are not seen (they are dropped
    and recomputed), which is what makes checkpointing measurable.
    """
    seen = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.layout == torch.strided:
            st = t.untyped_storage()
            seen[st.data_ptr()] = max(seen.get(st.data_ptr(), 0),
                                      st.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, sum(seen.values())
