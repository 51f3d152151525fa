import math

import networkx as nx
import pytest
import torch
from conftest import nx_to_edge_index

from ddl_gnn.metrics import (dirichlet_energy, effective_rank, mad, mad_gap,
                             normalized_dirichlet_energy, numerical_rank,
                             relative_dirichlet_energy, representation_norm)

GRAPH_FNS = [dirichlet_energy, relative_dirichlet_energy,
             normalized_dirichlet_energy, mad]
NODE_FNS = [numerical_rank, effective_rank, representation_norm]


@pytest.fixture
def three_graphs():
    gs = [nx.cycle_graph(5), nx.path_graph(9),
          nx.connected_watts_strogatz_graph(12, 4, 0.3, seed=0)]
    torch.manual_seed(0)
    parts, xs, eis, batch, off = [], [], [], [], 0
    for k, g in enumerate(gs):
        x = torch.randn(len(g), 4, dtype=torch.float64)
        ei = nx_to_edge_index(g)
        parts.append((x, ei))
        xs.append(x)
        eis.append(ei + off)
        batch.append(torch.full((len(g), ), k, dtype=torch.long))
        off += len(g)
    # Shuffle the edge order so graphs are not contiguous in edge_index.
    ei = torch.cat(eis, 1)
    ei = ei[:, torch.randperm(ei.size(1))]
    return parts, torch.cat(xs), ei, torch.cat(batch)


def test_batched_equals_mean_of_separate_calls(three_graphs):
    parts, x, ei, batch = three_graphs
    for fn in GRAPH_FNS:
        want = sum(float(fn(xg, eg)) for xg, eg in parts) / len(parts)
        assert math.isclose(float(fn(x, ei, batch=batch)), want,
                            rel_tol=1e-10), fn.__name__
    for fn in NODE_FNS:
        want = sum(float(fn(xg)) for xg, _ in parts) / len(parts)
        assert math.isclose(float(fn(x, batch=batch)), want,
                            rel_tol=1e-10), fn.__name__
    # MADGap is undefined (NaN) on the 5-cycle (no pair 3 hops apart), so
    # the batched value averages the graphs where it is defined.
    sep = [float(mad_gap(xg, eg, 1, 3)) for xg, eg in parts]
    assert math.isnan(sep[0]) and not any(map(math.isnan, sep[1:]))
    want = (sep[1] + sep[2]) / 2
    assert math.isclose(float(mad_gap(x, ei, 1, 3, batch=batch)), want,
                        rel_tol=1e-10)


def test_batched_skips_edgeless_graph_for_mad(three_graphs):
    parts, x, ei, batch = three_graphs
    x = torch.cat([x, torch.randn(2, 4, dtype=torch.float64)])
    batch = torch.cat([batch, torch.tensor([3, 3])])
    want = sum(float(mad(xg, eg)) for xg, eg in parts) / len(parts)
    assert math.isclose(float(mad(x, ei, batch=batch)), want, rel_tol=1e-10)
    # An edgeless graph has zero energy and counts in the energy average.
    want = sum(float(dirichlet_energy(xg, eg)) for xg, eg in parts) / 4
    assert math.isclose(float(dirichlet_energy(x, ei, batch=batch)), want,
                        rel_tol=1e-10)


def test_edges_across_graphs_rejected(three_graphs):
    _, x, ei, batch = three_graphs
    bad = torch.cat([ei, torch.tensor([[0], [20]])], 1)
    with pytest.raises(ValueError, match='different graphs'):
        dirichlet_energy(x, bad, batch=batch)
