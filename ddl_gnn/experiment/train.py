"""Training loops per task: full-batch or mini-batch node classification,
graph property prediction, link prediction. Test is read at the epoch of the
best validation score (OGB protocol)."""
from __future__ import annotations

import copy
import math
import time
from typing import (Any, Callable, Dict, Iterable, List, Optional, Sequence,
                    Tuple)

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..nn.adjacency import to_adj_t
from .checkpoint import RunCheckpoint, random_state, set_random_state
from .graph_loader import GatherGraphLoader
from .loaders import node_train_batches
from .tasks import higher_is_better, loss_count, loss_fn, predictions

Scores = Dict[str, float]
#: One optimizer step: ``(graph, local train index)`` pieces and the scale
#: of their summed loss (``None``: mean loss of each piece).
Step = Tuple[List[Tuple[Any, Tensor]], Optional[float]]


def _fit(step: Callable[[int], float], evaluate: Callable[[], Scores],
         model: nn.Module, cfg, metric: str, desc: str, progress: bool,
         opt: Optional[torch.optim.Optimizer] = None,
         generators: Sequence[torch.Generator] = (),
         checkpoint: Optional[RunCheckpoint] = None,
         on_best: Optional[Callable[[], Scores]] = None) -> Dict[str, Any]:
    """Shared epoch loop: ``step(epoch)``, evaluate, keep the
    best-validation state, early stopping after ``cfg.patience`` epochs
    without improvement; a non-finite training loss stops the run and
    sets ``diverged_epoch``. With a ``checkpoint`` (and ``opt``) the loop first
    resumes from a saved state, then saves at epoch boundaries; the random
    streams of ``generators`` are saved and restored with it. ``on_best``
    adds scores at each new best-validation epoch only (the training split
    of graph tasks: scoring it every epoch would cost a pass over most of
    the data)."""
    sign = 1.0 if higher_is_better(metric) else -1.0
    best: Dict[str, Any] = dict(valid=-float('inf') * sign, epoch=-1)
    history: List[Dict[str, Any]] = []
    first, prior_s, resumed, devices = 0, 0.0, [], []
    device = model_device(model)
    if checkpoint is not None and opt is None:
        raise ValueError('a checkpointed fit needs its optimizer (opt=...)')
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        model.load_state_dict(saved['model'])
        opt.load_state_dict(saved['optimizer'])
        set_random_state(saved['random'], device, generators)
        best, history = saved['best'], saved['history']
        first, prior_s = saved['epoch'], saved['train_s']
        resumed = saved['resumed'] + [first]
        # Device of each earlier segment (a run may move between machines);
        # checkpoints written before this field existed read as unknown.
        devices = saved.get('devices', ['unknown'] * len(resumed))
    start = time.perf_counter()
    bar = tqdm(range(first, cfg.epochs), desc=desc, disable=not progress,
               leave=False, initial=first, total=cfg.epochs)
    for epoch in bar:
        loss = step(epoch)
        if not math.isfinite(loss):
            # Diverged: the weights are NaN/Inf from here on, and scoring
            # them would read argmax(NaN) as a prediction. Keep the best
            # state of the finite epochs and stop.
            best['diverged_epoch'] = epoch
            break
        scores = evaluate()
        improved = sign * scores['valid'] > sign * best['valid']
        if improved and on_best is not None:
            scores = {**on_best(), **scores}
        history.append(dict(epoch=epoch, loss=loss, **scores))
        if improved:
            best = dict(scores, epoch=epoch, loss=loss,
                        state=copy.deepcopy(model.state_dict()))
        bar.set_postfix(loss=f'{loss:.3f}', valid=f"{scores['valid']:.3f}",
                        best=f"{best['valid']:.3f}")
        if cfg.patience and epoch - best['epoch'] >= cfg.patience:
            break
        if checkpoint is not None and epoch + 1 < cfg.epochs \
                and checkpoint.due():
            checkpoint.save(dict(
                epoch=epoch + 1, model=model.state_dict(),
                optimizer=opt.state_dict(), best=best, history=history,
                random=random_state(device, generators), resumed=resumed,
                devices=devices + [device.type],
                train_s=prior_s + time.perf_counter() - start,
                run=dict(model=cfg.model, depth=cfg.depth, seed=cfg.seed,
                         epochs=cfg.epochs)))
    if 'state' in best:
        model.load_state_dict(best.pop('state'))
    best['epochs_run'] = len(history)
    best['history'] = history
    if resumed:  # record provenance: where this run was resumed
        best['resumed'] = dict(epochs=resumed, prior_train_s=prior_s,
                               devices=devices + [device.type])
    return best


