r"""Data-parallel node training over ``torch.distributed`` ranks.

Every optimizer step has one *global batch* made of ``W`` pieces (``W`` =
world size); rank ``r`` runs piece ``r`` through the
``DistributedDataParallel`` model, and DDP averages the gradients:

* ``--loader random``: each epoch draws one random node permutation from a
  generator seeded by ``(cfg.seed, epoch)`` — identical on every rank, no
  communication — and cuts it into ``ceil(N / batch_size)`` partitions
  (as :class:`~torch_geometric.loader.RandomNodeLoader` does; partitions
  without training nodes are dropped). Step ``s`` is partitions
  ``sW, ..., sW + W - 1``: rank ``r`` takes partitions ``r, r + W, ...``
  and trains on the partition's induced subgraph.
* ``--loader full``: one step per epoch; every rank runs the full graph and
  takes the loss over its shard ``train[r::W]`` of the training nodes. This
  is exact but buys no speed (each rank still runs the whole graph forward
  and backward); it exists for equivalence and for completeness.
* ``neighbor`` / ``cluster`` are not sharded yet (clear error).

Loss normalisation: with ``n`` labelled entries in the whole global batch,
rank ``r`` minimises ``W / n * sum(loss over its piece)``; DDP's gradient
*average* then equals the gradient of the global batch's mean loss, so a
``W``-rank run equals a one-process run over the same global batches
(:func:`global_steps` with ``ranks=None``) up to float summation order.
If the last step has fewer than ``W`` partitions, the ranks without one run
a filler piece with no training nodes (zero loss, zero gradient) so that
every rank joins every gradient all-reduce.

Evaluation (and best-validation selection, early stopping) is computed on
rank 0 as one full-graph pass and broadcast, so all ranks stay in lockstep;
rank 0 measures the trained model and returns the record.

The process-group plumbing of ``ddl-gnn train --distributed`` and ``sweep
--distributed`` (torchrun's environment, the backend, each rank's device)
is here too: :func:`dist_context`, :func:`barrier`, :func:`rank_device`.
"""
from __future__ import annotations

import math
import os
from contextlib import contextmanager
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple)

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from .checkpoint import RunCheckpoint
from .config import RunConfig
from .runner import FittedRun, fit_run, load, make_optimizer, record_run
from .tasks import loss_count
from .train import Step, fit_node

#: Loaders :func:`global_steps` can shard.
SHARDED_LOADERS = ('full', 'random')


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


def rank_device() -> torch.device:
    """This rank's device: its local GPU under NCCL, else the CPU."""
    if dist.get_backend() == 'nccl':  # untested here: no GPU on CI machines
        local = int(os.environ.get('LOCAL_RANK', 0))
        torch.cuda.set_device(local)
        return torch.device('cuda', local)
    return torch.device('cpu')


def _check_sharded(cfg: RunConfig) -> None:
    if cfg.loader not in SHARDED_LOADERS:
        raise NotImplementedError(
            f'--distributed supports --loader {" or ".join(SHARDED_LOADERS)}'
            f', got {cfg.loader!r}')


def random_partitions(num_nodes: int, batch_size: int, seed: int,
                      epoch: int) -> List[Tensor]:
    """The epoch's node partitions (each sorted), the same on every rank."""
    gen = torch.Generator().manual_seed(1_000_003 * int(seed) + int(epoch))
    parts = max(1, math.ceil(num_nodes / batch_size))
    perm = torch.randperm(num_nodes, generator=gen)
    return [p.sort().values for p in
            perm.split(math.ceil(num_nodes / parts))]


