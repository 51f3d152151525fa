import math

import networkx as nx
import numpy as np
import pytest
import torch
from conftest import nx_to_edge_index
from torch_geometric.data import Data
from torch_geometric.nn import SimpleConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import scatter

from ddl_gnn.metrics import (dirichlet_energy, fit_decay_rate,
                             influence_per_hop, normalized_dirichlet_energy,
                             representation_norm, state_gradient_norms)


def test_fit_decay_rate_exact_exponential():
    depths = np.array([0, 1, 2, 4, 8, 16])
    vals = 3.0 * np.exp(-0.7 * depths)
    fit = fit_decay_rate(vals, depths)
    assert math.isclose(fit['slope'], -0.7, rel_tol=1e-12)
    assert math.isclose(fit['rate'], 0.7, rel_tol=1e-12)
    assert math.isclose(fit['factor'], math.exp(-0.7), rel_tol=1e-12)
    assert math.isclose(fit['intercept'], math.log(3.0), rel_tol=1e-12)
    assert math.isclose(fit['r2'], 1.0, rel_tol=1e-12)
    assert fit['num_points'] == 6 and fit['num_dropped'] == 0
    # Tensor input, default depths 0..L-1.
    fit = fit_decay_rate(torch.tensor([1.0, 0.5, 0.25, 0.125]))
    assert math.isclose(fit['factor'], 0.5, rel_tol=1e-6)


def test_fit_decay_rate_drops_non_positive_and_reports_r2():
    vals = [1.0, 0.5, 0.0, 0.125, -1.0, float('nan')]
    fit = fit_decay_rate(vals)
    assert fit['num_points'] == 3 and fit['num_dropped'] == 3
    assert math.isclose(fit['factor'], 0.5, rel_tol=1e-12)
    noisy = np.exp(-0.3 * np.arange(10)) * np.array([1, 2] * 5)
    fit = fit_decay_rate(noisy)
    y, z = np.log(noisy), np.arange(10)
    slope, icpt = np.polyfit(z, y, 1)
    r2 = 1 - ((y - (icpt + slope * z))**2).sum() / ((y - y.mean())**2).sum()
    assert math.isclose(fit['slope'], slope, rel_tol=1e-10)
    assert math.isclose(fit['r2'], r2, rel_tol=1e-10)
    assert math.isnan(fit_decay_rate([0.0, 0.0, 1.0])['rate'])
    with pytest.raises(ValueError, match="'depths'"):
        fit_decay_rate([1.0, 2.0], depths=[0, 1, 2])


def propagate(x, edge_index, num_layers):
    """Repeated GCN propagation X <- D^-1/2 (A + I) D^-1/2 X (float64)."""
    ei, w = gcn_norm(edge_index, num_nodes=x.size(0), add_self_loops=True,
                     dtype=x.dtype)
    out = [x]
    for _ in range(num_layers):
        x = scatter(w.unsqueeze(-1) * x[ei[0]], ei[1], 0, dim_size=x.size(0),
                    reduce='sum')
        out.append(x)
    return out


def second_eigenvalue(g):
    """max |lambda| over the non-dominant eigenvalues of the dense A-hat."""
    a = nx.to_numpy_array(g, nodelist=range(len(g))) + np.eye(len(g))
    dinv = 1 / np.sqrt(a.sum(1))
    ev = np.linalg.eigvalsh(dinv[:, None] * a * dinv[None, :])
    assert math.isclose(ev[-1], 1.0, rel_tol=1e-12)  # dominant, D^1/2 1
    return np.abs(ev[:-1]).max()


# Stated tolerance: the fitted log-slope is within 1% of 2 log(lambda_2)
# and the log-linear fit has R^2 > 0.9999, over depths 40..100.
SLOPE_RTOL = 0.01