def fit_node(model: nn.Module, ds, cfg, opt, progress: bool = True,
             steps: Optional[Callable[[int], Iterable[Step]]] = None,
             train_model: Optional[nn.Module] = None, comm=None,
             checkpoint: Optional[RunCheckpoint] = None):
    """Node classification/regression, full-batch or mini-batch.

    By default each batch of :func:`~.loaders.node_train_batches` is one
    optimizer step on its mean loss. Data-parallel training
    (:mod:`.distributed`) passes ``steps(epoch)``, yielding for every
    optimizer step the ``(graph, local_train_index)`` pieces this process
    runs and the ``scale`` of their summed loss; ``train_model`` (the
    ``DistributedDataParallel`` wrapper of ``model``) for the training
    forward; and ``comm`` with ``all_sum(list) -> list`` (epoch loss over
    ranks) and ``from_root(fn)`` (run ``fn`` on rank 0, share its result:
    evaluation). Evaluation is one full-graph pass under ``no_grad`` with the
    model in eval mode: the model families are full-graph capable, so this
    is layer-wise full-graph inference without sampling. ``checkpoint``
    (:class:`~.checkpoint.RunCheckpoint`): resume from and save to it.
    """
    data, split = ds.data, ds.split
    forward = _node_forward(data, cfg.adj)
    net = train_model if train_model is not None else model

    def default_steps(epoch: int) -> Iterable[Step]:
        for batch, idx in node_train_batches(data, split['train'], cfg):
            yield [(batch, idx)], None

    schedule = steps or default_steps

    def step(epoch: int) -> float:
        net.train()
        total, count = 0.0, 0
        for pieces, scale in schedule(epoch):
            opt.zero_grad()
            loss = 0.0
            for batch, train_idx in pieces:
                out = (forward if batch is data
                       else _node_forward(batch))(net)
                if scale is None:  # mean over this batch
                    part = loss_fn(ds, out[train_idx], batch.y[train_idx])
                    total += part.item() * train_idx.numel()
                    count += train_idx.numel()
                    loss = loss + part
                else:  # summed, normalised by the global step's count
                    part = loss_fn(ds, out[train_idx], batch.y[train_idx],
                                   reduction='sum')
                    total += part.item()
                    count += loss_count(ds, batch.y[train_idx])
                    loss = loss + scale * part
            loss.backward()
            opt.step()
        if comm is not None:
            total, count = comm.all_sum([total, float(count)])
        return total / max(count, 1)

    @torch.no_grad()
    def evaluate() -> Scores:
        model.eval()
        pred = predictions(ds, forward(model))
        return {part: ds.eval(data.y[idx], pred[idx])
                for part, idx in (('train', split['train']),
                                  ('valid', split['valid']),
                                  ('test', split['test']))}

    scores = evaluate if comm is None else lambda: comm.from_root(evaluate)
    return _fit(step, scores, model, cfg, ds.metric,
                f'{ds.name}/{cfg.model}/L{cfg.depth}/s{cfg.seed}', progress,
                opt=opt, checkpoint=checkpoint)


def _node_forward(data, adj: str = 'edge_index'
                  ) -> Callable[[nn.Module], Tensor]:
    """``model -> output`` on the whole of ``data``; with ``adj='csr'``
    the graph goes in as its transposed sparse adjacency, built once."""
    ew = getattr(data, 'edge_weight', None)
    if adj == 'csr':
        adj_t = to_adj_t(data.edge_index, ew, data.num_nodes)
        return lambda model: model(data.x, adj_t)
    return lambda model: model(data.x, data.edge_index, ew)


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def graph_forward(model: nn.Module, batch) -> Tensor:
    """``model`` on a mini-batch of graphs (already on the model's device:
    callers move the batch once, since they also read ``batch.y``)."""
    return model(batch.x, batch.edge_index,
                 edge_attr=getattr(batch, 'edge_attr', None),
                 batch=batch.batch)


#: Graphs per no-grad scoring batch of :func:`fit_graph` (valid and test
#: every epoch, train at each new best). Per graph, a molecule forward pass
#: at batch 1024 costs about a quarter of one at batch 64 on a CPU core
#: (``benchmarks/run.py graph-epoch``), and in eval mode each graph's output
#: does not depend on the other graphs of its batch, so the scores are those
#: of training-size batches (bitwise on the CPU:
#: ``tests/experiment/test_train_graph.py``).
EVAL_BATCH_GRAPHS = 1024


