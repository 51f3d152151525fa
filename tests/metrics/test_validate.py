import pytest
import torch

from ddl_gnn.metrics import (dirichlet_energy, effective_rank, mad, mad_gap,
                             normalized_dirichlet_energy, numerical_rank)

X = torch.randn(4, 3)
EI = torch.tensor([[0, 1, 2], [1, 2, 3]])


@pytest.mark.parametrize('args,err,match', [
    ((torch.randn(4), EI), ValueError, "'x' must be 2-D"),
    ((torch.randn(4, 3, 2), EI), ValueError, "'x' must be 2-D"),
    ((torch.ones(4, 3, dtype=torch.long), EI), TypeError, "'x'.*floating"),
    ((torch.tensor([[0.0, float('nan')]] * 4), EI), ValueError,
     "'x' contains NaN"),
    ((X, EI.t()), ValueError, r"'edge_index' must have shape \[2, E\]"),
    ((X, EI.int()), TypeError, "'edge_index' must have dtype torch.long"),
    ((X, torch.tensor([[0, 4], [1, 2]])), IndexError,
     "'edge_index' contains node indices outside"),
    ((X, torch.tensor([[0, -1], [1, 2]])), IndexError, "'edge_index'"),
    ((X, EI, torch.ones(2)), ValueError, "'edge_weight' must have shape"),
    ((X, EI, torch.ones(3, dtype=torch.long)), TypeError, "'edge_weight'"),
])
def test_bad_input_names_argument(args, err, match):
    with pytest.raises(err, match=match):
        dirichlet_energy(*args)


def test_bad_input_other_metrics():
    with pytest.raises(ValueError, match="'x' must be 2-D"):
        numerical_rank(torch.randn(5))
    with pytest.raises(ValueError, match="'x' contains NaN"):
        effective_rank(torch.full((3, 2), float('inf')))
    with pytest.raises(IndexError, match="'edge_index'"):
        mad(X, torch.tensor([[0], [9]]))
    with pytest.raises(ValueError, match="'near' and 'remote'"):
        mad_gap(X, EI, near=3, remote=2)
    with pytest.raises(ValueError, match="'edge_weight' must be non-neg"):
        normalized_dirichlet_energy(X, EI, -torch.ones(3))
    with pytest.raises(ValueError, match="'batch' must have shape"):
        dirichlet_energy(X, EI, batch=torch.zeros(3, dtype=torch.long))
