"""Bad inputs to the public API: a clear error naming the argument and the
expected form, never a silent NaN/Inf/complex result or a traceback from
inside torch / PyG."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddl_gnn.data import load_dataset
from ddl_gnn.metrics import dirichlet_energy, mad, mad_gap
from ddl_gnn.models import build_model
from ddl_gnn.ops.delta import delta_update

N, D = 6, 4
EDGES = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])


def _model(name='res', **kw):
    torch.manual_seed(0)
    return build_model(name, D, 8, 3, 2, **kw).eval()


def _delta_inputs():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(N, D, generator=g), torch.randn(N, D, generator=g),
            torch.rand(N, generator=g), torch.randn(N, generator=g))


# -- models ------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(row=st.integers(0, N - 1), col=st.integers(0, D - 1),
       bad=st.sampled_from([math.nan, math.inf, -math.inf]),
       model=st.sampled_from(['res', 'delta', 'gcnii']))
def test_non_finite_features_refused(row, col, bad, model):
    x = torch.randn(N, D)
    x[row, col] = bad
    with pytest.raises(ValueError, match="'x' contains NaN or Inf"):
        _model(model)(x, EDGES)


@pytest.mark.parametrize('dtype', [torch.float16, torch.float64])
def test_feature_dtype_other_than_parameters(dtype):
    with pytest.raises(TypeError, match=f"'x' has dtype {dtype} but the "
                       f"parameters are torch.float32"):
        _model()(torch.randn(N, D, dtype=dtype), EDGES)


def test_unknown_model_option():
    with pytest.raises(ValueError, match="does not take the option 'foo'"):
        build_model('res', D, 8, 2, 2, foo=1)


@pytest.mark.parametrize('batch, err, needle', [
    (torch.zeros(N - 1, dtype=torch.long), ValueError, "'batch' must have "
     'shape'),
    (torch.zeros(N, dtype=torch.float), TypeError, 'torch.long'),
    (torch.tensor([0, 0, 0, -1, -1, -1]), ValueError, 'non-negative'),
    # graphs {0,1,2} and {3,4,5}, but edge 1-2 ... 2-3 joins them
    (torch.tensor([0, 0, 1, 1, 1, 1]), ValueError, 'join different graphs'),
])
def test_bad_readout_batch(batch, err, needle):
    model = _model(readout='mean')
    with pytest.raises(err, match=needle):
        model(torch.randn(N, D), EDGES, batch=batch)


def test_good_readout_batch_still_pools():
    out = _model(readout='mean')(torch.randn(N, D), EDGES,
                                 batch=torch.tensor([0, 0, 0, 1, 1, 1]))
    assert out.shape == (2, 2) and torch.isfinite(out).all()


# -- delta ops ----------------------------------------------------------------

@pytest.mark.parametrize('name', ['x', 'k', 'beta', 'v'])
@pytest.mark.parametrize('bad', [math.nan, math.inf])
def test_delta_update_non_finite(name, bad):
    args = dict(zip(('x', 'k', 'beta', 'v'), _delta_inputs()))
    args[name] = args[name].clone()
    args[name].view(-1)[0] = bad
    with pytest.raises(ValueError, match=f"'{name}' contains NaN or Inf"):
        delta_update(**args)


@pytest.mark.parametrize('value', [5.0, -1.0, 2.0001])
def test_delta_update_beta_out_of_range(value):
    x, k, beta, v = _delta_inputs()
    beta[2] = value
    with pytest.raises(ValueError, match=r"'beta' must lie in \[0, 2\]"):
        delta_update(x, k, beta, v)


def test_delta_update_beta_range_edges_accepted():
    x, k, beta, v = _delta_inputs()
    beta[0], beta[1] = 0.0, 2.0
    assert torch.isfinite(delta_update(x, k, beta, v)).all()


def test_delta_update_eps_zero_with_zero_key():
    x, k, beta, v = _delta_inputs()
    k[3] = 0
    with pytest.raises(ValueError, match='all-zero row and eps=0'):
        delta_update(x, k, beta, v, eps=0.0)
    assert torch.isfinite(delta_update(x, k, beta, v)).all()  # default eps


@pytest.mark.parametrize('eps', [-1.0, math.nan, math.inf])
def test_delta_update_bad_eps(eps):
    with pytest.raises(ValueError, match="'eps' must be a finite float"):
        delta_update(*_delta_inputs(), eps=eps)


def test_delta_update_complex():
    x, k, beta, v = (t.to(torch.complex64) for t in _delta_inputs())
    with pytest.raises(TypeError, match='real floating-point'):
        delta_update(x, k, beta, v)


def test_model_forward_checks_once_not_per_layer(monkeypatch):
    """The delta layers' value checks are skipped inside the model: the
    model's single check is the only pass over x."""
    import ddl_gnn.ops.delta as ops
    calls = []
    real = ops._check_finite_range
    monkeypatch.setattr(ops, '_check_finite_range',
                        lambda *a: (calls.append(1), real(*a)))
    model = build_model('delta', D, 8, 4, 2, d_v=2)
    model(torch.randn(N, D), EDGES)
    assert calls == []
    ops.delta_update(*_delta_inputs())
    assert calls == [1]