def global_steps(ds, cfg, world_size: int, ranks: Optional[Sequence[int]]
                 ) -> Callable[[int], Iterator[Step]]:
    """``steps(epoch)`` for :func:`~.train.fit_node`.

    ``ranks=[r]``: the pieces of rank ``r`` with scale ``W / n``;
    ``ranks=None``: one process running all ``W`` pieces of every global
    batch with scale ``1 / n`` (the single-process reference).
    """
    _check_sharded(cfg)
    data, train_idx = ds.data, ds.split['train']
    W = int(world_size)
    mine = list(range(W)) if ranks is None else list(ranks)
    factor = 1.0 if ranks is None else float(W)
    dev = train_idx.device
    mask = torch.zeros(data.num_nodes, dtype=torch.bool, device=dev)
    mask[train_idx] = True

    def count(nodes: Tensor) -> int:
        return loss_count(ds, data.y[nodes])

    def full(epoch: int) -> Iterator[Step]:
        n = count(train_idx)
        yield [(data, train_idx[r::W]) for r in mine], factor / max(n, 1)

    def random(epoch: int) -> Iterator[Step]:
        parts = [p.to(dev) for p in random_partitions(
            data.num_nodes, cfg.batch_size, cfg.seed, epoch)]
        parts = [p for p in parts if bool(mask[p].any())]
        for s in range(0, len(parts), W):
            group = parts[s:s + W]
            n = sum(count(p[mask[p]]) for p in group)
            pieces = []
            for r in mine:
                if r < len(group):
                    sub = data.subgraph(group[r])
                    pieces.append((sub, mask[group[r]].nonzero().view(-1)))
                else:  # filler: keeps this rank in the all-reduce
                    sub = data.subgraph(group[0])
                    pieces.append((sub, train_idx.new_empty(0)))
            yield pieces, factor / max(n, 1)

    return full if cfg.loader == 'full' else random


class TorchComm:
    """The ``comm`` hooks of :func:`~.train.fit_node` over the default
    process group."""

    def __init__(self, device: torch.device):
        self.device = device
        self.rank = dist.get_rank()

    def all_sum(self, values: List[float]) -> List[float]:
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def from_root(self, fn: Callable[[], Any]) -> Any:
        box = [fn() if self.rank == 0 else None]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]


def fit_distributed(cfg: RunConfig, rank: int, world_size: int,
                    progress: bool = False) -> FittedRun:
    """Trains ``cfg`` data-parallel inside an initialised process group
    (:func:`~.runner.fit_run` with a DDP fit); the returned ``model`` is the
    unwrapped module, loaded with the best-validation state."""
    ds = load(cfg)
    if ds.task != 'node':
        raise NotImplementedError(
            f'--distributed trains node-level datasets; {cfg.dataset!r} is a '
            f'{ds.task}-level task (use `ddl-gnn sweep --distributed` to '
            f'spread whole runs over ranks)')
    _check_sharded(cfg)

    def fit(cfg: RunConfig, ds, model: nn.Module, device: torch.device,
            progress: bool, checkpoint: Optional[RunCheckpoint]
            ) -> Tuple[Dict[str, Any], None]:
        steps = global_steps(ds, cfg, world_size, [rank])
        torch.manual_seed(cfg.seed + 7919 * rank)  # own dropout stream
        # static_graph: tolerates parameters a family never uses, without
        # find_unused_parameters' graph traversal on every step.
        ddp = DistributedDataParallel(model, static_graph=True)
        opt = make_optimizer(cfg, model)
        return fit_node(model, ds, cfg, opt, progress=progress, steps=steps,
                        train_model=ddp, comm=TorchComm(device)), None

    # Every rank seeds the model identically; rank 0 alone measures it.
    return fit_run(cfg, rank_device(), fit, progress,
                   measure_init=rank == 0)


def train_distributed(cfg: RunConfig, out: str, rank: int, world_size: int
                      ) -> Optional[Dict[str, Any]]:
    """:func:`fit_distributed`, then rank 0 measures the trained model and
    returns the result record (with ``world_size`` and the ``torchrun``
    command); other ranks ``None``."""
    fitted = fit_distributed(cfg, rank, world_size, progress=rank == 0)
    if rank != 0:
        return None
    return record_run(cfg, fitted, out, world_size, distributed=True)
