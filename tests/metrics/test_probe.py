import json
import math

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import nx_to_edge_index
from torch import nn
from torch_geometric.data import Data
from torch_geometric.nn import GCN2Conv, GCNConv
from torch_geometric.nn.models import GCN, DeepGCNLayer

from ddl_gnn.metrics import (DEFAULT_METRICS, METRICS, LayerProbe,
                             beta_audit, beta_summary, probe_model)

N, F_IN, H = 14, 5, 8


@pytest.fixture
def data():
    g = nx.connected_watts_strogatz_graph(N, 4, 0.3, seed=2)
    torch.manual_seed(0)
    return Data(x=torch.randn(N, F_IN), edge_index=nx_to_edge_index(g),
                y=torch.randint(0, 3, (N, )))


def loss_fn(out, data):
    return F.cross_entropy(out, data.y)


def check_records(records, states, edge_index, grads=None):
    """Records match direct metric calls on manually computed states."""
    by_key = {(r['layer'], r['metric']): r['value'] for r in records}
    metric_recs = [r for r in records if r['metric'] in DEFAULT_METRICS]
    assert len(metric_recs) == len(states) * len(DEFAULT_METRICS)
    for layer, x in states.items():
        for name in DEFAULT_METRICS:
            want = float(METRICS[name](x.detach(), edge_index, None, None))
            assert math.isclose(by_key[(layer, name)], want, rel_tol=1e-5,
                                abs_tol=1e-9), (layer, name)
    if grads is not None:
        got = {r['layer']: r['value'] for r in records
               if r['metric'] == 'grad_norm'}
        assert set(got) == set(grads)
        for layer, g in grads.items():
            assert math.isclose(got[layer], float(g.norm()), rel_tol=1e-5)
    json.dumps(records)  # JSON-serialisable
    for r in records:
        assert type(r['layer']) is int and type(r['value']) in (float, int)


def test_probe_basic_gnn(data):
    torch.manual_seed(0)
    model = GCN(F_IN, H, num_layers=3, out_channels=3).eval()
    records = probe_model(model, data, loss_fn=loss_fn)
    # Manual forward of BasicGNN: conv -> act (no act after the last conv).
    hs, x = {0: data.x}, data.x
    for i, conv in enumerate(model.convs):
        h = conv(x, data.edge_index)
        hs[i + 1] = h
        x = h.relu() if i < 2 else h
    grads = dict(zip([1, 2, 3], torch.autograd.grad(
        loss_fn(x, data), [hs[1], hs[2], hs[3]])))
    check_records(records, hs, data.edge_index, grads)
    assert {r['module'] for r in records} == {'input', 'convs.0', 'convs.1',
                                              'convs.2'}


class DeepGCNStack(nn.Module):
    def __init__(self, num_layers=3):
        super().__init__()
        self.layers = nn.ModuleList(
            DeepGCNLayer(GCNConv(H, H), nn.LayerNorm(H), nn.ReLU(),
                         block='res+') for _ in range(num_layers))
        self.lin = nn.Linear(H, 3)

    def forward(self, x, edge_index):
        for layer in self.layers:
            x = layer(x, edge_index)
        return self.lin(x)


def test_probe_deepgcn_stack(data):
    torch.manual_seed(0)
    model = DeepGCNStack().eval()
    d = Data(x=torch.randn(N, H), edge_index=data.edge_index, y=data.y)
    records = probe_model(model, d, loss_fn=loss_fn)
    hs, x = {0: d.x}, d.x
    for i, layer in enumerate(model.layers):
        x = layer(x, d.edge_index)
        hs[i + 1] = x
    grads = dict(zip([1, 2, 3], torch.autograd.grad(
        loss_fn(model.lin(x), d), [hs[1], hs[2], hs[3]])))
    check_records(records, hs, d.edge_index, grads)