# -- metrics ------------------------------------------------------------------

@pytest.mark.parametrize('fn', [dirichlet_energy, mad, mad_gap])
def test_metrics_refuse_empty_graph(fn):
    with pytest.raises(ValueError, match="'x' has 0 rows"):
        fn(torch.randn(0, 3), torch.empty(2, 0, dtype=torch.long))


def test_metrics_one_node_documented():
    """One node, no edge: energy 0; MAD and MADGap NaN, as documented."""
    x, ei = torch.randn(1, 3), torch.empty(2, 0, dtype=torch.long)
    assert float(dirichlet_energy(x, ei)) == 0.0
    assert math.isnan(float(mad(x, ei))) and 'NaN' in mad.__doc__
    assert math.isnan(float(mad_gap(x, ei))) and 'NaN' in mad_gap.__doc__


@pytest.mark.parametrize('fn', [dirichlet_energy, mad])
def test_metrics_refuse_inf(fn):
    x = torch.randn(N, 3)
    x[1, 1] = math.inf
    with pytest.raises(ValueError, match='NaN or Inf'):
        fn(x, EDGES)


# -- load_dataset ---------------------------------------------------------------

@pytest.mark.parametrize('kwargs, err, needle', [
    (dict(feature_snr=math.nan), ValueError, "'feature_snr' must be a finite"),
    (dict(avg_degree=-3), ValueError, "'avg_degree' must be >= 0"),
    (dict(avg_degree=math.inf), ValueError, "'avg_degree' must be a finite"),
    (dict(num_nodes=0), ValueError, "'num_nodes' must be an int >= 1"),
    (dict(num_features=2.5), ValueError, "'num_features' must be an int"),
    (dict(foo=1), TypeError, "unknown options \\['foo'\\]"),
])
def test_csbm_bad_options(kwargs, err, needle):
    with pytest.raises(err, match=needle):
        load_dataset('csbm', **kwargs)


@pytest.mark.parametrize('name', [123, None, ['cora']])
def test_load_dataset_name_type(name):
    with pytest.raises(TypeError, match="'name' must be a dataset name"):
        load_dataset(name)


def test_finite_check_rereads_a_tensor_changed_in_place():
    # The check remembers the last tensor found finite; an in-place write
    # (a new version) must be checked again.
    from ddl_gnn._validate import all_finite
    x = torch.randn(5, 3)
    assert all_finite(x) and all_finite(x)
    x[0, 0] = float('inf')
    assert not all_finite(x)


@pytest.mark.parametrize('family', ['res', 'gcnii', 'delta'])
@pytest.mark.parametrize('bad', [1.0, -0.1, 'half', True, None])
def test_a_bad_dropout_rate_is_named(family, bad):
    """Every family's ``dropout`` (and delta's ``update_dropout``) is a rate
    in [0, 1); anything else is named with the family."""
    with pytest.raises(ValueError, match=r"'dropout' must lie in \[0, 1\)"):
        _model(family, dropout=bad)
    if family == 'delta':
        with pytest.raises(ValueError,
                           match=r"DeltaGNN: 'update_dropout' must lie in"):
            _model(family, update_dropout=bad)
