r"""Recommended training settings per (dataset, model family).

``ddl_gnn/configs/recommended.toml`` holds, for a dataset and a family, the
run options the depth study selected on validation (``study/configs/
select_*.toml``). ``ddl-gnn train`` and :func:`ddl_gnn.train` apply them to
every option the caller does not set, so a run with defaults only trains
with the settings behind the published tables; an option given explicitly
always wins, and ``model_kwargs`` / ``dataset_kwargs`` are merged key by
key. The record's config holds the values used, so its command reproduces
the run without this table.

A table with a ``datasets`` list is a group: its entry for a family holds
for every listed dataset, and a dataset's own entry adds to it (its fields
win; ``model_kwargs`` / ``dataset_kwargs`` merge key by key), so a setting
shared by several datasets is written once.
"""
from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any, Dict, Iterable

FILE = 'recommended.toml'
_DICT_FIELDS = ('model_kwargs', 'dataset_kwargs')
#: The key that makes a table a group: the datasets its entries hold for.
GROUP_KEY = 'datasets'


def _table() -> Dict[str, Any]:
    text = (resources.files('ddl_gnn') / 'configs' / FILE).read_text()
    return tomllib.loads(text)


def _merge(base: Dict[str, Any], top: Dict[str, Any]) -> Dict[str, Any]:
    """``top`` over ``base``; dict fields merge key by key."""
    out = {**base, **top}
    for name in _DICT_FIELDS:
        if name in base and name in top:
            out[name] = {**base[name], **top[name]}
    return out


def recommended_settings(dataset: str, model: str) -> Dict[str, Any]:
    """The recommended run options of ``model`` on ``dataset``: the entry
    of a group listing the dataset, under the dataset's own entry (empty
    when neither has one; names are matched case-insensitively)."""
    table = {k.lower(): v for k, v in _table().items()}
    name = dataset.lower()
    out: Dict[str, Any] = {}
    for group in table.values():
        members = {d.lower() for d in group.get(GROUP_KEY, ())}
        if name in members and model in group:
            out = _merge(out, group[model])
    own = table.get(name, {})
    if GROUP_KEY not in own:
        out = _merge(out, own.get(model, {}))
    return out


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
