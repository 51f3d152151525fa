"""The model grid: every family, shallow and deep, forward and backward."""
import pytest
import torch
from torch import nn

from ddl_gnn.models import MODELS, DeltaGNN, build_model
from ddl_gnn.nn import DeltaConv

GRID = [(name, L, d_v) for name in MODELS for L in (1, 2, 64)
        for d_v in ((1, 4) if name.startswith('delta') else (1, ))]


@pytest.fixture(scope='module')
def graph():
    g = torch.Generator().manual_seed(0)
    N = 40
    edge_index = torch.randint(0, N, (2, 160), generator=g)
    edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    return torch.randn(N, 7, generator=g), edge_index


@pytest.mark.parametrize('name,L,d_v', GRID)
def test_forward_backward_finite(graph, name, L, d_v):
    x, edge_index = graph
    kw = dict(d_v=d_v) if name.startswith('delta') else {}
    model = build_model(name, 7, 16, L, 3, dropout=0.1, **kw)
    out = model(x, edge_index)
    assert out.shape == (40, 3) and torch.isfinite(out).all()
    out.logsumexp(-1).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert len(model.layers) == L


@pytest.mark.parametrize('name', ['delta', 'delta-write-only'])
@pytest.mark.parametrize('beta_init', [0.05, 1.0])
@pytest.mark.parametrize('d_v', [1, 4])
def test_beta_at_init_equals_beta_init(graph, name, beta_init, d_v):
    x, edge_index = graph
    model = build_model(name, 7, 16, 64, 3, d_v=d_v, beta_init=beta_init)
    model(x, edge_index)
    deltas = [m for m in model.modules() if isinstance(m, DeltaConv)]
    assert len(deltas) == 64
    for m in deltas:   # one gate per node and head
        assert m.last_beta.shape == (40, m.heads)
        torch.testing.assert_close(m.last_beta,
                                   torch.full((40, m.heads), beta_init),
                                   atol=1e-5, rtol=0)


def test_write_only_flag(graph):
    model = build_model('delta-write-only', 7, 16, 2, 3)
    assert all(not layer.erase for layer in model.layers)
    assert all(layer.erase for layer in build_model('delta', 7, 16, 2,
                                                    3).layers)


@pytest.mark.parametrize('name', list(MODELS))
def test_checkpoint_matches_plain_forward_and_grads(graph, name):
    """Segmented checkpointing recomputes with identical dropout."""
    x, edge_index = graph
    results = []
    for ckpt in (False, True):
        torch.manual_seed(0)
        model = build_model(name, 7, 16, 10, 3, dropout=0.3,
                            checkpoint=ckpt, checkpoint_segment=3)
        torch.manual_seed(1)
        out = model(x, edge_index)
        out.pow(2).mean().backward()
        results.append((out, [p.grad for p in model.parameters()]))
    (o1, g1), (o2, g2) = results
    torch.testing.assert_close(o1, o2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize('name', list(MODELS))
def test_torch_compile_matches_eager(graph, name):
    x, edge_index = graph
    model = build_model(name, 7, 16, 2, 3).eval()
    expected = model(x, edge_index)
    compiled = torch.compile(model)
    torch.testing.assert_close(compiled(x, edge_index), expected, atol=1e-5,
                               rtol=1e-4)


@pytest.mark.parametrize('readout', ['mean', 'sum'])
def test_graph_level_readout_with_custom_encoder(readout):
    """Integer atom features through an embedding encoder, two graphs."""
    x = torch.randint(0, 5, (10, 1))
    edge_index = torch.tensor([[0, 1, 2, 5, 6, 7], [1, 2, 3, 6, 7, 8]])
    edge_index = torch.cat([edge_index, edge_index.flip(0)], 1)
    batch = torch.tensor([0] * 5 + [1] * 5)

    class Embed(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(5, 16)

        def forward(self, x):
            return self.emb(x[:, 0])

    model = DeltaGNN(-1, 16, 3, 2, encoder=Embed(), readout=readout)
    out = model(x, edge_index, batch=batch)
    assert out.shape == (2, 2)
    # Graph outputs are independent of the other graph in the batch.
    out0 = model(x[:5], edge_index[:, edge_index[0] < 5])
    torch.testing.assert_close(out[:1], out0, atol=1e-6, rtol=1e-5)


def test_reset_parameters_reproduces_fresh_init(graph):
    x, edge_index = graph
    for name in MODELS:
        model = build_model(name, 7, 16, 3, 3)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        model.reset_parameters()
        torch.manual_seed(0)
        model.reset_parameters()
        a = model(x, edge_index)
        torch.manual_seed(0)
        model.reset_parameters()
        torch.testing.assert_close(model(x, edge_index), a)


@pytest.mark.parametrize('name', ['gcnii', 'delta', 'res+'])
def test_param_groups_split_layers_from_the_rest(name):
    model = build_model(name, 7, 16, 4, 3)
    convs, rest = model.param_groups(0.01, 5e-4)
    assert (convs['weight_decay'], rest['weight_decay']) == (0.01, 5e-4)
    ids = [id(p) for g in (convs, rest) for p in g['params']]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    assert {id(p) for p in model.layers.parameters()} == {
        id(p) for p in convs['params']}


@pytest.mark.parametrize('call,match', [
    (lambda: build_model('resnet', 7, 16, 2, 3), 'unknown model'),
    (lambda: build_model('delta', 7, 16, -1, 3), "'num_layers'"),
    (lambda: build_model('delta', 7, 0, 2, 3), "'hidden_channels'"),
    (lambda: build_model('gcnii', 7, 16, 2, 3, conv='sage'),
     "only conv='gcn'"),
    (lambda: build_model('res', 7, 16, 2, 3, readout='max'), "'readout'"),
])
def test_bad_model_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_model_inputs(graph):
    x, edge_index = graph
    model = build_model('delta', 7, 16, 2, 3)
    with pytest.raises(ValueError, match=r"'x' must have shape \[N, 7\]"):
        model(x[:, :5], edge_index)
    with pytest.raises(IndexError, match=r"outside \[0, 40\)"):
        model(x, edge_index + 40)


def test_dropout_never_masks_the_carried_state():
    """With the gate closed (G2: tau = 0 on constant features; delta: fixed
    beta = 0) a training-mode layer must return its input unchanged."""
    from ddl_gnn.models.g2 import G2Block
    from ddl_gnn.nn.conv_resolver import make_conv
    x = torch.ones(6, 8)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]])
    block = G2Block(make_conv('gcn', 8), make_conv('gcn', 8), nn.ReLU(),
                    p=2.0, dropout=0.9).train()
    with torch.no_grad():   # identical gate input on every node
        block.gate_conv.lin.weight.zero_()
    torch.testing.assert_close(block(x, edge_index), x)
    layer = DeltaConv(8, beta_init=0.0, beta_mode='fixed', dropout=0.9)
    x = torch.randn(6, 8)
    torch.testing.assert_close(layer.train()(x, edge_index, x0=x.flip(0)),
                               x)


