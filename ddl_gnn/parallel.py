"""torch.distributed plumbing for ``ddl-gnn --distributed`` (torchrun)."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, Tuple

import torch.distributed as dist


@contextmanager
def dist_context(enabled: bool) -> Iterator[Tuple[int, int]]:
    """Yields ``(rank, world_size)``; with ``enabled`` it joins the process
    group that torchrun describes in the environment (gloo on CPU, NCCL on
    GPU) and leaves it on exit."""
    if not enabled:
        yield 0, 1
        return
    if 'RANK' not in os.environ or 'WORLD_SIZE' not in os.environ:
        raise RuntimeError('--distributed needs the torchrun environment '
                           '(RANK, WORLD_SIZE, MASTER_ADDR); launch with '
                           '`torchrun --nproc_per_node=N -m ddl_gnn ...`')
    import torch
    backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    own = not dist.is_initialized()
    if own:
        dist.init_process_group(backend)
    try:
        yield dist.get_rank(), dist.get_world_size()
    finally:
        if own:
            dist.barrier()
            dist.destroy_process_group()


def barrier() -> None:
    """``dist.barrier()`` inside a process group, a no-op outside one."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
