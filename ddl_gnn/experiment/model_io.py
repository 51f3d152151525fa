r"""Trained models on disk: weights with the configuration that rebuilds them.

A run trained with ``save_model=True`` (``ddl-gnn train --save-model``)
writes ``OUT/models/<run key>.pt``: the model's ``state_dict`` and, as JSON
strings, its :class:`~.config.RunConfig` and the *build spec* — the
arguments of :func:`~ddl_gnn.models.build_model` with the dataset-dependent
parts (input/output widths, the OGB atom and bond encoders, the node
embedding of feature-less link tasks) written out, so no dataset is needed
to rebuild the model. :func:`load_model` reads the file with
``torch.load(weights_only=True)`` (tensors, strings and plain containers
only: no code from the file runs) and returns the rebuilt model in eval
mode::

    model = ddl_gnn.load_model('runs/bace/models/0123456789abcdef.pt')
    out = model(x, edge_index, batch=batch)
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch
from torch import nn

from ..models import build_model
from .config import RunConfig
from .tasks import out_channels
from .train import LinkPredictor

#: Bump when the file layout changes; an older file is then an error.
FORMAT = 1


class NodeEmbedding(nn.Module):
    """Learnable node embeddings as the encoder of feature-less graphs
    (ogbl-ddi): ``x`` holds node ids."""

    def __init__(self, num_nodes: int, channels: int):
        super().__init__()
        self.emb = nn.Embedding(num_nodes, channels)

    def reset_parameters(self):
        self.emb.reset_parameters()

    def forward(self, x):
        return self.emb(x.view(-1))


def model_spec(cfg: RunConfig, ds) -> Dict[str, Any]:
    """The JSON-ready build spec of ``cfg``'s model on dataset ``ds``."""
    kwargs = dict(cfg.model_kwargs)
    kwargs.setdefault('dropout', cfg.dropout)
    conv = kwargs.get('conv', 'gcn')
    spec: Dict[str, Any] = dict(name=cfg.model, hidden=cfg.hidden,
                                depth=cfg.depth, encoder=None,
                                edge_encoder=None)
    if ds.task == 'graph':
        kwargs.setdefault('readout', 'mean')
        if ds.molecular:
            spec['encoder'] = dict(kind='atom')
            if conv in ('gine', 'gen', 'gat'):
                spec['edge_encoder'] = dict(kind='bond')
    if ds.task == 'link':
        spec['encoder'] = dict(kind='embedding', num_nodes=ds.data.num_nodes)
        spec.update(in_channels=-1, out_channels=cfg.hidden)
    else:
        spec.update(in_channels=ds.num_features,
                    out_channels=out_channels(ds))
    spec['kwargs'] = kwargs
    return spec


def _encoder(desc: Optional[Dict[str, Any]], hidden: int
             ) -> Optional[nn.Module]:
    if desc is None:
        return None
    if desc['kind'] == 'atom':
        from ogb.graphproppred.mol_encoder import AtomEncoder
        return AtomEncoder(hidden)
    if desc['kind'] == 'bond':
        from ogb.graphproppred.mol_encoder import BondEncoder
        return BondEncoder(hidden)
    if desc['kind'] == 'embedding':
        return NodeEmbedding(desc['num_nodes'], hidden)
    raise ValueError(f"unknown encoder kind {desc['kind']!r} in a model "
                     f"spec")


def build_from_spec(spec: Dict[str, Any]) -> nn.Module:
    """The (freshly initialised) model that :func:`model_spec` describes."""
    kwargs = dict(spec['kwargs'])
    for key in ('encoder', 'edge_encoder'):
        module = _encoder(spec.get(key), spec['hidden'])
        if module is not None:
            kwargs[key] = module
    return build_model(spec['name'], spec['in_channels'], spec['hidden'],
                       spec['depth'], spec['out_channels'], **kwargs)


def save_model(path: Union[str, Path], model: nn.Module, cfg: RunConfig,
               spec: Dict[str, Any],
               predictor: Optional[nn.Module] = None) -> Path:
    """Writes ``model`` (and a link task's ``predictor``) with ``cfg`` and
    ``spec`` to ``path``, atomically (a temporary file, then
    ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = dict(format=FORMAT, config=json.dumps(asdict(cfg)),
                spec=json.dumps(spec),
                model={k: v.detach().cpu()
                       for k, v in model.state_dict().items()})
    if predictor is not None:
        blob['predictor'] = {k: v.detach().cpu()
                             for k, v in predictor.state_dict().items()}
        blob['predictor_hidden'] = cfg.hidden
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix='.model.')
    os.close(fd)
    try:
        torch.save(blob, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_config(path: Union[str, Path]) -> Dict[str, Any]:
    """The :class:`~.config.RunConfig` fields a saved model was trained
    with (a dict)."""
    return json.loads(_read(path)['config'])


def _read(path: Union[str, Path]) -> Dict[str, Any]:
    blob = torch.load(path, map_location='cpu', weights_only=True)
    if not isinstance(blob, dict) or blob.get('format') != FORMAT:
        raise ValueError(f'{path}: not a ddl_gnn model file of format '
                         f'{FORMAT}')
    return blob


def load_model(path: Union[str, Path], predictor: bool = False
               ) -> Union[nn.Module, Tuple[nn.Module, nn.Module]]:
    r"""Rebuilds a model saved by a run with ``save_model=True``.

    Args:
        path (str or Path): an ``OUT/models/<run key>.pt`` file.
        predictor (bool, optional): for link tasks, also return the trained
            edge predictor (:class:`~.train.LinkPredictor`).
            (default: :obj:`False`)

    Returns:
        The model in eval mode, on the CPU (``.to(device)`` it for a GPU);
        with ``predictor=True``, ``(model, predictor)``. Its training
        configuration is :func:`read_config`.
    """
    blob = _read(path)
    model = build_from_spec(json.loads(blob['spec']))
    model.load_state_dict(blob['model'])
    model.eval()
    if not predictor:
        return model
    if 'predictor' not in blob:
        raise ValueError(f'{path}: no predictor saved (not a link task)')
    head = LinkPredictor(int(blob['predictor_hidden']))
    head.load_state_dict(blob['predictor'])
    return model, head.eval()