@pytest.mark.parametrize('name', sorted(MODELS))
def test_float64_models_normalise_in_float64(graph, name):
    """Without edge weights the shared GCN normalisation must be built in
    the model's dtype: explicit float64 unit weights give the same output
    to float64 precision (float32 weights differ at ~1e-8; found on a GPU
    run comparing devices)."""
    x, ei = graph
    torch.manual_seed(0)
    model = build_model(name, 7, 16, 4, 3, dropout=0.0).double().eval()
    x = x.double()
    ones = torch.ones(ei.size(1), dtype=torch.float64)
    torch.testing.assert_close(model(x, ei), model(x, ei, ones),
                               rtol=1e-13, atol=1e-13)


def test_g2_shared_weights_reuse_one_conv_pair(graph):
    """The official G² design: one conv and one gating conv for all layers
    (parameter count independent of depth); the output equals a loop that
    applies the first block L times."""
    x, ei = graph
    sizes = {L: sum(p.numel() for p in build_model(
        'g2', 7, 16, L, 3, share_weights=True).parameters()) for L in (2, 9)}
    assert sizes[2] == sizes[9]
    torch.manual_seed(0)
    model = build_model('g2', 7, 16, 5, 3, share_weights=True,
                        dropout=0.0).double().eval()
    assert all(b.conv is model.layers[0].conv and
               b.gate_conv is model.layers[0].gate_conv
               for b in model.layers)
    from torch_geometric.nn.conv.gcn_conv import gcn_norm
    xd = x.double()
    ei_n, w = gcn_norm(ei, None, xd.size(0), add_self_loops=True,
                       dtype=torch.float64)
    h = model.act(model.encoder(xd))
    for _ in range(5):
        h = model.layers[0](h, ei_n, w)
    torch.testing.assert_close(model(xd, ei), model.decoder(h))


def test_g2_gate_from_the_update_conv(graph):
    """gate_conv=False (the official default): no second conv, and the gate
    is tanh of the mean squared neighbour difference of the update's own
    output (recomputed by hand with index_add)."""
    x, ei = graph
    model = build_model('g2', 7, 16, 3, 3, gate_conv=False, dropout=0.0)
    assert all(b.gate_conv is None for b in model.layers)
    with_gate = build_model('g2', 7, 16, 3, 3)
    assert sum(p.numel() for p in model.parameters()) < sum(
        p.numel() for p in with_gate.parameters())
    from torch_geometric.nn.conv.gcn_conv import gcn_norm
    block = model.layers[0]
    x0 = model.act(model.encoder(x))
    ei_n, w = gcn_norm(ei, None, x.size(0), add_self_loops=True)
    h = block.act(block.conv(x0, ei_n, w))
    src, dst = ei_n[:, ei_n[0] != ei_n[1]]
    sq = (h[dst] - h[src]).pow(2)
    total = torch.zeros_like(h).index_add_(0, dst, sq)
    count = torch.bincount(dst, minlength=x.size(0)).clamp(min=1)
    tau = torch.tanh(total / count.unsqueeze(-1))
    torch.testing.assert_close(block(x0, ei_n, w), (1 - tau) * x0 + tau * h)
