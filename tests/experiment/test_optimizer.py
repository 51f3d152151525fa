"""The training runs' Adam: torch's multi-tensor implementation, bit for
bit the updates of its per-tensor loop (the CPU default)."""
import torch
import torch.nn.functional as F

from ddl_gnn.experiment import RunConfig, adam
from ddl_gnn.experiment.runner import make_optimizer
from ddl_gnn.models import build_model


def _train(model, opt, x, edge_index, y, steps=5):
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x, edge_index), y).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def test_adam_matches_the_per_tensor_loop_bit_for_bit_on_a_delta_stack():
    """Five steps of a delta stack with the run's parameter groups
    (weight decay on the convs apart): the same parameters to the bit as
    ``torch.optim.Adam(foreach=False)``."""
    torch.manual_seed(0)
    x = torch.randn(30, 8)
    edge_index = torch.randint(0, 30, (2, 90))
    y = torch.randint(0, 3, (30,))
    finals = []
    for make in (lambda g: torch.optim.Adam(g, lr=0.01, foreach=False),
                 lambda g: adam(g, 0.01)):
        torch.manual_seed(1)
        model = build_model('delta', 8, 16, 4, 3)
        groups = model.param_groups(0.01, 5e-4)
        finals.append(_train(model, make(groups), x, edge_index, y))
    torch.manual_seed(1)
    start = [p.detach() for p in build_model('delta', 8, 16, 4, 3)
             .parameters()]
    assert len(finals[0]) == len(start) > 8
    for a, b, p0 in zip(*finals, start):
        assert torch.equal(a, b)
    # the steps moved the parameters (the comparison is not of two no-ops)
    assert sum(not torch.equal(a, p0)
               for a, p0 in zip(finals[0], start)) > len(start) // 2


def test_training_runs_use_the_multi_tensor_adam():
    model = build_model('delta', 8, 16, 2, 3)
    opt = make_optimizer(RunConfig(dataset='karate', model='delta',
                                   depth=2, weight_decay_conv=0.01), model)
    assert isinstance(opt, torch.optim.Adam)
    assert all(g['foreach'] is True for g in opt.param_groups)
    assert {g['weight_decay'] for g in opt.param_groups} >= {0.01, 5e-4}
