"""Sweeps: a grid of runs from a config file and/or flags, resumable.

Config files (TOML; the study's are in ``study/configs/``) hold the hyper-parameters
so that no number is chosen in code::

    dataset = "cora"
    models = ["res+", "delta"]
    depths = [2, 16, 64]
    seeds = 3                       # or a list [0, 1, 2]

    [defaults]                      # RunConfig fields for every run
    hidden = 64
    lr = 0.01

    [model."res+"]                  # per-model fields (merged into defaults)
    model_kwargs = { norm = "layer_norm" }

    [[override]]                    # fields for matching (models, depths)
    models = ["delta"]
    depths = [64]
    lr = 0.005

    [[extra]]                       # additional cells (e.g. 10 seeds at 64)
    models = ["res+", "gcnii", "delta"]
    depths = [64]
    seeds = 10

    split_per_seed = true           # geom-gcn/heterophilous: seed s -> split s

    [grid.delta]                    # hyper-parameter grid (cartesian), per
    lr = [0.01, 0.005]              # model or "*" for all models
    model_kwargs = [{ beta_init = 0.1 }, { beta_init = 1.0 }]

    [grid."res+"]                   # 'point': whole configurations (tables of
    point = [{ lr = 0.01 },         # run fields), one axis of the product;
             { lr = 0.005, dropout = 0.2 },     # a point's 'depths' limits
             { lr = 0.02, depths = [2] }]       # it to those depths
"""
from __future__ import annotations

import itertools
import os
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

from tqdm.auto import tqdm

from .._checkout import checkout_root
from ..data import get_spec
from ..models import MODELS
from . import runner
from .checkpoint import RunCheckpoint
from .claims import RunClaim
from .config import RunConfig
from .records import ResultStore

_FIELDS = {f.name for f in fields(RunConfig)}


def _merge(base: Dict[str, Any], extra: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def _check_fields(d: Dict[str, Any], where: str) -> None:
    bad = set(d) - _FIELDS
    if bad:
        raise ValueError(f"{where}: unknown run options {sorted(bad)}; "
                         f"known: {sorted(_FIELDS)}")


def _seeds(s) -> List[int]:
    return list(range(s)) if isinstance(s, int) else list(s)


def find_config(path: str) -> str:
    """A sweep config: a file, else one shipped with the package
    (``ddl_gnn/configs``, by name: ``demo`` or ``demo.toml``), else a path
    in ddl_gnn's own checkout (``study/configs/cora.toml`` from
    anywhere)."""
    from importlib import resources
    name = path if path.endswith('.toml') else path + '.toml'
    cands = [Path(path), Path(str(resources.files('ddl_gnn') / 'configs'
                                   / Path(name).name))]
    root = checkout_root()
    if root is not None:
        cands.append(root / path)
    for cand in cands:
        if cand.is_file():
            return str(cand)
    raise FileNotFoundError(f'sweep config {path!r} not found (looked in '
                            f'{Path.cwd()}, in the packaged configs'
                            + (f' and in {root}' if root else '') + ')')


def load_config(path: str) -> Dict[str, Any]:
    """The parsed TOML sweep spec at ``path``; a file that is not TOML
    (or holds values of the wrong types) raises ``ValueError`` naming it."""
    with open(path, 'rb') as f:
        data = f.read()
    try:
        spec = tomllib.loads(data.decode('utf-8'))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f'sweep config {path}: not a TOML file ({err})'
                         ) from None
    try:
        check_spec(spec)
    except ValueError as err:
        raise ValueError(f'sweep config {path}: {err}') from None
    return spec


def _list_of(kind, value) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, kind) and not isinstance(v, bool) for v in value)


def _check_seeds(value: Any, where: str) -> None:
    if isinstance(value, bool) or not (
            (isinstance(value, int) and value >= 1) or _list_of(int, value)):
        raise ValueError(f"{where}'seeds' must be a count >= 1 or a list of "
                         f"ints, got {value!r}")


