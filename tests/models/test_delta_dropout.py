"""Where DeltaGNN applies dropout: inside the layers (``layer_dropout``) and
on the start state (``state_dropout``)."""
import networkx as nx
import pytest
import torch
from torch_geometric.utils import from_networkx

from ddl_gnn.models import DeltaGNN
from ddl_gnn.ops.dropout import dropout


@pytest.fixture(scope='module')
def graph():
    G = nx.barabasi_albert_graph(300, 2, seed=0)
    x = torch.rand(300, 32, generator=torch.Generator().manual_seed(0))
    return x, from_networkx(G).edge_index


def test_layer_dropout_sets_the_layers_rate_only():
    model = DeltaGNN(8, 16, 3, 2, dropout=0.6)
    assert [lay.dropout for lay in model.layers] == [0.6] * 3
    model = DeltaGNN(8, 16, 3, 2, dropout=0.6, layer_dropout=0.0)
    assert [lay.dropout for lay in model.layers] == [0.0] * 3
    assert model.dropout == 0.6           # input and read keep the rate
    model = DeltaGNN(8, 16, 2, 2, dropout=0.6, layer_dropout=0.0,
                     layer_options=[{'dropout': 0.2}])
    assert [lay.dropout for lay in model.layers] == [0.2] * 2
    for bad in (1.0, -0.1, 'high', True):
        with pytest.raises(ValueError, match="'layer_dropout' must lie in"):
            DeltaGNN(8, 16, 2, 2, layer_dropout=bad)


def test_state_dropout_drops_the_start_state(graph):
    """The first layer reads dropout(x0): each entry zero or x0 / (1 - p),
    and x0 itself (the anchor) undropped; eval mode is unchanged."""
    x, edge_index = graph
    torch.manual_seed(0)
    model = DeltaGNN(32, 16, 2, 3, dropout=0.5, state_dropout=True)
    seen = {}
    model.layers[0].register_forward_pre_hook(
        lambda mod, args, kwargs: seen.update(X=args[0], x0=kwargs['x0']),
        with_kwargs=True)
    model.train()
    model(x, edge_index)
    X, x0 = seen['X'], seen['x0']
    kept = X != 0
    torch.testing.assert_close(X[kept], 2 * x0[kept])
    dropped = (~kept & (x0 != 0)).float().mean().item()
    assert 0.4 < dropped / (x0 != 0).float().mean().item() < 0.6
    model.eval()
    model(x, edge_index)
    torch.testing.assert_close(seen['X'], seen['x0'])
    plain = DeltaGNN(32, 16, 2, 3, dropout=0.5)
    plain.load_state_dict(model.state_dict())
    torch.testing.assert_close(plain.eval()(x, edge_index),
                               model(x, edge_index))


def _train_over_eval_norm(model, x, edge_index):
    norms = {}
    for mode in ('eval', 'train'):
        getattr(model, mode)()
        out = []
        hook = model.layers[-1].register_forward_hook(
            lambda mod, args, o: out.append(o.norm().item()))
        with torch.no_grad():
            model(x, edge_index)
        hook.remove()
        norms[mode] = out[0]
    return norms['train'] / norms['eval']


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_dropout_inside_the_layers_inflates_the_train_mode_state(graph,
                                                                  seed):
    """The written value is the norm of the message along its direction
    (v = |k|), and inverted dropout inflates that norm: with dropout inside
    64 layers the train-mode state ends over 2x its eval-mode size at
    initialisation; with the layers reading the clean state it stays
    within 1.6x (what input dropout alone gives)."""
    x, edge_index = graph
    torch.manual_seed(seed)
    inside = DeltaGNN(32, 32, 64, 4, dropout=0.6, theta=0.5,
                      layer_dropout=None)
    torch.manual_seed(seed)
    outside = DeltaGNN(32, 32, 64, 4, dropout=0.6, theta=0.5,
                       layer_dropout=0.0)
    assert _train_over_eval_norm(inside, x, edge_index) > 2.0
    assert _train_over_eval_norm(outside, x, edge_index) < 1.6


def test_dropout_value_writes_the_dropped_message_along_the_clean_direction(
        graph):
    """``dropout_value``: direction and gate read the clean state; the
    written value is the dropped message's component along that direction
    (the same function in eval mode)."""
    from ddl_gnn.nn import DeltaConv
    from ddl_gnn.ops import head_components
    x, edge_index = graph
    x0 = torch.rand(300, 32, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    layer = DeltaConv(32, dropout=0.5, dropout_value=True).train()
    clean = DeltaConv(32)
    clean.load_state_dict(layer.state_dict())
    torch.manual_seed(3)
    out = layer(x, edge_index, x0=x0)
    torch.manual_seed(3)           # the same dropout mask
    dropped = layer.message_conv(dropout(x, 0.5), edge_index)
    h = layer.message_conv(x, edge_index)
    k = torch.lerp(h, x0, 0.1)
    v = head_components(k, torch.lerp(dropped, x0, 0.1), 8, layer.eps)
    beta = clean.gate(torch.cat([x, x0], -1))
    kh = k.view(300, 8, 4)
    kh = kh / torch.sqrt((kh * kh).sum(-1, keepdim=True) + layer.eps ** 2)
    X = x.view(300, 8, 4)
    want = X + beta[..., None] * kh * (
        v.view(300, 8, 1) - (kh * X).sum(-1, keepdim=True))
    torch.testing.assert_close(out, want.view(300, 32))
    torch.testing.assert_close(layer.eval()(x, edge_index, x0=x0),
                               clean.eval()(x, edge_index, x0=x0))
    with pytest.raises(ValueError, match="needs v_source='message'"):
        DeltaConv(32, v_source='context', dropout_value=True)


def test_update_dropout_drops_each_layers_write(graph):
    """``update_dropout``: in training layer l's output is
    X + drop(layer(X) - X), computed here layer by layer from the same
    weights and the same dropout masks; eval mode is the plain stack."""
    x, edge_index = graph
    torch.manual_seed(0)
    model = DeltaGNN(32, 16, 3, 3, theta=0.5, update_dropout=0.4).train()
    torch.manual_seed(5)
    got = model(x, edge_index)
    torch.manual_seed(5)
    from ddl_gnn.nn.adjacency import normalize_adjacency
    x0 = model.encode(x)
    ei, ew = edge_index, None
    if model.shared_gcn_norm:
        ei, ew = normalize_adjacency(ei, None, x.size(0), x0.dtype)
    X = model.init_state(x0)
    for layer in model.layers:
        X = X + dropout(layer(X, ei, ew, x0=x0) - X, p=0.4)
    torch.testing.assert_close(got, model.decoder(model.read_state(X)))
    plain = DeltaGNN(32, 16, 3, 3, theta=0.5)
    plain.load_state_dict(model.state_dict())
    torch.testing.assert_close(plain.eval()(x, edge_index),
                               model.eval()(x, edge_index))
    for bad in (1.0, -0.1, 'half', True):
        with pytest.raises(ValueError, match="'update_dropout' must lie in"):
            DeltaGNN(8, 16, 2, 2, update_dropout=bad)