def fit_graph(model: nn.Module, ds, cfg, opt, progress: bool = True,
              checkpoint: Optional[RunCheckpoint] = None):
    """Graph property prediction: mini-batches of ``cfg.batch_size``
    training graphs, one optimizer step each; valid and test are scored
    every epoch, the training split at each new best-validation epoch, all
    in batches of at least :data:`EVAL_BATCH_GRAPHS` graphs."""
    device = model_device(model)
    eval_batch = max(cfg.batch_size, EVAL_BATCH_GRAPHS)
    # Batches cut on the device from each split collated once; the same
    # batches and generator draws as PyG's DataLoader (graph_loader.py).
    gen = torch.Generator().manual_seed(cfg.seed)
    # Iterating valid and test draws from ``gen`` as PyG's DataLoader does
    # (a base seed per pass, whatever the batch size), so the training
    # shuffles are those of the DataLoader protocol.
    loaders = {part: GatherGraphLoader(
        ds.subset(part), cfg.batch_size if part == 'train' else eval_batch,
        shuffle=part == 'train', generator=gen, device=device)
        for part in ('train', 'valid', 'test')}

    def step(epoch: int) -> float:
        model.train()
        total, count = 0.0, 0
        for batch in loaders['train']:
            opt.zero_grad()
            loss = loss_fn(ds, graph_forward(model, batch), batch.y)
            loss.backward()
            opt.step()
            total += loss.item() * batch.num_graphs
            count += batch.num_graphs
        return total / max(count, 1)

    @torch.no_grad()
    def score(loader: Iterable) -> float:
        model.eval()
        ys, preds = [], []
        for batch in loader:
            preds.append(predictions(ds, graph_forward(model, batch)))
            ys.append(batch.y.view(preds[-1].size(0), -1))
        return ds.eval(torch.cat(ys), torch.cat(preds))

    def evaluate() -> Scores:
        return {part: score(loaders[part]) for part in ('valid', 'test')}

    def train_score() -> Scores:
        return {'train': score(loaders['train'].in_order(eval_batch))}

    return _fit(step, evaluate, model, cfg, ds.metric,
                f'{ds.name}/{cfg.model}/L{cfg.depth}/s{cfg.seed}', progress,
                opt=opt, generators=[gen], checkpoint=checkpoint,
                on_best=train_score)


class LinkPredictor(nn.Module):
    """MLP on the Hadamard product of two node embeddings (OGB ddi
    example)."""

    def __init__(self, channels: int, num_layers: int = 2):
        super().__init__()
        from torch_geometric.nn import MLP
        self.mlp = MLP([channels] * num_layers + [1], norm=None)

    def reset_parameters(self):
        self.mlp.reset_parameters()

    def forward(self, h: Tensor, edges: Tensor) -> Tensor:
        return self.mlp(h[edges[0]] * h[edges[1]]).view(-1)


def fit_link(model: nn.Module, predictor: nn.Module, ds, cfg, opt,
             progress: bool = True,
             checkpoint: Optional[RunCheckpoint] = None):
    """ogbl-style link prediction with uniformly sampled negatives; the
    score is the evaluator's Hits@K. ``cfg.batch_size`` is the number of
    positive training edges per step (one full-graph forward each)."""
    data, split = ds.data, ds.split
    pos_train = split['train']['edge'].t()
    device = pos_train.device
    # The random streams stay on the CPU generator whatever the device, so a
    # seed draws the same batches and negatives on a CPU and on a GPU.
    gen = torch.Generator().manual_seed(cfg.seed)

    def step(epoch: int) -> float:
        model.train()
        predictor.train()
        total, count = 0.0, 0
        perm = torch.randperm(pos_train.size(1), generator=gen).to(device)
        for chunk in perm.split(cfg.batch_size):
            opt.zero_grad()
            h = model(data.x, data.edge_index)
            pos = pos_train[:, chunk]
            neg = torch.randint(0, data.num_nodes, pos.shape,
                                generator=gen).to(device)
            # OGB's example writes -log(sigmoid(s) + 1e-15); logsigmoid is
            # the same loss without the epsilon and stable for large |s|.
            loss = -F.logsigmoid(predictor(h, pos)).mean() \
                - F.logsigmoid(-predictor(h, neg)).mean()
            loss.backward()
            opt.step()
            total += loss.item() * chunk.numel()
            count += chunk.numel()
        return total / max(count, 1)

    @torch.no_grad()
    def evaluate() -> Scores:
        model.eval()
        predictor.eval()
        h = model(data.x, data.edge_index)
        out = {}
        for part in ('valid', 'test'):
            pos = predictor(h, split[part]['edge'].t())
            neg = predictor(h, split[part]['edge_neg'].t())
            res = ds.evaluator.eval({'y_pred_pos': pos, 'y_pred_neg': neg})
            out[part] = float(res[ds.metric])
        return out

    # One module for the loop: the best state and a checkpoint hold both.
    both = nn.ModuleList([model, predictor])
    return _fit(step, evaluate, both, cfg, ds.metric,
                f'{ds.name}/{cfg.model}/L{cfg.depth}/s{cfg.seed}', progress,
                opt=opt, generators=[gen], checkpoint=checkpoint)
