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
"""
from __future__ import annotations

import math
import os
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import torch
from torch import Tensor

from .tasks import loss_count
from .train import Step

#: Loaders :func:`global_steps` can shard.
SHARDED_LOADERS = ('full', 'random')


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
    if cfg.loader not in SHARDED_LOADERS:
        raise NotImplementedError(
            f'--distributed supports --loader {" or ".join(SHARDED_LOADERS)}'
            f', got {cfg.loader!r}')
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
        import torch.distributed as dist
        self.dist, self.device = dist, device
        self.rank = dist.get_rank()

    def all_sum(self, values: List[float]) -> List[float]:
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        self.dist.all_reduce(t)
        return t.tolist()

    def from_root(self, fn: Callable[[], Any]) -> Any:
        box = [fn() if self.rank == 0 else None]
        self.dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]


def _device() -> torch.device:
    import torch.distributed as dist
    if dist.get_backend() == 'nccl':  # untested here: no GPU on CI machines
        local = int(os.environ.get('LOCAL_RANK', 0))
        torch.cuda.set_device(local)
        return torch.device('cuda', local)
    return torch.device('cpu')


def fit_distributed(cfg, rank: int, world_size: int,
                    progress: bool = False) -> Dict[str, Any]:
    """Trains ``cfg`` data-parallel inside an initialised process group and
    returns ``dict(ds, model, best, init, start, device)`` (``model`` is
    the unwrapped module, loaded with the best-validation state)."""
    from torch.nn.parallel import DistributedDataParallel
    from torch_geometric import seed_everything

    from .measure import measure
    from .runner import load, make_model, make_optimizer
    from .train import fit_node

    ds = load(cfg)
    if ds.task != 'node':
        raise NotImplementedError(
            f'--distributed trains node-level datasets; {cfg.dataset!r} is a '
            f'{ds.task}-level task (use `ddl-gnn sweep --distributed` to '
            f'spread whole runs over ranks)')
    device = _device()
    if device.type != 'cpu':
        ds.data = ds.data.to(device)
        ds.split = {k: v.to(device) for k, v in ds.split.items()}
    steps = global_steps(ds, cfg, world_size, [rank])
    seed_everything(cfg.seed)           # identical initial weights
    model = make_model(cfg, ds).to(device)
    start = time.perf_counter()
    init = measure(model, ds) if cfg.measure and rank == 0 else {}
    torch.manual_seed(cfg.seed + 7919 * rank)  # own dropout stream per rank
    # static_graph: tolerates parameters a family never uses, without
    # find_unused_parameters' graph traversal on every step.
    ddp = DistributedDataParallel(model, static_graph=True)
    opt = make_optimizer(cfg, model)
    best = fit_node(model, ds, cfg, opt, progress=progress, steps=steps,
                    train_model=ddp, comm=TorchComm(device))
    return dict(ds=ds, model=model, best=best, init=init, start=start,
                device=device)


def train_distributed(cfg, out: str, rank: int, world_size: int
                      ) -> Optional[Dict[str, Any]]:
    """:func:`fit_distributed`, then rank 0 measures the trained model and
    returns the result record (with ``world_size``); other ranks ``None``."""
    from .measure import measure
    from .runner import make_record
    res = fit_distributed(cfg, rank, world_size, progress=rank == 0)
    if rank != 0:
        return None
    model, ds = res['model'], res['ds']
    trained = measure(model, ds) if cfg.measure else {}
    record = make_record(cfg, ds, model, res['best'], res['init'], trained,
                         res['start'], out, world_size,
                         device=str(res['device']))
    record['command'] = (f'torchrun --nproc_per_node={world_size} -m ddl_gnn '
                         + record['command'].split(' ', 1)[1]
                         .replace('train ', 'train --distributed ', 1))
    return record
