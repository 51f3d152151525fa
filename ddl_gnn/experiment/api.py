r"""The Python API of the experiments: what ``ddl-gnn train``, ``sweep`` and
``report`` do, callable from a script or a notebook. The functions are
exported at the top level (``ddl_gnn.experiment.sweep`` and ``.report`` are
the modules behind them)::

    import ddl_gnn

    rec = ddl_gnn.train('cora', 'delta', depth=16, out='runs/cora')
    recs = ddl_gnn.sweep('demo', out='runs/demo')     # a packaged config
    recs = ddl_gnn.sweep(out='runs/x', dataset='csbm',
                         models=['res+', 'delta'], depths=[2, 16], seeds=3,
                         epochs=100)
    ddl_gnn.report('runs/x')                           # report.md + plots
    df = ddl_gnn.results('runs/x')                     # a pandas DataFrame
    ddl_gnn.write_csv('runs/x')                        # runs/x/results.csv

Records are the dicts of ``OUT/results.jsonl`` (one per run); a run whose
key is already there is not run again by :func:`sweep`.
"""
from __future__ import annotations

import csv
import json
from dataclasses import fields
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

from .config import RunConfig
from .recommended import with_recommended
from .records import ResultStore

# train, sweep and report import their modules when called: those load
# torch and PyG, which reading records (results, load_records, write_csv)
# does not need.

Records = Union[str, Path, Iterable[Dict[str, Any]]]

#: Record fields of a results table, in column order (config fields follow).
COLUMNS = ('key', 'dataset', 'model', 'depth', 'seed', 'metric', 'train',
           'valid', 'test', 'best_epoch', 'epochs_run', 'num_params',
           'time_s', 'device', 'ddl_gnn', 'git_sha', 'model_path')


def train(dataset: str, model: str, depth: int, *, seed: int = 0,
          out: str = 'runs/train', device: str = 'cpu',
          save_model: bool = False, checkpoint_every: Optional[float] = None,
          progress: bool = False, recommended: bool = True,
          **options: Any) -> Dict[str, Any]:
    r"""Trains one configuration (``ddl-gnn train``) and appends its record
    to ``out/results.jsonl``.

    Args:
        dataset (str): a name of :data:`ddl_gnn.data.DATASETS`.
        model (str): a family of :data:`ddl_gnn.models.MODELS`.
        depth (int): message-passing layers.
        seed (int, optional): the run's seed. (default: :obj:`0`)
        out (str, optional): output folder. (default: :obj:`'runs/train'`)
        device (str, optional): where it runs. (default: :obj:`'cpu'`)
        save_model (bool, optional): keep the trained model in
            ``out/models`` (:func:`ddl_gnn.load_model`).
            (default: :obj:`False`)
        checkpoint_every (float, optional): seconds between checkpoints of
            the training state (``None``: none). (default: :obj:`None`)
        progress (bool, optional): show a progress bar.
            (default: :obj:`False`)
        recommended (bool, optional): fill the options not given with the
            recommended settings of this dataset and model
            (:mod:`ddl_gnn.experiment.recommended`). (default: :obj:`True`)
        **options: :class:`RunConfig` fields (``hidden``, ``lr``,
            ``epochs``, ``model_kwargs``, ``dataset_kwargs``, ...).

    Returns:
        The run's record.
    """
    from .runner import run
    if recommended:
        options = with_recommended(dataset, model, options, options)
    cfg = RunConfig(dataset=dataset, model=model, depth=depth, seed=seed,
                    **options)
    record = run(cfg, out=out, progress=progress, device=device,
                 checkpoint_every=checkpoint_every, save=save_model)
    ResultStore(out).append(record)
    return record