class GCNIIStack(nn.Module):
    def __init__(self, num_layers=4):
        super().__init__()
        self.lin_in = nn.Linear(F_IN, H)
        self.convs = nn.ModuleList(
            GCN2Conv(H, alpha=0.1, theta=0.5, layer=i + 1)
            for i in range(num_layers))
        self.lin_out = nn.Linear(H, 3)

    def forward(self, x, edge_index):
        x = x0 = self.lin_in(x).relu()
        for conv in self.convs:
            x = conv(x, x0, edge_index).relu()
        return self.lin_out(x)


def test_probe_gcn2_stack_context_manager(data):
    torch.manual_seed(0)
    model = GCNIIStack().eval()
    with LayerProbe(model) as probe:
        out = model(data.x, data.edge_index)
        loss_fn(out, data).backward()  # tensor hooks record grad norms
    records = probe.records(data.edge_index)
    x = x0 = model.lin_in(data.x).relu()
    hs = {0: x0}
    for i, conv in enumerate(model.convs):
        hs[i + 1] = conv(x, x0, data.edge_index)
        x = hs[i + 1].relu()
    states = [hs[i] for i in range(1, 5)]
    grads = dict(zip(range(1, 5), torch.autograd.grad(
        loss_fn(model.lin_out(x), data), states)))
    # hs[0] = x0 is also differentiable (lin_in): include its gradient.
    check_records(records, hs, data.edge_index, None)
    got = {r['layer']: r['value'] for r in records
           if r['metric'] == 'grad_norm'}
    for layer, g in grads.items():
        assert math.isclose(got[layer], float(g.norm()), rel_tol=1e-5)
    # Hooks are gone after the with-block.
    probe.clear()
    model(data.x, data.edge_index)
    assert probe.states == {}


class TwoConvs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = GCNConv(F_IN, H)
        self.conv2 = GCNConv(H, 3)

    def forward(self, x, edge_index):
        return self.conv2(self.conv1(x, edge_index).relu(), edge_index)


def test_probe_fallback_and_explicit_modules(data):
    model = TwoConvs()
    probe = LayerProbe(model)
    assert [name for _, name, _ in probe.layers] == ['conv1', 'conv2']
    with torch.no_grad():
        model(data.x, data.edge_index)
    assert sorted(probe.states) == [0, 1, 2]
    probe.remove()
    probe = LayerProbe(model, modules=[model.conv2])
    with torch.no_grad():
        model(data.x, data.edge_index)
    assert sorted(probe.states) == [0, 1]  # input of conv2, output of conv2
    probe.remove()
    with pytest.raises(ValueError, match='could not find layers'):
        LayerProbe(nn.Sequential(nn.Linear(2, 2)))


class StandInDelta(nn.Module):
    """A delta block on a 3-D state [N, d, d_v] that stores last_beta."""
    def __init__(self, d, dv, read):
        super().__init__()
        self.conv = GCNConv(d, d)
        self.beta = nn.Linear(d, 1)
        self.v = nn.Linear(d, dv)
        self.mix = nn.Parameter(torch.randn(dv))
        self.last_beta = None
        if read:
            self.read_state = self._read

    def _read(self, state):
        return state @ torch.softmax(self.mix, 0)

    def forward(self, state, edge_index):
        x = state.mean(-1)
        k = F.normalize(self.conv(x, edge_index), dim=-1)
        beta = 2 * torch.sigmoid(self.beta(x)).squeeze(-1)
        self.last_beta = beta.detach()
        v = self.v(x)
        err = v - torch.einsum('nd,ndv->nv', k, state)
        return state + beta[:, None, None] * k[:, :, None] * err[:, None, :]


class StandInDDL(nn.Module):
    def __init__(self, d=H, dv=2, num_layers=3):
        super().__init__()
        self.dv = dv
        self.encoder = nn.Linear(F_IN, d)
        self.layers = nn.ModuleList(
            StandInDelta(d, dv, read=(i % 2 == 0)) for i in range(num_layers))
        self.head = nn.Linear(d, 3)

    def forward(self, x, edge_index):
        state = self.encoder(x).unsqueeze(-1).repeat(1, 1, self.dv)
        for layer in self.layers:
            state = layer(state, edge_index)
        return self.head(state.mean(-1))


