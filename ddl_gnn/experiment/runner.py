"""One run end to end: data, model, optimiser, training, measurements and
the result record."""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import nn
from torch_geometric import seed_everything

from ..data import load_dataset
from .checkpoint import RunCheckpoint
from .config import RunConfig
from .measure import measure
from .model_io import build_from_spec, model_spec, save_model
from .optimizer import adam
from .records import environment
from .train import LinkPredictor, fit_graph, fit_link, fit_node

_DATA_CACHE: Dict[Any, Any] = {}


def load(cfg: RunConfig):
    """Loads (and memoises) the dataset of ``cfg``."""
    key = (cfg.dataset, cfg.split,
           tuple(sorted(cfg.dataset_kwargs.items())))
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = load_dataset(cfg.dataset, split=cfg.split,
                                        **cfg.dataset_kwargs)
    return _DATA_CACHE[key]


def _to_device(split, device: torch.device):
    """A split (index tensors, or for link tasks dicts of edge tensors) on
    ``device``."""
    if isinstance(split, dict):
        return {k: _to_device(v, device) for k, v in split.items()}
    return split.to(device)


def make_model(cfg: RunConfig, ds) -> nn.Module:
    """The freshly initialised model of ``cfg`` for dataset ``ds``."""
    return build_from_spec(model_spec(cfg, ds))


def make_optimizer(cfg: RunConfig, params_model: nn.Module,
                   extra: Optional[nn.Module] = None):
    if hasattr(params_model, 'param_groups'):
        # without weight_decay_conv every group takes weight_decay (Adam is
        # elementwise: the same updates as one group), but a model's own
        # groups (DeltaGNN's gate_decay) still apply
        wdc = cfg.weight_decay_conv
        groups = params_model.param_groups(
            cfg.weight_decay if wdc is None else wdc, cfg.weight_decay)
    else:
        groups = [dict(params=list(params_model.parameters()),
                       weight_decay=cfg.weight_decay)]
    if extra is not None:
        groups.append(dict(params=list(extra.parameters()),
                           weight_decay=cfg.weight_decay))
    return adam(groups, cfg.lr)


def run(cfg: RunConfig, out: str = 'runs', progress: bool = True,
        world_size: int = 1, device: str = 'cpu',
        checkpoint_every: Optional[float] = None,
        save: bool = False) -> Dict[str, Any]:
    """Trains ``cfg`` on ``device`` and returns its JSON-ready result record.

    The device is where a run executes, not what it is, so it is not part
    of :class:`RunConfig` (nor of the run key): the record stamps it. With
    ``checkpoint_every`` (seconds; ``0``: every epoch) the run resumes from
    ``out/checkpoints/<key>.pt`` when one is there and saves its training
    state there (:mod:`.checkpoint`); the file is removed once the record
    is made. A resumed run ends with the record of an uninterrupted one
    (same curves and scores) plus ``resumed`` (the epochs it resumed at) and
    ``segment_devices`` (where each stretch of epochs ran: ``cpu``, ``cuda``,
    ``unknown``). With ``save`` the trained model (its best-validation
    weights) is kept in ``out/models/<key>.pt`` with its configuration
    (:mod:`.model_io`; the record's ``model_path`` names it)."""
    # Deep plain stacks drive activations into denormal floats, which are
    # 10-100x slower on x86 CPUs; flushing them to zero changes no result
    # above ~1e-38. Restored afterwards (torch's default is off).
    torch.set_flush_denormal(True)
    try:
        return _run(cfg, out, progress, world_size, _device(device),
                    checkpoint_every, save)
    finally:
        torch.set_flush_denormal(False)


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {name!r} ({err})") from None
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not "
                         f"available (torch {torch.__version__})")
    return device


#: Trains a freshly built model: ``fit(cfg, ds, model, device, progress,
#: checkpoint)`` returns what the ``fit_*`` functions of :mod:`.train`
#: return and the link predictor it trained (``None`` for other tasks).
Fit = Callable[[RunConfig, Any, nn.Module, torch.device, bool,
                Optional[RunCheckpoint]],
               Tuple[Dict[str, Any], Optional[nn.Module]]]


def fit_task(cfg: RunConfig, ds, model: nn.Module, device: torch.device,
             progress: bool, checkpoint: Optional[RunCheckpoint]
             ) -> Tuple[Dict[str, Any], Optional[nn.Module]]:
    """The one-process :data:`Fit` of ``ds``'s task (node, graph or
    link)."""
    if ds.task == 'link':
        predictor = LinkPredictor(cfg.hidden).to(device)
        opt = make_optimizer(cfg, model, predictor)
        return fit_link(model, predictor, ds, cfg, opt, progress,
                        checkpoint=checkpoint), predictor
    opt = make_optimizer(cfg, model)
    fit = fit_graph if ds.task == 'graph' else fit_node
    return fit(model, ds, cfg, opt, progress, checkpoint=checkpoint), None


@dataclass
class FittedRun:
    """A trained run before its record: the dataset, the model (with its
    best-validation state), what the fit returned (``best``), the
    :func:`measure` dict at initialisation, the start time, the device, the
    link predictor and the run's checkpoint (or ``None``s)."""
    ds: Any
    model: nn.Module
    best: Dict[str, Any]
    init: Dict[str, Any]
    start: float
    device: torch.device
    predictor: Optional[nn.Module] = None
    checkpoint: Optional[RunCheckpoint] = None