def sweep(config: Optional[Union[str, Dict[str, Any]]] = None, *, out: str,
          dataset: Optional[str] = None,
          models: Optional[Sequence[str]] = None,
          depths: Optional[Sequence[int]] = None,
          seeds: Optional[Union[int, Sequence[int]]] = None,
          device: str = 'cpu', report: bool = True,
          save_models: bool = False,
          checkpoint_every: Optional[float] = None, progress: bool = False,
          **options: Any) -> List[Dict[str, Any]]:
    r"""Runs a sweep (``ddl-gnn sweep``): every run of ``config`` and the
    axes given here that ``out/results.jsonl`` does not hold yet.

    Args:
        config (str or dict, optional): a TOML file, a packaged config name
            (``'demo'``) or an already parsed spec (see
            :mod:`~ddl_gnn.experiment.sweep`). (default: :obj:`None`)
        out (str): output folder.
        dataset, models, depths, seeds: the sweep's axes, replacing the
            config's.
        device (str, optional): where runs execute. (default: :obj:`'cpu'`)
        report (bool, optional): write ``out/report.md`` and the plots.
            (default: :obj:`True`)
        save_models (bool, optional): keep each trained model in
            ``out/models``. (default: :obj:`False`)
        checkpoint_every (float, optional): as in :func:`train`.
        progress (bool, optional): show progress bars.
            (default: :obj:`False`)
        **options: :class:`RunConfig` fields applied to every run last.

    Returns:
        The records of all the sweep's runs (those run now and those found).
    """
    from .report import write_report
    from .sweep import find_config, load_config, run_sweep, sweep_configs
    if isinstance(config, dict):
        spec = config
    else:
        spec = load_config(find_config(str(config))) if config else {}
    configs = sweep_configs(spec, options, dataset=dataset, models=models,
                            depths=depths, seeds=seeds)
    run_sweep(configs, out, progress=progress, device=device,
              checkpoint_every=checkpoint_every, save_models=save_models)
    if report:
        write_report(out)
    keys = {c.key() for c in configs}
    return [r for r in ResultStore(out).load() if r.get('key') in keys]


def report(out: str) -> Path:
    """Writes ``out/report.md`` and its plots (``ddl-gnn report``); returns
    the report's path. Leaves the global matplotlib backend alone."""
    from .report import write_report
    return write_report(out)


def load_records(source: Records) -> List[Dict[str, Any]]:
    """The records of a results folder (``results.jsonl`` and its archive),
    or ``source`` itself when it already is records."""
    if isinstance(source, (str, Path)):
        return ResultStore(str(source)).load()
    return list(source)


def result_rows(source: Records) -> List[Dict[str, Any]]:
    """One flat row per record: :data:`COLUMNS`, then every
    :class:`RunConfig` field not among them (``model_kwargs`` and
    ``dataset_kwargs`` as JSON text)."""
    extra = [f.name for f in fields(RunConfig) if f.name not in COLUMNS]
    rows = []
    for r in load_records(source):
        row = {c: r.get(c) for c in COLUMNS}
        cfg = r.get('config', {})
        for name in extra:
            value = cfg.get(name)
            row[name] = json.dumps(value, sort_keys=True) \
                if isinstance(value, dict) else value
        rows.append(row)
    return rows


def results(source: Records):
    """The results as a :class:`pandas.DataFrame` (rows of
    :func:`result_rows`). Needs pandas (``pip install pandas``);
    :func:`write_csv` does not."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("ddl_gnn.experiment.results needs pandas (pip "
                          "install pandas); write_csv writes the same table "
                          "without it") from None
    rows = result_rows(source)
    columns = list(rows[0]) if rows else list(COLUMNS)
    return pd.DataFrame(rows, columns=columns)


def write_csv(source: Records, path: Optional[Union[str, Path]] = None
              ) -> Path:
    """Writes the rows of :func:`result_rows` as CSV (default
    ``<folder>/results.csv`` for a folder ``source``); returns the path."""
    if path is None:
        if not isinstance(source, (str, Path)):
            raise ValueError('write_csv: give a path for records that do '
                             'not come from a folder')
        path = Path(source) / 'results.csv'
    rows = result_rows(source)
    path = Path(path)
    with open(path, 'w', newline='') as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows
                                else list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return path
