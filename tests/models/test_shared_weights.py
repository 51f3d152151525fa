"""``DeltaGNN(shared_weights=True)``: every layer uses the first layer's
conv and gate parameters. Oracle: an unshared stack whose layers all hold
copies of the same parameters computes the same function, and the shared
parameter's gradient is the sum of its copies' gradients."""
import warnings

import pytest
import torch

from ddl_gnn.models import build_model

KW = dict(heads=16, theta=0.5, eps=0.01)


def _graph(n=30, f=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=g)
    ei = torch.randint(0, n, (2, 4 * n), generator=g)
    return x, ei


def test_every_layer_holds_the_first_layers_parameters():
    model = build_model('delta', 7, 16, 5, 3, shared_weights=True, **KW)
    first = dict(model.layers[0].named_parameters())
    for layer in model.layers[1:]:
        for name, p in layer.named_parameters():
            assert p is first[name], name
    one = build_model('delta', 7, 16, 1, 3, **KW)
    assert (sum(p.numel() for p in model.parameters())
            == sum(p.numel() for p in one.parameters()))
    # each layer keeps its own identity-mapping share
    shares = [layer.identity_map for layer in model.layers]
    assert len(set(shares)) == len(shares)


def test_equals_an_unshared_stack_of_copies():
    torch.manual_seed(0)
    shared = build_model('delta', 7, 16, 4, 3, shared_weights=True, **KW)
    plain = build_model('delta', 7, 16, 4, 3, **KW)
    state = shared.state_dict()
    plain.load_state_dict(state)   # every layer's keys hold layer 0's values
    for layer in plain.layers[1:]:
        for (name, p), q in zip(layer.named_parameters(),
                                plain.layers[0].parameters()):
            assert p is not q and torch.equal(p, q), name
    shared.eval(), plain.eval()
    x, ei = _graph()
    out_s, out_p = shared(x, ei), plain(x, ei)
    torch.testing.assert_close(out_s, out_p, rtol=1e-6, atol=1e-6)
    g = torch.randn_like(out_s)
    out_s.backward(g)
    out_p.backward(g)
    for name, p in shared.layers[0].named_parameters():
        want = sum(dict(layer.named_parameters())[name].grad
                   for layer in plain.layers)
        torch.testing.assert_close(p.grad, want, rtol=1e-5, atol=1e-6,
                                   msg=name)
    torch.testing.assert_close(shared.encoder.weight.grad,
                               plain.encoder.weight.grad, rtol=1e-5,
                               atol=1e-6)


def test_optimizer_groups_list_each_parameter_once():
    model = build_model('delta', 7, 16, 4, 3, shared_weights=True,
                        gate_decay=0.0, **KW)
    groups = model.param_groups(0.01, 5e-4)
    ids = [id(p) for g in groups for p in g['params']]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter('error')     # duplicate parameters warn
        torch.optim.Adam(groups, lr=0.01)


def test_state_dict_round_trip_keeps_the_ties():
    torch.manual_seed(1)
    a = build_model('delta', 7, 16, 3, 3, shared_weights=True, **KW)
    b = build_model('delta', 7, 16, 3, 3, shared_weights=True, **KW)
    b.load_state_dict(a.state_dict())
    assert b.layers[2].conv.lin.weight is b.layers[0].conv.lin.weight
    a.eval(), b.eval()
    x, ei = _graph(seed=2)
    torch.testing.assert_close(a(x, ei), b(x, ei), rtol=0, atol=0)


@pytest.mark.parametrize('bad', [1, 'yes', None])
def test_bad_shared_weights_is_named(bad):
    with pytest.raises(ValueError, match="'shared_weights'"):
        build_model('delta', 7, 16, 3, 2, shared_weights=bad)


def test_shared_weights_reject_differing_layer_options():
    with pytest.raises(ValueError, match="'shared_weights'.*layer_options"):
        build_model('delta', 7, 16, 4, 2, shared_weights=True,
                    layer_options=[{'heads': 8}, {'heads': 4}])
