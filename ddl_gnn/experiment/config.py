"""One run's configuration, its identity (for resume) and its CLI command."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional

LOADERS = ('full', 'random', 'neighbor', 'cluster')
#: ``load_dataset`` options that say where data are read and written.
_DATA_PLACE = frozenset({'root', 'cache', 'download'})
#: How a full-graph node task hands its graph to the model.
ADJS = ('edge_index', 'csr')


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


#: field -> (test, expected form) for the value of every RunConfig field.
_FORMS = {
    'dataset': (lambda v: isinstance(v, str) and v != '', 'a dataset name'),
    'model': (lambda v: isinstance(v, str) and v != '', 'a model name'),
    'depth': (lambda v: _is_int(v) and v >= 0, 'an int >= 0'),
    'seed': (lambda v: _is_int(v) and v >= 0, 'an int >= 0'),
    'hidden': (lambda v: _is_int(v) and v >= 1, 'an int >= 1'),
    'lr': (lambda v: _is_number(v) and v > 0, 'a finite number > 0'),
    'weight_decay': (lambda v: _is_number(v) and v >= 0,
                     'a finite number >= 0'),
    'weight_decay_conv': (lambda v: v is None or (_is_number(v) and v >= 0),
                          "a finite number >= 0 or none"),
    'dropout': (lambda v: _is_number(v) and 0 <= v < 1, 'a number in [0, 1)'),
    'epochs': (lambda v: _is_int(v) and v >= 1, 'an int >= 1'),
    'patience': (lambda v: v is None or (_is_int(v) and v >= 0),
                 'an int >= 0 (0 or none: no early stopping)'),
    'batch_size': (lambda v: _is_int(v) and v >= 1, 'an int >= 1'),
    'num_parts': (lambda v: _is_int(v) and v >= 1, 'an int >= 1'),
    'split': (lambda v: _is_int(v) and v >= 0, 'an int >= 0'),
    'model_kwargs': (lambda v: isinstance(v, dict) and all(
        isinstance(k, str) for k in v), 'a table / JSON object of options'),
    'dataset_kwargs': (lambda v: isinstance(v, dict) and all(
        isinstance(k, str) for k in v), 'a table / JSON object of options'),
    'measure': (lambda v: isinstance(v, bool), 'true or false'),
}


def _check_field_values(cfg: 'RunConfig') -> None:
    """Every field of the expected type and range: a config file or flag
    with a wrong value fails here, naming the field, not later inside
    training (or worse, trains with it: a negative weight decay)."""
    for name, (ok, form) in _FORMS.items():
        value = getattr(cfg, name)
        if not ok(value):
            raise ValueError(f"run option '{name}' must be {form}, got "
                             f"{value!r}")


def portable_path(path: str) -> str:
    """``path`` relative to the working directory where it lies under it
    (a record's command then reruns from the same folder on any machine,
    e.g. a checkout's root); otherwise as given."""
    try:
        rel = os.path.relpath(os.path.abspath(path))
    except ValueError:      # another drive (Windows): no relative form
        return path
    return path if rel == '..' or rel.startswith('..' + os.sep) else rel


@dataclass
class RunConfig:
    """Everything that determines one training run.

    ``depth`` is the number of message-passing layers. ``model_kwargs`` go to
    :func:`ddl_gnn.models.build_model` (``d_v``, ``beta_init``, ``alpha``,
    ``norm``, ``conv``, ...), ``dataset_kwargs`` to
    :func:`ddl_gnn.data.load_dataset` (csbm sizes). ``weight_decay_conv``
    decays the message-passing layers separately from the encoder, decoder
    and norms (GCNII's paper does so for its convs and linears). ``adj='csr'``
    trains full-graph node tasks on the transposed sparse adjacency
    (:func:`ddl_gnn.nn.adjacency.to_adj_t`: one sparse-dense product per
    layer instead of ``E`` gathered messages; the same operator).
    """
    dataset: str
    model: str
    depth: int
    seed: int = 0
    hidden: int = 64
    lr: float = 0.01
    weight_decay: float = 5e-4
    weight_decay_conv: Optional[float] = None
    dropout: float = 0.5
    epochs: int = 200
    patience: Optional[int] = 100
    batch_size: int = 128
    loader: str = 'full'
    num_parts: int = 8
    adj: str = 'edge_index'
    split: int = 0
    model_kwargs: Dict[str, Any] = field(default_factory=dict)
    dataset_kwargs: Dict[str, Any] = field(default_factory=dict)
    measure: bool = True

    def __post_init__(self):
        _check_field_values(self)
        if self.loader not in LOADERS:
            raise ValueError(f"'loader' must be one of {LOADERS}, got "
                             f"{self.loader!r}")
        if self.adj not in ADJS:
            raise ValueError(f"'adj' must be one of {ADJS}, got {self.adj!r}")
        if self.adj != 'edge_index' and self.loader != 'full':
            raise ValueError(f"adj={self.adj!r} needs loader='full' (the "
                             f"mini-batch loaders build edge_index "
                             f"subgraphs), got loader={self.loader!r}")
        moved = _DATA_PLACE & set(self.dataset_kwargs)
        if moved:
            raise ValueError(
                f"'dataset_kwargs' may not set {sorted(moved)}: where data "
                f"are read from is the caller's choice (--data-root or "
                f"$DDL_GNN_DATA), not a config file's, since a config "
                f"received with a data folder could otherwise point loading "
                f"at it")
        if self.depth < 0 or self.epochs < 1:
            raise ValueError(f"'depth' must be >= 0 and 'epochs' >= 1, got "
                             f"depth={self.depth}, epochs={self.epochs}")

    def changed(self) -> Dict[str, Any]:
        """The fields that differ from their defaults (plus the identity
        fields ``dataset``, ``model``, ``depth``, ``seed``)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = dataclasses.MISSING
            if value != default:
                out[f.name] = value
        return out

    def key(self) -> str:
        """Stable identity of the run: records with the same key are the
        same run (resume skips them). Only non-default fields enter the
        hash, so adding an option with a default keeps old keys valid."""
        blob = json.dumps(self.changed(), sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def command(self, out: str, nproc: Optional[int] = None) -> str:
        """The ``ddl-gnn train`` command that reproduces this run; with
        ``nproc``, the ``torchrun`` command that trains it data-parallel
        over ``nproc`` processes (``train --distributed``)."""
        if nproc is None:
            args = ['ddl-gnn', 'train']
        else:
            args = ['torchrun', f'--nproc_per_node={nproc}', '-m', 'ddl_gnn',
                    'train', '--distributed']
        for name, value in self.changed().items():
            flag = '--' + name.replace('_', '-')
            if isinstance(value, bool):
                args.append(flag if value else '--no-' + flag[2:])
            elif isinstance(value, dict):
                args += [flag, json.dumps(value, sort_keys=True)]
            elif value is None:
                args += [flag, 'none']
            else:
                args += [flag, str(value)]
        # The config holds every value the run used: its command must not
        # take the recommended settings of today's table on top of them.
        args += ['--no-recommended', '--out', portable_path(out)]
        return ' '.join(shlex.quote(a) for a in args)