def test_probe_ddl_style_model_and_beta_audit(data):
    torch.manual_seed(0)
    model = StandInDDL()
    records = probe_model(model, data, loss_fn=loss_fn)
    h0 = model.encoder(data.x)
    states, hs, state = [], {0: h0}, h0.unsqueeze(-1).repeat(1, 1, 2)
    for i, layer in enumerate(model.layers):
        state = layer(state, data.edge_index)
        states.append(state)
        read = getattr(layer, 'read_state', None)
        hs[i + 1] = read(state) if read else state.mean(-1)
    assert hasattr(model.layers[0], 'read_state')
    assert not hasattr(model.layers[1], 'read_state')
    grads = dict(zip(range(4), torch.autograd.grad(
        loss_fn(model.head(state.mean(-1)), data), [h0] + states)))
    metric_recs = [r for r in records if not r['metric'].startswith('beta')]
    check_records(metric_recs, hs, data.edge_index, grads)
    # β audit: one block of records per delta layer, against numpy.
    beta_recs = [r for r in records if r['metric'].startswith('beta')]
    assert sorted({r['layer'] for r in beta_recs}) == [1, 2, 3]
    for layer, block in enumerate(model.layers, 1):
        b = block.last_beta.double().numpy()
        got = {r['metric']: r for r in beta_recs if r['layer'] == layer}
        assert got['beta_mean']['module'] == f'layers.{layer - 1}'
        assert math.isclose(got['beta_mean']['value'], b.mean(), rel_tol=1e-9)
        for q in (0.05, 0.25, 0.5, 0.75, 0.95):
            assert math.isclose(got[f'beta_q{q:g}']['value'],
                                np.quantile(b, q), rel_tol=1e-9)
        assert got['beta_frac_near_0']['value'] == np.mean(b < 0.1)
        assert got['beta_frac_near_1']['value'] == np.mean(abs(b - 1) < 0.1)
        assert got['beta_frac_above_1']['value'] == np.mean(b > 1)
        hist, edges = np.histogram(b, bins=20, range=(0, 2))
        assert got['beta_hist']['value'] == hist.tolist()
        np.testing.assert_allclose(got['beta_hist']['bin_edges'], edges)


def test_beta_summary_known_values():
    beta = torch.tensor([0.0, 0.05, 0.95, 1.0, 1.5, 2.0, 2.0, 0.5])
    s = beta_summary(beta, bins=4)
    assert s['count'] == 8
    assert s['frac_near_0'] == 2 / 8
    assert s['frac_near_1'] == 2 / 8
    assert s['frac_above_1'] == 3 / 8
    assert s['hist'] == [2, 2, 1, 3]  # [0,.5) [.5,1) [1,1.5) [1.5,2]
    assert s['bin_edges'] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert math.isclose(s['q0.5'], 0.975, rel_tol=1e-6)
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    assert beta_audit(model) == []
    model[1].last_beta = beta
    assert {r['module'] for r in beta_audit(model)} == {'1'}


def test_probe_records_nan_for_a_diverged_layer(data):
    """A stack whose states overflow is measured, not rejected: layers
    before the blow-up get their metrics (checked against direct calls),
    the non-finite layers get NaN."""
    torch.manual_seed(0)
    model = GCN(F_IN, H, num_layers=3, out_channels=3)
    with torch.no_grad():
        model.convs[1].lin.weight.fill_(float('inf'))
    probe = LayerProbe(model)
    model(data.x, data.edge_index)
    states = probe.states
    finite = {l for l, x in states.items() if torch.isfinite(x).all()}
    assert finite and len(finite) < len(states)
    records = probe.records(data.edge_index)
    for r in records:
        if r['layer'] in finite:
            want = float(METRICS[r['metric']](states[r['layer']],
                                              data.edge_index, None, None))
            assert math.isclose(r['value'], want, rel_tol=1e-5,
                                abs_tol=1e-9)
        else:
            assert math.isnan(r['value'])
    with pytest.raises(ValueError, match='NaN or Inf'):  # direct use: error
        METRICS['dirichlet_energy'](states[max(states)], data.edge_index,
                                    None, None)