def check_spec(spec: Dict[str, Any]) -> None:
    """The shape of a sweep spec (see the module docstring); run option
    values are checked by :class:`RunConfig`."""
    if 'dataset' in spec and not isinstance(spec['dataset'], str):
        raise ValueError(f"'dataset' must be a name, got {spec['dataset']!r}")
    cells = [('', spec)] + [(f'[[extra]] {i}: ', e) for i, e in enumerate(
        spec.get('extra', []) if isinstance(spec.get('extra', []), list)
        else [None])]
    for where, cell in cells:
        if not isinstance(cell, dict):
            raise ValueError("'extra' must be a list of tables")
        if 'models' in cell and not (_list_of(str, cell['models'])
                                     and cell['models']):
            raise ValueError(f"{where}'models' must be a non-empty list of "
                             f"names, got {cell['models']!r}")
        if 'depths' in cell and not (_list_of(int, cell['depths'])
                                     and cell['depths']):
            raise ValueError(f"{where}'depths' must be a non-empty list of "
                             f"ints, got {cell['depths']!r}")
        if 'seeds' in cell:
            _check_seeds(cell['seeds'], where)
    for key in ('defaults', 'model', 'grid'):
        value = spec.get(key, {})
        if not isinstance(value, dict) or (key != 'defaults' and not all(
                isinstance(v, dict) for v in value.values())):
            raise ValueError(f"[{key}] must be a table"
                             + ('' if key == 'defaults' else ' of tables'))
    if not isinstance(spec.get('override', []), list) or not all(
            isinstance(o, dict) for o in spec.get('override', [])):
        raise ValueError("'override' must be a list of tables")
    for name, axes in spec.get('grid', {}).items():
        for axis, values in axes.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"[grid.{name}] '{axis}' must be a "
                                 f"non-empty list of values")
            if axis == 'point' and not all(isinstance(v, dict)
                                           for v in values):
                raise ValueError(f"[grid.{name}] 'point' must be a list of "
                                 f"tables of run fields")
            for v in values if axis == 'point' else ():
                if 'depths' in v and not (_list_of(int, v['depths'])
                                          and v['depths']):
                    raise ValueError(f"[grid.{name}] a point's 'depths' "
                                     f"must be a non-empty list of ints, "
                                     f"got {v['depths']!r}")


def check_names(configs: Sequence[RunConfig]) -> None:
    """Every model and dataset name of ``configs`` is known: a sweep
    refuses a misspelt name before it trains anything."""
    bad_models = sorted({c.model for c in configs} - set(MODELS))
    if bad_models:
        raise ValueError(f"unknown model(s) {bad_models}; choose from "
                         f"{sorted(MODELS)}")
    for name in sorted({c.dataset for c in configs}):
        try:
            get_spec(name)
        except KeyError as err:
            raise ValueError(err.args[0]) from None


def expand(spec: Dict[str, Any], overrides: Optional[Dict[str, Any]] = None
           ) -> List[RunConfig]:
    """All runs of a sweep spec (a parsed config file, possibly with CLI
    ``overrides`` of run fields applied last)."""
    check_spec(spec)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    defaults = dict(spec.get('defaults', {}))
    _check_fields(defaults, '[defaults]')
    # Seed-major order: an interrupted sweep already holds a full
    # (model x depth) table for its first seeds.
    cells = [(m, d, s) for s in _seeds(spec.get('seeds', 1))
             for d in spec['depths'] for m in spec['models']]
    for extra in spec.get('extra', []):
        cells += [(m, d, s) for s in _seeds(extra.get('seeds', 1))
                  for d in extra['depths'] for m in extra['models']]
    runs, seen = [], set()
    for model, depth, seed in cells:
        opts = _merge(defaults, spec.get('model', {}).get(model, {}))
        for ov in spec.get('override', []):
            if model in ov.get('models', [model]) and \
                    depth in ov.get('depths', [depth]):
                opts = _merge(opts, {k: v for k, v in ov.items()
                                     if k not in ('models', 'depths')})
        if spec.get('split_per_seed'):       # seed s uses stored split s
            opts = _merge(opts, {'split': seed})
        for point in _grid(spec.get('grid', {}), model):
            if depth not in point.pop('depths', [depth]):
                continue
            run_opts = _merge(_merge(opts, point), overrides)
            _check_fields(run_opts, f'run {model}/L{depth}')
            cfg = RunConfig(dataset=spec['dataset'], model=model,
                            depth=depth, seed=seed, **run_opts)
            if cfg.key() not in seen:
                seen.add(cfg.key())
                runs.append(cfg)
    check_names(runs)
    return runs


