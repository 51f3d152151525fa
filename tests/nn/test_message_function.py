"""The default layer's update as the C++ autograd function
(ops/csrc/message_function.cpp) against the Python autograd function over
the same kernels (bit for bit: values, beta and every gradient asked for)
and, with create_graph, against the float64 reference's second
derivatives."""
import pytest
import torch

import ddl_gnn.nn.message_path as message_path
from ddl_gnn.models import build_model
from ddl_gnn.nn.message_path import (anchored_message_reference,
                                     anchored_message_update)
from ddl_gnn.ops import cpu_kernels
from ddl_gnn.ops.recompute import set_recompute

NAMES = ['x', 'h', 'x0', 'W', 'b', 'c', 'hb']


@pytest.fixture(autouse=True)
def kernels():
    k = cpu_kernels.kernels()
    if k is None or not k.message_gate_in_rows(torch.zeros(1, 64), 8):
        pytest.skip('the AVX2 kernels with the gate in the rows are not '
                    'built here')
    return k


@pytest.fixture(params=[True, False], ids=['recompute', 'save'])
def recompute(request):
    set_recompute(request.param)
    yield request.param
    set_recompute(None)


def _inputs(N, d, H, context, bias, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x, h, x0 = (torch.randn(N, d, generator=g, dtype=dtype)
                for _ in range(3))
    h[:2] = 0.0                        # k = 0 rows: the eps guard
    x0[:2] = 0.0
    W = 0.3 * torch.randn(H, 2 * d, generator=g, dtype=dtype)
    b = torch.randn(H, generator=g, dtype=dtype)
    c = torch.randn(N, d, generator=g, dtype=dtype) if context else None
    hb = torch.randn(d, generator=g, dtype=dtype) if bias else None
    return [x, h, x0, W, b, c, hb]


def _update(ins, cpp, monkeypatch):
    monkeypatch.setattr(message_path, 'CPP_FUNCTION', cpp)
    return anchored_message_update(*ins[:5], True, 0.3, ins[3].size(0),
                                   1e-5, 2.0, context=ins[5],
                                   h_bias=ins[6])


@pytest.mark.parametrize('context', [False, True], ids=['x', 'context'])
@pytest.mark.parametrize('bias', [False, True], ids=['', 'bias'])
@pytest.mark.parametrize('live', [NAMES, ['x', 'W', 'b'], ['h', 'x0'],
                                  ['W'], ['c', 'hb'], ['x0', 'hb']],
                         ids=lambda t: '-'.join(t))
@pytest.mark.parametrize('N, d, heads', [(600, 64, 8), (37, 128, 16)])
def test_matches_the_python_function(monkeypatch, recompute, context, bias,
                                     live, N, d, heads):
    base = _inputs(N, d, heads, context, bias)
    w = torch.randn(N, d, generator=torch.Generator().manual_seed(1))
    runs = {}
    for cpp in (True, False):
        ins = [None if t is None else t.clone().requires_grad_(n in live)
               for n, t in zip(NAMES, base)]
        out, beta = _update(ins, cpp, monkeypatch)
        wants = [t for t in ins if t is not None and t.requires_grad]
        grads = (torch.autograd.grad((out * w).sum(), wants) if wants
                 else ())
        runs[cpp] = (out, beta, grads)
        assert not beta.requires_grad
        name = out.grad_fn.name() if out.grad_fn is not None else None
        if wants:
            assert ('ddl_gnn::AnchoredMessage' in name) == cpp, name
    (out, beta, grads), (out_p, beta_p, grads_p) = runs[True], runs[False]
    assert torch.equal(out, out_p)
    assert torch.equal(beta, beta_p)
    assert len(grads) == len(grads_p)
    for a, e in zip(grads, grads_p):
        assert torch.equal(a, e)


@pytest.mark.parametrize('context', [False, True], ids=['x', 'context'])
def test_create_graph_matches_the_reference(monkeypatch, context):
    # A second derivative through the C++ function (its backward calls the
    # registered Python reference) against the float64 reference's.
    ins = [None if t is None else t.clone().requires_grad_()
           for t in _inputs(40, 64, 8, context, True, seed=2)]
    ref_ins = [None if t is None else t.detach().double().requires_grad_()
               for t in ins]
    live = [t for t in ins if t is not None]
    ref_live = [t for t in ref_ins if t is not None]
    out, _ = _update(ins, True, monkeypatch)
    assert 'ddl_gnn::AnchoredMessage' in out.grad_fn.name()
    ref = anchored_message_reference(*ref_ins[:5], True, 0.3, 8, 1e-5, 2.0,
                                     context=ref_ins[5], h_bias=ref_ins[6])
    w = torch.randn(40, 64, generator=torch.Generator().manual_seed(3))

    def second(o, inputs, weight):
        first = torch.autograd.grad((o * weight).sum(), inputs,
                                    create_graph=True)
        return torch.autograd.grad(sum((f * f).sum() for f in first),
                                   inputs)

    got = second(out, live, w)
    want = second(ref, ref_live, w.double())
    names = [n for n, t in zip(NAMES, ins) if t is not None]
    for name, a, e in zip(names, got, want):
        torch.testing.assert_close(a.double(), e, rtol=1e-3,
                                   atol=1e-3 * e.abs().max().item(),
                                   msg=name)


def test_default_layer_takes_it(monkeypatch):
    torch.manual_seed(0)
    model = build_model('delta', 64, 64, 2, 3)
    x = torch.randn(30, 64)
    edge_index = torch.randint(0, 30, (2, 90))
    names = []
    model.layers[0].register_forward_hook(
        lambda mod, args, out: names.append(out.grad_fn.name()))
    model(x, edge_index).sum().backward()
    assert 'ddl_gnn::AnchoredMessage' in names[0]
    monkeypatch.setattr(message_path, 'CPP_FUNCTION', False)
    model(x, edge_index)
    assert names[1] == '_AnchoredMessageBackward'
