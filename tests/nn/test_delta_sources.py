"""The anchored sources and heads of DeltaConv against dense oracles: a
dense GCN-normalised adjacency built with networkx and the dense reference
operator (``delta_update_reference``)."""
import networkx as nx
import numpy as np
import pytest
import torch

from ddl_gnn.models import build_model
from ddl_gnn.nn import PAPER_DELTA, DeltaConv
from ddl_gnn.nn.gates import BETA_INIT
from ddl_gnn.ops import delta_update_reference


@pytest.fixture
def graph():
    g = torch.Generator().manual_seed(7)
    N = 9
    G = nx.gnm_random_graph(N, 14, seed=3)
    edges = np.array(list(G.edges())).T
    edge_index = torch.tensor(np.concatenate([edges, edges[::-1]], 1))
    x = torch.randn(N, 8, generator=g, dtype=torch.float64)
    x0 = torch.randn(N, 8, generator=g, dtype=torch.float64)
    return G, x, x0, edge_index


def dense_gcn_adjacency(G, N):
    """D^-1/2 (A + I) D^-1/2 from networkx (the oracle of ``Â``)."""
    A = nx.to_numpy_array(G, nodelist=range(N)) + np.eye(N)
    d = A.sum(1)
    return torch.tensor(A / np.sqrt(np.outer(d, d)))


# Each test names the options it checks; the rest are the paper layer's.
PAPER = dict(PAPER_DELTA, beta_init=BETA_INIT)


def layer(**kw):
    torch.manual_seed(0)
    m = DeltaConv(8, **{**PAPER, **kw}).double().eval()
    if m.gate.weight is not None:   # a gate that varies per node and head
        with torch.no_grad():
            m.gate.weight.normal_(0, 0.5)
    return m


def parts(m, x, x0, edge_index):
    """c, h, c0, beta computed from the layer's own modules."""
    c = m.norm(x)
    h = m.conv(c, edge_index)
    c0 = m.norm(x0)
    return c, h, c0


@pytest.mark.parametrize('heads', [1, 4, 8])
def test_diffuse_value_is_the_anchored_propagation(graph, heads):
    G, x, x0, edge_index = graph
    m = layer(v_source='diffuse', k_source='anchor', beta_source='anchor',
              heads=heads, alpha=0.2)
    out = m(x, edge_index, x0=x0)
    c, h, c0 = parts(m, x, x0, edge_index)
    k = 0.8 * h + 0.2 * c0
    beta = m.gate(torch.cat([c, c0], -1)).reshape(9, heads)
    u = 0.8 * dense_gcn_adjacency(G, 9) @ x + 0.2 * x0
    kb = k.reshape(9, heads, -1)
    kh = kb / torch.sqrt((kb * kb).sum(-1, keepdim=True) + 1e-10)
    v = (kh * u.reshape(9, heads, -1)).sum(-1)
    torch.testing.assert_close(
        out, delta_update_reference(x, k, beta, v, heads=heads))


def test_one_wide_heads_with_unit_gate_are_a_ppr_step(graph):
    G, x, x0, edge_index = graph
    m = layer(v_source='diffuse', heads=8, beta_mode='fixed', beta_init=1.0,
              alpha=0.1, eps=0.0)
    want = 0.9 * dense_gcn_adjacency(G, 9) @ x + 0.1 * x0
    torch.testing.assert_close(m(x, edge_index, x0=x0), want)


def test_restore_with_unit_gate_restores_the_input_per_head(graph):
    _, x, x0, edge_index = graph
    m = layer(v_source='restore', heads=2, beta_mode='fixed', beta_init=1.0,
              eps=0.0)
    out = m(x, edge_index, x0=x0)
    k = parts(m, x, x0, edge_index)[1].reshape(9, 2, 4)
    k = k / k.norm(dim=-1, keepdim=True)
    torch.testing.assert_close((k * out.reshape(9, 2, 4)).sum(-1),
                               (k * x0.reshape(9, 2, 4)).sum(-1))


def test_anchor_value_reads_context_and_input(graph):
    _, x, x0, edge_index = graph
    m = layer(v_source='anchor', heads=2)
    c, h, c0 = parts(m, x, x0, edge_index)
    v = m.v_lin(torch.cat([c, c0], -1))
    beta = m.gate(c)
    torch.testing.assert_close(
        m(x, edge_index, x0=x0),
        delta_update_reference(x, h, beta, v, heads=2))


@pytest.mark.parametrize('kw', [dict(v_source='diffuse', d_v=3, heads=2),
                                dict(v_source='anchor', d_v=2, heads=4,
                                     k_source='anchor'),
                                dict(v_source='restore', conv='sage')])
def test_matrix_states_and_other_convs_backprop(kw):
    torch.manual_seed(1)
    N, d_v = 10, kw.get('d_v', 1)
    x = torch.randn(N, 8, d_v) if d_v > 1 else torch.randn(N, 8)
    x0 = torch.randn(N, 8, requires_grad=True)
    edge_index = torch.randint(0, N, (2, 30))
    m = DeltaConv(8, **{**PAPER, **kw})
    out = m(x.requires_grad_(), edge_index, x0=x0)
    assert out.shape == x.shape
    out.square().sum().backward()
    assert x.grad.abs().sum() > 0 and x0.grad.abs().sum() > 0