def sweep_configs(spec: Dict[str, Any],
                  overrides: Optional[Dict[str, Any]] = None,
                  **axes: Any) -> List[RunConfig]:
    """:func:`expand` of ``spec`` with the sweep axes ``dataset``,
    ``models``, ``depths``, ``seeds`` given in ``axes`` (``None``: the
    spec's) replaced first."""
    given = {k: v for k, v in axes.items() if v is not None}
    spec = {**spec, **given}
    # the models and depths given limit the [[extra]] blocks too (an extra
    # block adds seeds at some of the spec's cells; it keeps its seeds)
    # (a malformed block is left as it is, for check_spec to name)
    if isinstance(spec.get('extra'), list) and ('models' in given
                                                or 'depths' in given):
        extras = []
        for extra in spec['extra']:
            if not (isinstance(extra, dict)
                    and isinstance(extra.get('models'), list)
                    and isinstance(extra.get('depths'), list)):
                extras.append(extra)
                continue
            extra = {**extra,
                     'models': [m for m in extra['models']
                                if m in given.get('models', [m])],
                     'depths': [d for d in extra['depths']
                                if d in given.get('depths', [d])]}
            if extra['models'] and extra['depths']:
                extras.append(extra)
        spec['extra'] = extras
    missing = [k for k in ('dataset', 'models', 'depths') if k not in spec]
    if missing:
        raise ValueError(f'sweep: missing {missing} (give a config or '
                         f'dataset/models/depths)')
    return expand(spec, overrides)


def _grid(grid: Dict[str, Dict[str, list]], model: str
          ) -> List[Dict[str, Any]]:
    """The cartesian product of ``grid["*"]`` and ``grid[model]``; the
    axis ``point`` holds whole configurations (tables merged as they
    are)."""
    axes = {**grid.get('*', {}), **grid.get(model, {})}
    if not axes:
        return [{}]
    names = sorted(axes)
    points = []
    for values in itertools.product(*(axes[n] for n in names)):
        point: Dict[str, Any] = {}
        for name, value in zip(names, values):
            point = _merge(point, value if name == 'point' else
                           {name: value})
        points.append(point)
    return points


def run_sweep(configs: Sequence[RunConfig], out: str, progress: bool = True,
              rank: int = 0, world_size: int = 1, device: str = 'cpu',
              checkpoint_every: Optional[float] = None,
              save_models: bool = False) -> List[Dict[str, Any]]:
    """Runs every config whose key is not yet in ``out/results.jsonl``;
    with several ranks, rank ``r`` takes configs ``r, r + W, ...``. Each
    run is claimed first (:mod:`.claims`): a run another process is
    training is skipped, so processes sharing ``out`` never train the same
    run. A killed
    sweep loses only the run in flight, and with ``checkpoint_every``
    (seconds, see :func:`~.runner.run`) only the epochs since that run's
    last checkpoint, and such cut-off runs are taken first; a rerun never
    duplicates a run. ``save_models`` keeps each trained model in
    ``out/models`` (see :func:`~.runner.run`)."""
    store = ResultStore(out)
    done = store.keys()
    mine = [c for i, c in enumerate(configs) if i % world_size == rank]
    todo = [c for c in mine if c.key() not in done]
    if checkpoint_every is not None:
        todo.sort(key=lambda c: -_epochs_done(out, c))
    written = []
    bar = tqdm(todo, desc=f'sweep ({len(mine) - len(todo)} done)',
               disable=not progress)
    claimed = 0
    for cfg in bar:
        bar.set_postfix_str(f'{cfg.dataset}/{cfg.model}/L{cfg.depth}/'
                            f's{cfg.seed}')
        claim = RunClaim(os.path.join(out, 'claims'), cfg.key())
        if not claim.acquire():  # another process is training it
            claimed += 1
            continue
        try:
            # It may have been finished since this sweep read the store.
            if cfg.key() in store.keys():
                continue
            # runner.run is looked up per run, so a wrapper set on the
            # module (e.g. one that counts runs) sees every call.
            record = runner.run(cfg, out=out, progress=progress,
                                device=device,
                                checkpoint_every=checkpoint_every,
                                save=save_models)
            if store.append(record):
                written.append(record)
        finally:
            claim.release()
    if claimed and progress:
        tqdm.write(f'sweep: {claimed} run(s) claimed by other processes '
                   f'writing {out} were left to them')
    return written


def _epochs_done(out: str, cfg: RunConfig) -> int:
    """Epochs a cut-off run of ``cfg`` has checkpointed under ``out`` (0
    without a checkpoint). A resumed sweep takes such runs first, the most
    trained first: their epochs are paid for, and a sweep stopped again soon
    still turns them into records."""
    state = RunCheckpoint(os.path.join(out, 'checkpoints'), cfg.key()).load(mmap=True)
    return 0 if state is None else int(state['epoch'])


def completed(configs: Iterable[RunConfig], out: str) -> int:
    keys = ResultStore(out).keys()
    return sum(c.key() in keys for c in configs)