@pytest.mark.parametrize('name,graph,metric', [
    # Regular graph: the dominant eigenvector of A-hat is constant, so the
    # unnormalized energy of the limit is exactly 0.
    ('cycle15', nx.cycle_graph(15), dirichlet_energy),
    ('circulant31', nx.circulant_graph(31, [1, 3]), dirichlet_energy),
    # Non-regular graph: the limit is prop. to D^1/2 1, which is the zero
    # set of the normalized energy (not of the unnormalized one).
    ('watts_strogatz', nx.connected_watts_strogatz_graph(30, 4, 0.2, seed=3),
     normalized_dirichlet_energy),
])
def test_energy_decays_at_spectral_rate(name, graph, metric):
    torch.manual_seed(0)
    ei = nx_to_edge_index(graph)
    x0 = torch.randn(len(graph), 6, dtype=torch.float64)
    states = propagate(x0, ei, 100)
    energies = [float(metric(x, ei)) for x in states]
    assert all(b < a for a, b in zip(energies, energies[1:]))  # monotone
    depths = list(range(40, 101))
    fit = fit_decay_rate(energies[40:], depths)
    predicted = 2 * math.log(second_eigenvalue(graph))
    assert fit['r2'] > 0.9999, name
    assert abs(fit['slope'] - predicted) <= SLOPE_RTOL * abs(predicted), (
        name, fit['slope'], predicted)


def test_representation_norm():
    x = torch.randn(7, 4, dtype=torch.float64)
    assert math.isclose(float(representation_norm(x)),
                        float(x.norm() / math.sqrt(7)), rel_tol=1e-12)
    x3 = torch.randn(7, 4, 3, dtype=torch.float64)
    assert math.isclose(float(representation_norm(x3)),
                        float(x3.norm() / math.sqrt(7)), rel_tol=1e-12)


def test_state_gradient_norms_match_manual():
    torch.manual_seed(0)
    w1 = torch.randn(3, 3, requires_grad=True)
    w2 = torch.randn(3, 1)
    x = torch.randn(5, 3)
    h1 = x @ w1
    h2 = torch.tanh(h1) @ w2
    loss = (h2**2).sum()
    norms = state_gradient_norms(loss, [h1, h2, x])
    g2 = 2 * h2
    g1 = (g2 @ w2.t()) * (1 - torch.tanh(h1)**2)
    g1, g2 = g1.detach(), g2.detach()
    assert math.isclose(norms[0], float(g1.norm()), rel_tol=1e-5)
    assert math.isclose(norms[1], float(g2.norm()), rel_tol=1e-5)
    assert norms[2] == 0.0  # x is a leaf without grad: unused


class SumStack(torch.nn.Module):
    """y = A^k X W with plain sum aggregation (no degree normalization)."""
    def __init__(self, k, w):
        super().__init__()
        self.k, self.conv, self.w = k, SimpleConv(aggr='sum'), w

    def forward(self, x, edge_index):
        for _ in range(self.k):
            x = self.conv(x, edge_index)
        return x @ self.w


def test_influence_per_hop_matches_dense_oracle():
    g = nx.connected_watts_strogatz_graph(10, 4, 0.3, seed=0)
    torch.manual_seed(0)
    k = 2
    w = torch.randn(3, 2, dtype=torch.float64)
    data = Data(x=torch.randn(10, 3, dtype=torch.float64),
                edge_index=nx_to_edge_index(g))
    res = influence_per_hop(SumStack(k, w), data, max_hops=k,
                            num_samples=None, normalize=False)
    # d y_v / d x_u = (A^k)_{vu} W^T, so its L1 norm is (A^k)_{vu} sum|W|.
    a = nx.to_numpy_array(g, nodelist=range(10))
    ak = np.linalg.matrix_power(a, k) * float(w.abs().sum())
    hops = dict(nx.all_pairs_shortest_path_length(g))
    per_hop = np.zeros((10, k + 1))
    for v in range(10):
        for u, h in hops[v].items():
            if h <= k:
                per_hop[v, h] += ak[v, u]
    np.testing.assert_allclose(res['influence'], per_hop.mean(0), rtol=1e-10)
    assert sorted(res['nodes']) == list(range(10))
    p = per_hop / per_hop.sum(1, keepdims=True)
    assert math.isclose(res['receptive_field'], float((p @ np.arange(k + 1))
                                                      .mean()), rel_tol=1e-6)
