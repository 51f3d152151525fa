"""Records grouped into the rows of a report (one model variant and its
varying training settings, on one dataset, at one depth) and the mean ± std
of their scores."""
from __future__ import annotations

import dataclasses
import math
import statistics
from collections import defaultdict
from typing import Any, Dict, List, Sequence, Tuple

from .config import RunConfig

#: A row: ``(dataset, label, depth)``.
Group = Tuple[str, str, int]


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and unbiased standard deviation (0 for a single value) of the
    finite values (None, NaN and Inf mark runs without a score)."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return float('nan'), float('nan')
    return statistics.fmean(vals), (statistics.stdev(vals)
                                    if len(vals) > 1 else 0.0)


def metric_scale(metric: str) -> float:
    """100 for scores shown in percent (accuracy, ROC-AUC, AP, Hits@K), 1
    for regression errors."""
    return 1.0 if metric in ('rmse', 'mae') else 100.0


def _variant(kwargs: Dict[str, Any]) -> str:
    return ','.join(f'{k}={v}' for k, v in sorted(kwargs.items())) or '-'


# Training settings that, when they differ between records of one model on
# one dataset, make different rows (never averaged as if they were seeds).
SETTINGS = ('lr', 'weight_decay', 'weight_decay_conv', 'dropout', 'hidden',
            'epochs', 'patience', 'dataset_kwargs', 'loader', 'batch_size',
            'num_parts', 'adj')


def _setting(r: Dict[str, Any], key: str) -> Any:
    # A record written before a setting existed ran with its default (the
    # run key promises as much), so a missing value is the default's.
    cfg = r.get('config', {})
    return cfg[key] if key in cfg else _DEFAULTS.get(key)


def _field_defaults() -> Dict[str, Any]:
    out = {}
    for f in dataclasses.fields(RunConfig):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


_DEFAULTS = _field_defaults()


def label(r: Dict[str, Any], split: bool, settings: Tuple[str, ...] = ()
          ) -> str:
    """The row label of a record: the model name, plus its model options
    when one dataset holds several variants of that model, plus the
    training settings named in ``settings`` (those that vary)."""
    kw = r.get('config', {}).get('model_kwargs', {})
    parts = [_variant(kw)] if split else []
    parts += [f'{k}={_setting(r, k)}' for k in settings]
    return f"{r['model']} [{', '.join(parts)}]" if parts else r['model']


def group_records(records: List[Dict[str, Any]]
                  ) -> Dict[Group, List[Dict[str, Any]]]:
    """Records by ``(dataset, label, depth)``; see :func:`label`."""
    variants: Dict[Tuple[str, str], set] = defaultdict(set)
    values: Dict[Tuple[str, str, str], set] = defaultdict(set)
    for r in records:
        variants[(r['dataset'], r['model'])].add(_variant(
            r.get('config', {}).get('model_kwargs', {})))
        for k in SETTINGS:
            values[(r['dataset'], r['model'], k)].add(repr(_setting(r, k)))
    groups: Dict[Group, List[Dict[str, Any]]] = defaultdict(list)
    for r in records:
        split = len(variants[(r['dataset'], r['model'])]) > 1
        vary = tuple(k for k in SETTINGS
                     if len(values[(r['dataset'], r['model'], k)]) > 1)
        groups[(r['dataset'], label(r, split, vary), r['depth'])].append(r)
    return groups
