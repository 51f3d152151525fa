"""The create_graph backward of the fused autograd functions
(ops/_vjp.vjp_with_graph): partial derivatives in each input, also where
one input descends from another (a stack's state from its x0), so that a
gradient taken with create_graph=True equals the plain one."""
import pytest
import torch

from ddl_gnn.experiment.recommended import recommended_settings
from ddl_gnn.models import build_model
from ddl_gnn.ops._vjp import vjp_with_graph


def test_partials_when_one_input_descends_from_another():
    a = torch.randn(5, dtype=torch.float64, requires_grad=True)
    b = a * 3.0                       # b descends from a
    g = torch.randn(5, dtype=torch.float64)
    ga, gb, none = vjp_with_graph([True, True], lambda u, v: u * v, (a, b),
                                  g, trailing=1)
    # d(u v)/du = v, d(u v)/dv = u: not the total derivative in a
    assert torch.equal(ga, g * b) and torch.equal(gb, g * a)
    assert none is None
    # still differentiable: d/da of sum(ga) = d/da sum(g * 3a) = 3 g
    (second,) = torch.autograd.grad(ga.sum(), [a])
    assert torch.allclose(second, 3.0 * g)


def test_an_input_read_twice_gets_each_partial():
    a = torch.randn(4, dtype=torch.float64, requires_grad=True)
    g = torch.ones(4, dtype=torch.float64)
    ga1, ga2 = vjp_with_graph([True, True], lambda u, v: u * v.square(),
                              (a, a), g)
    assert torch.allclose(ga1, a.square()) and torch.allclose(ga2,
                                                              2 * a * a)


@pytest.mark.parametrize('family, kw', [
    ('delta', {}),
    ('delta', recommended_settings('cora', 'delta')['model_kwargs']),
    ('delta-paper', {})], ids=['default', 'cora-layer', 'paper'])
def test_stack_gradient_with_a_graph_equals_the_plain_one(family, kw):
    torch.manual_seed(0)
    model = build_model(family, 16, 64, 4, 3, dropout=0.0, **kw)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 16, generator=g, requires_grad=True)
    ei = torch.randint(0, 40, (2, 160), generator=g)
    params = [x] + list(model.parameters())
    plain = torch.autograd.grad(model(x, ei).square().sum(), params)
    graph = torch.autograd.grad(model(x, ei).square().sum(), params,
                                create_graph=True)
    for p, q in zip(plain, graph):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5)
    # and the second derivative runs
    (gx,) = torch.autograd.grad(sum(q.square().sum() for q in graph), [x])
    assert torch.isfinite(gx).all()


def test_paper_stack_second_derivatives_recompute_equal_save():
    """The paper layer's context recomputed in backward (nn/context.py)
    against saved under plain autograd: the same second derivatives."""
    from ddl_gnn.ops.recompute import set_recompute
    got = []
    for recompute in (True, False):
        set_recompute(recompute)
        try:
            torch.manual_seed(0)
            model = build_model('delta-paper', 16, 64, 3, 3,
                                dropout=0.0).double()
            g = torch.Generator().manual_seed(0)
            x = torch.randn(30, 16, generator=g, dtype=torch.float64,
                            requires_grad=True)
            ei = torch.randint(0, 30, (2, 120), generator=g)
            params = [x] + list(model.parameters())
            first = torch.autograd.grad(model(x, ei).square().sum(), params,
                                        create_graph=True)
            got.append(torch.autograd.grad(
                sum(q.square().sum() for q in first), params,
                allow_unused=True))
        finally:
            set_recompute(None)
    for a, b in zip(*got):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize('family, kw', [
    ('delta', {}),
    ('delta', recommended_settings('cora', 'delta')['model_kwargs']),
    ('delta-paper', {})], ids=['default', 'cora-layer', 'paper'])
def test_stack_gradgradcheck(family, kw):
    """Second derivatives of a 3-layer float64 stack in its input against
    finite differences of its first derivative taken with a graph (the
    fused functions' create_graph backward; that first derivative itself
    is held to the plain one above)."""
    torch.manual_seed(0)
    # four heads of four channels, or the Cora layer's one per channel
    kw = dict(kw, heads=16) if kw else dict(heads=4)
    model = build_model(family, 4, 16, 3, 2, dropout=0.0, **kw).double()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, generator=g, dtype=torch.float64,
                    requires_grad=True)
    ei = torch.randint(0, 6, (2, 14), generator=g)
    assert torch.autograd.gradgradcheck(lambda t: model(t, ei), (x,))
