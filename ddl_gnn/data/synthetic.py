"""Contextual stochastic block model (CSBM): the embedded default dataset.

No files: the graph is drawn deterministically from ``seed`` with a private
``torch.Generator`` (the global RNG is untouched).

* ``num_nodes`` nodes in ``num_classes`` balanced blocks (label = block).
* Features: ``x = feature_snr * mu[y] + N(0, I)``, ``mu`` random unit
  vectors in ``R^num_features`` (one per class).
* Edges: for expected degree ``avg_degree`` and edge homophily ``homophily``
  (fraction of edges inside a block), each block pair (a, b) gets a
  Poisson(``lambda_ab``) number of uniformly drawn node pairs with
  ``lambda_aa = homophily * avg_degree * n_a / 2`` and
  ``lambda_ab = (1 - homophily) * avg_degree * n * n_a * n_b /
  (n^2 - sum_k n_k^2)`` for a < b (so the expected numbers of intra- and
  inter-block edges are ``homophily * avg_degree * n / 2`` and
  ``(1 - homophily) * avg_degree * n / 2``); self loops and
  duplicates are dropped and the graph is symmetrised, so it is undirected.
  ``torch_geometric.utils.homophily(edge_index, y)`` is ≈ ``homophily``.
"""
import math

import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, to_undirected


def csbm_graph(num_nodes: int = 1000, num_classes: int = 4,
               num_features: int = 32, avg_degree: float = 10.,
               homophily: float = 0.8, feature_snr: float = 1.0,
               seed: int = 0) -> Data:
    for name, value in (('num_nodes', num_nodes),
                        ('num_classes', num_classes),
                        ('num_features', num_features), ('seed', seed)):
        if isinstance(value, bool) or not isinstance(value, int) or (
                value < (0 if name == 'seed' else 1)):
            raise ValueError(f"csbm: '{name}' must be an int >= "
                             f"{0 if name == 'seed' else 1}, got {value!r}")
    for name, value in (('avg_degree', avg_degree), ('homophily', homophily),
                        ('feature_snr', feature_snr)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise ValueError(f"csbm: '{name}' must be a finite number, got "
                             f"{value!r}")
    if avg_degree < 0:
        raise ValueError(f"csbm: 'avg_degree' must be >= 0, got {avg_degree}")
    if not 0.0 <= homophily <= 1.0:
        raise ValueError('homophily must lie in [0, 1]')
    if num_nodes < num_classes:
        raise ValueError('need num_nodes >= num_classes >= 1')
    g = torch.Generator().manual_seed(int(seed))
    n, c = int(num_nodes), int(num_classes)
    sizes = torch.full((c,), n // c, dtype=torch.long)
    sizes[:n % c] += 1
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])
    y = torch.repeat_interleave(torch.arange(c), sizes)

    mu = torch.randn(c, num_features, generator=g)
    mu = mu / mu.norm(dim=1, keepdim=True).clamp_min(1e-12)
    x = feature_snr * mu[y] + torch.randn(n, num_features, generator=g)

    cross = max(float(n * n - (sizes.double() ** 2).sum()), 1.0)
    rows, cols = [], []
    for a in range(c):
        for b in range(a, c):
            na, nb = int(sizes[a]), int(sizes[b])
            if a == b:
                lam = homophily * avg_degree * na / 2.0
            else:
                lam = (1.0 - homophily) * avg_degree * n * na * nb / cross
            m = int(torch.poisson(torch.tensor(float(lam)), generator=g))
            if m == 0:
                continue
            rows.append(offsets[a] + torch.randint(na, (m,), generator=g))
            cols.append(offsets[b] + torch.randint(nb, (m,), generator=g))
    if rows:
        ei = torch.stack([torch.cat(rows), torch.cat(cols)])
        ei = ei[:, ei[0] != ei[1]]
        ei = coalesce(to_undirected(ei, num_nodes=n), num_nodes=n)
    else:
        ei = torch.empty(2, 0, dtype=torch.long)
    return Data(x=x, y=y, edge_index=ei, num_nodes=n)