def fit_run(cfg: RunConfig, device: torch.device, fit: Fit = fit_task,
            progress: bool = False, out: str = 'runs',
            checkpoint_every: Optional[float] = None,
            measure_init: bool = True) -> FittedRun:
    """Loads the data of ``cfg`` onto ``device``, builds the model from
    ``cfg.seed``, measures it (unless ``measure_init`` is false) and trains
    it with ``fit``; with ``checkpoint_every`` the training state is kept
    in ``out/checkpoints`` (see :func:`run`)."""
    ds = load(cfg)
    if cfg.adj != 'edge_index' and ds.task != 'node':
        raise ValueError(f"adj={cfg.adj!r} applies to full-graph node tasks;"
                         f" {cfg.dataset!r} is a {ds.task}-level task")
    if ds.task == 'link':  # feature-less: x holds node ids (NodeEmbedding)
        ds.data.x = torch.arange(ds.data.num_nodes,
                                 device=ds.data.edge_index.device).view(-1, 1)
    if ds.task in ('node', 'link') and ds.data.x.device != device:
        ds.data = ds.data.to(device)  # the memoised copy moves once
        ds.split = _to_device(ds.split, device)
    seed_everything(cfg.seed)
    model = make_model(cfg, ds).to(device)
    start = time.perf_counter()
    init = measure(model, ds) if cfg.measure and measure_init else {}
    ckpt = None if checkpoint_every is None else RunCheckpoint(
        os.path.join(out, 'checkpoints'), cfg.key(), checkpoint_every)
    best, predictor = fit(cfg, ds, model, device, progress, ckpt)
    return FittedRun(ds, model, best, init, start, device, predictor, ckpt)


def record_run(cfg: RunConfig, fitted: FittedRun, out: str,
               world_size: int = 1, distributed: bool = False
               ) -> Dict[str, Any]:
    """Measures the trained model of ``fitted`` and returns its record; with
    ``distributed`` the record's command is the ``torchrun`` one over
    ``world_size`` processes."""
    trained = measure(fitted.model, fitted.ds) if cfg.measure else {}
    return make_record(cfg, fitted.ds, fitted.model, fitted.best,
                       fitted.init, trained, fitted.start, out, world_size,
                       device=str(fitted.device), distributed=distributed)


def _run(cfg: RunConfig, out: str, progress: bool, world_size: int,
         device: torch.device, checkpoint_every: Optional[float] = None,
         save: bool = False) -> Dict[str, Any]:
    fitted = fit_run(cfg, device, progress=progress, out=out,
                     checkpoint_every=checkpoint_every)
    record = record_run(cfg, fitted, out, world_size)
    if save:
        name = os.path.join('models', f'{cfg.key()}.pt')
        save_model(os.path.join(out, name), fitted.model, cfg,
                   model_spec(cfg, fitted.ds), fitted.predictor)
        record['model_path'] = name
    if fitted.checkpoint is not None:
        fitted.checkpoint.clear()
    return record


def make_record(cfg: RunConfig, ds, model: nn.Module, best: Dict[str, Any],
                init: Dict[str, Any], trained: Dict[str, Any], start: float,
                out: str, world_size: int = 1, device: str = 'cpu',
                distributed: bool = False) -> Dict[str, Any]:
    """The JSON-ready result record of a finished run (``best`` is what the
    fit functions return; ``init``/``trained`` are :func:`measure` dicts;
    ``distributed``: trained data-parallel over ``world_size`` ranks)."""
    history = best.pop('history')
    resumed = best.pop('resumed', None)
    extra = {} if resumed is None else dict(
        resumed=resumed['epochs'], segment_devices=resumed['devices'])
    if best.get('diverged_epoch') is not None:
        extra['diverged_epoch'] = best['diverged_epoch']
    if best.get('epoch', -1) < 0:  # no finite epoch: no scores to report
        best = dict(best, valid=None, test=None, train=None, epoch=None)
    return dict(
        key=cfg.key(), dataset=cfg.dataset, model=cfg.model, depth=cfg.depth,
        seed=cfg.seed, metric=ds.metric, valid=best.get('valid'),
        test=best.get('test'), train=best.get('train'),
        diverged=best.get('diverged_epoch') is not None,
        best_epoch=best.get('epoch'), epochs_run=best.get('epochs_run'),
        num_params=sum(p.numel() for p in model.parameters()),
        per_layer=trained.get('per_layer', []),
        per_layer_init=init.get('per_layer', []),
        beta=trained.get('beta', []), beta_audit_init=init.get('beta', []),
        loss_curve=[round(h['loss'], 5) for h in history],
        valid_curve=[round(h['valid'], 5) for h in history],
        # node tasks score train every epoch, graph tasks at new bests
        train_curve=[None if h.get('train') is None else round(h['train'], 5)
                     for h in history],
        time_s=round(time.perf_counter() - start
                     + (resumed['prior_train_s'] if resumed else 0.0), 3),
        world_size=world_size, config=asdict(cfg),
        command=cfg.command(out, world_size if distributed else None),
        **extra, **environment(device))