def test_sparse_adjacency_gives_the_same_diffusion(graph):
    _, x, x0, edge_index = graph
    m = layer(v_source='diffuse', heads=4)
    adj_t = torch.sparse_coo_tensor(edge_index.flip(0),
                                    torch.ones(edge_index.size(1),
                                               dtype=x.dtype),
                                    (9, 9)).to_sparse_csr()
    torch.testing.assert_close(m(x, adj_t, x0=x0), m(x, edge_index, x0=x0))


def test_anchored_sources_need_x0(graph):
    _, x, _, edge_index = graph
    with pytest.raises(ValueError, match='pass x0'):
        layer(v_source='diffuse')(x, edge_index)
    with pytest.raises(ValueError, match="'x0'"):
        layer(beta_source='anchor')(x, edge_index, x0=x[:, :4])


@pytest.mark.parametrize('kw, match', [
    (dict(heads=3), "'heads' must be a positive int dividing"),
    (dict(alpha=1.5), "'alpha' must lie in"),
    (dict(v_source='nope'), "'v_source' must be one of"),
])
def test_bad_options_name_the_problem(kw, match):
    with pytest.raises(ValueError, match=match):
        DeltaConv(8, **kw)


def test_model_gives_every_layer_the_encoder_output():
    torch.manual_seed(2)
    model = build_model('delta', 5, 8, 3, 2, v_source='restore', heads=8,
                        beta_mode='fixed', beta_init=1.0)
    x = torch.randn(6, 5)
    edge_index = torch.randint(0, 6, (2, 12))
    seen = []
    for lay in model.layers:
        lay.register_forward_hook(
            lambda mod, args, kwargs, out: seen.append(kwargs['x0']),
            with_kwargs=True)
    model(x, edge_index)
    x0 = model.act(model.encoder(x))
    assert len(seen) == 3
    for t in seen:
        torch.testing.assert_close(t, x0)


def test_anchored_gate_without_norm_in_the_first_layer():
    # Without a norm and in eval mode the first layer's context *is* x0;
    # the gate must still read [c || c0] (twice the width).
    torch.manual_seed(3)
    model = build_model('delta', 5, 8, 2, 2, v_source='anchor',
                        k_source='anchor', beta_source='anchor', heads=2,
                        norm='none').eval()
    x = torch.randn(6, 5)
    out = model(x, torch.randint(0, 6, (2, 12)))
    assert out.shape == (6, 2) and torch.isfinite(out).all()


def test_message_value_is_the_anchored_conv_output(graph):
    _, x, x0, edge_index = graph
    m = layer(v_source='message', heads=4, alpha=0.3, norm=None)
    h = m.conv(x, edge_index)          # no norm: the conv reads the state
    beta = m.gate(x).reshape(9, 4)
    kb = h.reshape(9, 4, 2)
    kh = kb / torch.sqrt((kb * kb).sum(-1, keepdim=True) + 1e-10)
    u = (0.7 * h + 0.3 * x0).reshape(9, 4, 2)
    v = (kh * u).sum(-1)
    torch.testing.assert_close(
        m(x, edge_index, x0=x0),
        delta_update_reference(x, h, beta, v, heads=4))


def test_input_norm_normalises_the_stack_input():
    torch.manual_seed(4)
    model = build_model('delta', 5, 8, 2, 2, input_norm=True,
                        v_source='restore')
    x = torch.randn(6, 5)
    x0 = model.act(model.encoder(x))
    want = torch.nn.functional.layer_norm(x0, (8, ))
    torch.testing.assert_close(model.encode(x), want)
    seen = []
    model.layers[0].register_forward_hook(
        lambda mod, args, kwargs, out: seen.append(kwargs['x0']),
        with_kwargs=True)
    model(x, torch.randint(0, 6, (2, 12)))
    torch.testing.assert_close(seen[0], want)


def test_layer_options_cycle_over_the_layers():
    model = build_model('delta', 5, 8, 5, 2, k_source='anchor',
                        layer_options=[dict(v_source='diffuse', heads=8),
                                       dict(v_source='message', heads=2)])
    got = [(lay.v_source, lay.heads, lay.k_source) for lay in model.layers]
    assert got == [('diffuse', 8, 'anchor'), ('message', 2, 'anchor')] * 2 \
        + [('diffuse', 8, 'anchor')]
    out = model(torch.randn(6, 5), torch.randint(0, 6, (2, 12)))
    assert out.shape == (6, 2)
    with pytest.raises(ValueError, match="'layer_options' must be"):
        build_model('delta', 5, 8, 2, 2, layer_options=[])


def test_scaled_message_has_the_state_norm(graph):
    _, x, x0, edge_index = graph
    m = layer(v_source='message', heads=4, alpha=0.3, norm=None,
              scale_message=True, eps=0.0)
    h = m.conv(x, edge_index)
    hs = h * (x.norm(dim=-1, keepdim=True) / h.norm(dim=-1, keepdim=True))
    beta = m.gate(x).reshape(9, 4)
    kb = h.reshape(9, 4, 2)
    kh = kb / kb.norm(dim=-1, keepdim=True)
    v = (kh * (0.7 * hs + 0.3 * x0).reshape(9, 4, 2)).sum(-1)
    torch.testing.assert_close(
        m(x, edge_index, x0=x0),
        delta_update_reference(x, h, beta, v, heads=4, eps=0.0))

