"""Shared fixtures of the layer tests: the fused path or the torch ops, and
inputs against networkx/numpy oracles."""
import networkx as nx
import numpy as np
import pytest
import torch

from ddl_gnn.ops import cpu_kernels


@pytest.fixture(params=['kernels', 'torch-ops'])
def path(request, monkeypatch):
    """The fused CPU kernels (skipped where they cannot be built), or the
    torch-op path they replace (``DDL_GNN_CPU_KERNELS=0``)."""
    if request.param == 'kernels':
        if cpu_kernels.kernels() is None:
            pytest.skip('fused CPU kernels not buildable here')
    else:
        monkeypatch.setenv('DDL_GNN_CPU_KERNELS', '0')
    return request.param


@pytest.fixture
def nx_inputs():
    """``make(n, m, d, graph_seed, feature_seed)``: a networkx G(n, m)
    graph, its symmetric ``edge_index`` and float64 states ``x``, ``x0``
    ``[n, d]``; returns ``(G, x, x0, edge_index)``."""
    def make(n, m, d, graph_seed, feature_seed):
        g = torch.Generator().manual_seed(feature_seed)
        G = nx.gnm_random_graph(n, m, seed=graph_seed)
        edges = np.array(list(G.edges())).T
        edge_index = torch.tensor(np.concatenate([edges, edges[::-1]], 1))
        x = torch.randn(n, d, generator=g, dtype=torch.float64)
        x0 = torch.randn(n, d, generator=g, dtype=torch.float64)
        return G, x, x0, edge_index
    return make
