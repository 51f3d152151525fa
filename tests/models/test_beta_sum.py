"""``DeltaGNN(beta_sum=...)``: a shallow stack's gates start open so that
they sum to ``beta_sum`` over its layers; from ``beta_sum / beta_init``
layers on the stack starts at ``beta_init`` as without it."""
import pytest
import torch

from ddl_gnn.data import load_dataset
from ddl_gnn.models import build_model, depth_beta_init
from ddl_gnn.models.delta_gnn import BETA_OPEN


@pytest.mark.parametrize('layers, want', [
    (1, BETA_OPEN), (2, BETA_OPEN), (4, 0.8), (8, 0.4), (16, 0.2),
    (32, 0.1), (64, 0.1), (256, 0.1)])
def test_start_gate_by_depth(layers, want):
    assert depth_beta_init(layers, 0.1, 3.2) == pytest.approx(want)
    starts = [depth_beta_init(layers, 0.1, 3.2)] * layers
    # the starting gates sum to beta_sum wherever neither bound binds
    if 0.1 < want < BETA_OPEN:
        assert sum(starts) == pytest.approx(3.2)


def test_off_and_floor():
    assert depth_beta_init(2, 0.1, 0.0) == 0.1        # beta_sum = 0: off
    assert depth_beta_init(2, 1.0, 3.2) == 1.0        # never below beta_init


@pytest.mark.parametrize('layers', [2, 4, 8, 32])
def test_every_layer_gate_starts_there(layers):
    torch.manual_seed(0)
    model = build_model('delta', 7, 16, layers, 3, beta_sum=3.2)
    c = torch.randn(50, model.layers[0].gate.in_channels)
    want = depth_beta_init(layers, 0.1, 3.2)
    for layer in model.layers:
        assert torch.allclose(layer.gate(c), torch.full((50, 8), want),
                              atol=1e-6)


def test_same_model_as_the_explicit_start_gate():
    ds = load_dataset('csbm')
    x, ei = ds.data.x, ds.data.edge_index
    torch.manual_seed(0)
    a = build_model('delta', ds.num_features, 16, 4, ds.num_classes,
                    beta_sum=3.2).eval()
    torch.manual_seed(0)
    b = build_model('delta', ds.num_features, 16, 4, ds.num_classes,
                    beta_init=0.8).eval()
    with torch.no_grad():
        assert torch.equal(a(x, ei), b(x, ei))


def test_layer_options_keep_their_own_start():
    model = build_model('delta', 7, 16, 2, 3, beta_sum=3.2,
                        layer_options=[{'beta_init': 0.3}, {}])
    assert [layer.gate.beta_init for layer in model.layers] == \
        pytest.approx([0.3, BETA_OPEN])


@pytest.mark.parametrize('bad', [-1.0, float('nan'), float('inf'), 'x',
                                 True, None])
def test_bad_beta_sum_is_named(bad):
    with pytest.raises(ValueError, match="'beta_sum'"):
        build_model('delta', 7, 16, 2, 3, beta_sum=bad)
