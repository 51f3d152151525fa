"""load_dataset options that apply to every family."""
import numpy as np

from ddl_gnn.data import load_dataset


def test_normalize_features_matches_pyg_convention():
    raw = load_dataset('csbm', num_nodes=60, num_features=5)
    ds = load_dataset('csbm', num_nodes=60, num_features=5,
                      normalize_features=True)
    x = raw.data.x.numpy().astype(np.float64)
    x = x - x.min()
    want = x / np.maximum(x.sum(1, keepdims=True), 1.0)  # PyG's convention
    np.testing.assert_allclose(ds.data.x.numpy(), want, rtol=1e-5,
                               atol=1e-6)
    assert raw.data.x.min() < 0  # the memoised raw copy is untouched
    assert ds.info['normalize_features'] is True
