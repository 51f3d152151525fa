import networkx as nx
import pytest
import torch


def nx_to_edge_index(g: nx.Graph) -> torch.Tensor:
    """Both directions of every undirected edge of ``g`` (nodes 0..N-1)."""
    edges = list(g.edges())
    if not edges:
        return torch.empty(2, 0, dtype=torch.long)
    e = torch.tensor(edges, dtype=torch.long).t()
    return torch.cat([e, e.flip(0)], dim=1)


@pytest.fixture
def small_graph():
    """A connected, non-regular, non-bipartite graph with 12 nodes."""
    g = nx.connected_watts_strogatz_graph(12, 4, 0.3, seed=1)
    torch.manual_seed(0)
    x = torch.randn(12, 5, dtype=torch.float64)
    return g, x, nx_to_edge_index(g)
