"""``DeltaGNN(gate_decay=...)``: the gates' parameters in an optimizer group
of their own, and the runner's optimizer without ``weight_decay_conv``
making the same updates as one group."""
import pytest
import torch

from ddl_gnn.experiment.config import RunConfig
from ddl_gnn.experiment.runner import make_optimizer
from ddl_gnn.models import build_model


def test_gates_get_their_own_group():
    model = build_model('delta', 7, 16, 3, 2, heads=4, gate_decay=0.0)
    convs, rest, gates = model.param_groups(0.01, 5e-4)
    assert [g['weight_decay'] for g in (convs, rest, gates)] == [0.01, 5e-4,
                                                                 0.0]
    want = {id(p) for layer in model.layers for p in layer.gate.parameters()}
    assert {id(p) for p in gates['params']} == want and len(want) == 6
    ids = [id(p) for g in (convs, rest, gates) for p in g['params']]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())


def test_without_gate_decay_the_gates_stay_with_the_layers():
    model = build_model('delta', 7, 16, 3, 2)
    assert len(model.param_groups(0.01, 5e-4)) == 2


@pytest.mark.parametrize('bad', [-0.1, float('nan'), 'x', True])
def test_bad_gate_decay_is_named(bad):
    with pytest.raises(ValueError, match="'gate_decay'"):
        build_model('delta', 7, 16, 3, 2, gate_decay=bad)


def test_groups_without_conv_decay_update_as_one_group():
    """weight_decay_conv unset: every group takes weight_decay, so the
    steps equal a single-group Adam's (parameter for parameter)."""
    torch.manual_seed(0)
    a = build_model('delta', 7, 16, 3, 2)
    b = build_model('delta', 7, 16, 3, 2)
    b.load_state_dict(a.state_dict())
    cfg = RunConfig(dataset='karate', model='delta', depth=3, lr=0.01,
                    weight_decay=5e-3)
    opt_a = make_optimizer(cfg, a)
    assert len(opt_a.param_groups) == 2
    opt_b = torch.optim.Adam(b.parameters(), lr=0.01, weight_decay=5e-3)
    x = torch.randn(20, 7)
    ei = torch.randint(0, 20, (2, 60))
    for _ in range(3):
        for m, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            m(x, ei).square().sum().backward()
            opt.step()
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=n)
