r"""Recommended training settings per (dataset, model family).

``ddl_gnn/configs/recommended.toml`` holds, for a dataset and a family, the
run options the depth study selected on validation (``study/configs/
select_*.toml``). ``ddl-gnn train`` and :func:`ddl_gnn.train` apply them to
every option the caller does not set, so a run with defaults only trains
with the settings behind the published tables; an option given explicitly
always wins, and ``model_kwargs`` / ``dataset_kwargs`` are merged key by
key. The record's config holds the values used, so its command reproduces
the run without this table.
"""
from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any, Dict, Iterable

FILE = 'recommended.toml'
_DICT_FIELDS = ('model_kwargs', 'dataset_kwargs')


def _table() -> Dict[str, Any]:
    text = (resources.files('ddl_gnn') / 'configs' / FILE).read_text()
    return tomllib.loads(text)


def recommended_settings(dataset: str, model: str) -> Dict[str, Any]:
    """The recommended run options of ``model`` on ``dataset`` (empty when
    the table has none; names are matched case-insensitively)."""
    table = {k.lower(): v for k, v in _table().items()}
    return dict(table.get(dataset.lower(), {}).get(model, {}))


def with_recommended(dataset: str, model: str, options: Dict[str, Any],
                     explicit: Iterable[str]) -> Dict[str, Any]:
    """``options`` with the recommended value of every field not in
    ``explicit`` (the fields the caller set); dict fields merge key by key,
    the caller's keys winning."""
    explicit = set(explicit)
    out = dict(options)
    for name, value in recommended_settings(dataset, model).items():
        if name in _DICT_FIELDS:
            out[name] = {**value, **(out.get(name) or {})}
        elif name not in explicit:
            out[name] = value
    return out
