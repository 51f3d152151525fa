"""Graph-level training scores valid, test and train in batches larger than
the training batches without changing a number: the same histories, the
same best epoch and the same weights as scoring in training-size batches."""
import pytest
import torch

from ddl_gnn.experiment import train as train_mod
from ddl_gnn.experiment.config import RunConfig
from ddl_gnn.experiment.graph_loader import GatherGraphLoader
from ddl_gnn.experiment.runner import make_model, make_optimizer


def _fit(ds, cfg):
    torch.manual_seed(cfg.seed)
    model = make_model(cfg, ds)
    best = train_mod.fit_graph(model, ds, cfg, make_optimizer(cfg, model),
                               progress=False)
    return best, model.state_dict()


@pytest.mark.parametrize('family,kwargs', [
    ('delta', {'beta_init': 0.1}), ('res+', {}),
    ('gcnii', {'alpha': 0.1, 'theta': 0.5})])
def test_large_scoring_batches_change_no_number(data_root, monkeypatch,
                                                family, kwargs):
    from ddl_gnn.data import load_dataset
    ds = load_dataset('ogbg-molbbbp', root=data_root)
    cfg = RunConfig(dataset='ogbg-molbbbp', model=family, depth=3,
                    hidden=32, dropout=0.2, lr=1e-3, weight_decay=0.0,
                    epochs=3, batch_size=64, seed=2, model_kwargs=kwargs)
    passes = []
    real_iter = GatherGraphLoader.__iter__

    def counted(loader):
        passes.append(loader.shuffle)
        return real_iter(loader)

    monkeypatch.setattr(GatherGraphLoader, '__iter__', counted)
    best, state = _fit(ds, cfg)
    # Each epoch draws a base seed per pass over train, valid and test, as
    # PyG's DataLoader does: the training shuffles stay that protocol's.
    assert passes == [True, False, False] * cfg.epochs
    # EVAL_BATCH_GRAPHS = 1: scoring batches are the training batch size,
    # what fit_graph did before it scored in larger batches.
    monkeypatch.setattr(train_mod, 'EVAL_BATCH_GRAPHS', 1)
    ref, ref_state = _fit(ds, cfg)
    assert best['history'] == ref['history']
    assert best['epoch'] == ref['epoch'] and best['train'] == ref['train']
    assert all(torch.equal(state[k], ref_state[k]) for k in state)


def test_in_order_batch_size():
    from torch_geometric.data import Data
    g = torch.Generator().manual_seed(0)
    graphs = [Data(x=torch.randn(n, 3, generator=g),
                   edge_index=torch.randint(0, n, (2, 2 * n), generator=g),
                   y=torch.tensor([[float(i)]]))
              for i, n in enumerate([3, 5, 2, 7, 4, 6, 1])]
    loader = GatherGraphLoader(graphs, 2, shuffle=True, generator=g)
    state = g.get_state()
    small = list(loader.in_order())
    large = list(loader.in_order(batch_size=5))
    assert torch.equal(g.get_state(), state)   # no random draws
    assert [b.num_graphs for b in small] == [2, 2, 2, 1]
    assert [b.num_graphs for b in large] == [5, 2]
    for key in ('x', 'y'):
        assert torch.equal(torch.cat([b[key] for b in small]),
                           torch.cat([b[key] for b in large]))
    with pytest.raises(ValueError, match='batch_size'):
        next(loader.in_order(batch_size=0))
