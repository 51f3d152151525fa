"""Per-layer measurements of a model, pivoted for the result records."""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Dict, List

import torch
from torch import nn

from ..metrics import beta_summary, find_beta_modules, probe_model
from .tasks import loss_fn
from .train import graph_forward, model_device

#: Metrics recorded for every layer of every run.
RUN_METRICS = ('dirichlet_energy', 'relative_dirichlet_energy', 'mad',
               'numerical_rank', 'effective_rank', 'norm')
#: Graphs probed for graph-level tasks (metrics are per-graph averages).
PROBE_GRAPHS = 256


def _pivot(records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    layers: Dict[int, Dict[str, Any]] = defaultdict(dict)
    for r in records:
        if r['metric'].startswith('beta_'):
            continue
        layers[r['layer']]['layer'] = r['layer']
        layers[r['layer']][r['metric']] = r['value']
    return [layers[k] for k in sorted(layers)]


def beta_records(model: nn.Module) -> List[Dict[str, Any]]:
    """One dict per delta layer: the β audit of its last forward pass."""
    out = []
    for layer, (_, module) in enumerate(find_beta_modules(model), 1):
        stats = beta_summary(module.last_beta)
        stats.pop('bin_edges')
        out.append(dict(layer=layer, **stats))
    return out


def measure(model: nn.Module, ds, split_part: str = 'train'
            ) -> Dict[str, Any]:
    """Per-layer metrics (plus ``grad_norm`` of the training loss) and the
    β audit, with the model in eval mode (no dropout)."""
    was_training = model.training
    model.eval()
    if ds.task == 'graph':
        from torch_geometric.loader import DataLoader
        graphs = ds.subset('valid')[:PROBE_GRAPHS]
        data = next(iter(DataLoader(graphs, batch_size=PROBE_GRAPHS)))
        data = data.to(model_device(model))

        def forward(m, d):
            return graph_forward(m, d)

        def loss(out, d):
            return loss_fn(ds, out, d.y)
    else:
        data = ds.data
        idx = ds.split[split_part] if ds.task == 'node' else None
        ew = getattr(data, 'edge_weight', None)

        def forward(m, d):
            return m(d.x, d.edge_index, ew)

        def loss(out, d):
            if idx is None:  # link task: smoothness of embeddings only
                return out.pow(2).mean()
            return loss_fn(ds, out[idx], d.y[idx])

    records = probe_model(model, data, loss_fn=loss, metrics=RUN_METRICS,
                          forward_fn=forward, beta=False)
    model.train(was_training)
    return dict(per_layer=_pivot(records), beta=beta_records(model))
