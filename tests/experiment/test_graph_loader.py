"""GatherGraphLoader against its oracle, PyG's DataLoader: the same batches
(same graphs, same order, identical tensors) from the same generator, and
the generator left in the same state, pass after pass."""
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from ddl_gnn.experiment.graph_loader import GatherGraphLoader


def _graphs(n=23, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        nodes = int(torch.randint(1, 9, (1,), generator=g))
        edges = int(torch.randint(0, 15, (1,), generator=g))
        out.append(Data(
            x=torch.randn(nodes, 4, generator=g),
            edge_index=torch.randint(0, nodes, (2, edges), generator=g),
            edge_attr=torch.randint(0, 5, (edges, 3), generator=g),
            y=torch.randint(0, 2, (1, 2), generator=g).float(),
            node_label=torch.randint(0, 3, (nodes,), generator=g)))
    return out


def _same_batches(a, b):
    keys = [k for k in b.keys() if k != 'num_nodes']
    assert sorted(keys) == sorted(k for k in a.keys() if k != 'num_nodes')
    for k in keys:
        assert a[k].dtype == b[k].dtype, k
        assert torch.equal(a[k], b[k]), k
    assert a.num_graphs == b.num_graphs
    assert a.num_nodes == b.num_nodes


def _compare(train, valid, batch_size, seed, epochs=3):
    """Training passes interleaved with evaluation passes that share the
    generator, as in fit_graph."""
    gens = [torch.Generator().manual_seed(seed) for _ in range(2)]
    ref = [DataLoader(train, batch_size, shuffle=True, generator=gens[0]),
           DataLoader(valid, batch_size, shuffle=False, generator=gens[0])]
    new = [GatherGraphLoader(train, batch_size, shuffle=True,
                             generator=gens[1]),
           GatherGraphLoader(valid, batch_size, shuffle=False,
                             generator=gens[1])]
    batches = 0
    for _ in range(epochs):
        for r, n in zip(ref, new):
            rb, nb = list(r), list(n)
            assert len(rb) == len(nb) == len(n)
            for a, b in zip(nb, rb):
                _same_batches(a, b)
                batches += 1
        assert torch.equal(gens[0].get_state(), gens[1].get_state())
    return batches


@pytest.mark.parametrize('batch_size', [1, 4, 7, 64])
def test_batches_equal_pyg_dataloader_on_generated_graphs(batch_size):
    graphs = _graphs()
    n = _compare(graphs[:17], graphs[17:], batch_size, seed=3)
    assert n == 3 * (-(-17 // batch_size) + -(-6 // batch_size))


def test_batches_equal_pyg_dataloader_on_ogbg_molbbbp(data_root):
    from ddl_gnn.data import load_dataset
    ds = load_dataset('ogbg-molbbbp', root=data_root)
    n = _compare(ds.subset('train'), ds.subset('valid'), 64, seed=1,
                 epochs=2)
    assert n == 2 * (26 + 4)


def test_order_differs_between_passes_and_seeds():
    graphs = _graphs()
    first = [b.x for b in GatherGraphLoader(
        graphs, 23, shuffle=True, generator=torch.Generator().manual_seed(0))]
    loader = GatherGraphLoader(graphs, 23, shuffle=True,
                               generator=torch.Generator().manual_seed(1))
    second, third = [b.x for b in loader], [b.x for b in loader]
    assert not torch.equal(first[0], second[0])
    assert not torch.equal(second[0], third[0])
    assert sorted(first[0].sum(1).tolist()) == \
        pytest.approx(sorted(torch.cat([g.x for g in graphs]).sum(1).tolist()))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match='empty dataset'):
        GatherGraphLoader([], 4)
    with pytest.raises(ValueError, match='batch_size'):
        GatherGraphLoader(_graphs(3), 0)

    class Shifted(Data):
        def __inc__(self, key, value, *args, **kwargs):
            if key == 'anchor':
                return 2
            return super().__inc__(key, value, *args, **kwargs)

    graphs = [Shifted(x=torch.ones(3, 1), anchor=torch.tensor([0]))
              for _ in range(3)]
    with pytest.raises(ValueError, match="'anchor'"):
        GatherGraphLoader(graphs, 2)
    with pytest.raises(ValueError, match="'name'"):
        GatherGraphLoader([Data(x=torch.ones(2, 1), name='a')] * 2, 2)


@pytest.mark.parametrize('n_graphs', [16, 17])  # full / partial last batch
@pytest.mark.parametrize('taken', [0, 1, 3, 4])
def test_generator_advances_as_dataloader_when_a_pass_stops_early(n_graphs,
                                                                   taken):
    graphs = _graphs(n_graphs)
    gens = [torch.Generator().manual_seed(5) for _ in range(2)]
    loaders = [DataLoader(graphs, 4, shuffle=True, generator=gens[0]),
               GatherGraphLoader(graphs, 4, shuffle=True, generator=gens[1])]
    for loader in loaders:
        it = iter(loader)
        for _ in range(taken):
            next(it)
    assert torch.equal(gens[0].get_state(), gens[1].get_state())
