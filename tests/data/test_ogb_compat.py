"""The ogb 1.3.6 + torch>=2.6 torch.load fix lives in one context manager."""
import os
import pickle

import pytest
import torch

from ddl_gnn.data import load_dataset
from ddl_gnn.data._ogb_compat import ogb_load_compat

pytestmark = pytest.mark.dataset

_TORCH_26 = tuple(int(p) for p in torch.__version__.split('.')[:2]) >= (2, 6)


def test_second_load_reads_processed_file_through_torch_load(data_root):
    first = load_dataset('ogbg-molesol', root=data_root)
    processed = os.path.join(first.root, 'ogb', 'ogbg_molesol', 'processed',
                             'geometric_data_processed.pt')
    assert os.path.exists(processed)
    again = load_dataset('ogbg-molesol', root=data_root)  # torch.load path
    assert len(again.dataset) == 1128
    assert torch.equal(again.dataset[5].x, first.dataset[5].x)
    assert again.metric == 'rmse' and again.task_type == 'regression'
    if _TORCH_26:  # the compat is needed: plain torch.load refuses the file
        with pytest.raises(pickle.UnpicklingError):
            torch.load(processed)
    with ogb_load_compat():
        torch.load(processed)


def test_compat_is_scoped_not_global(data_root):
    legacy = os.path.join(data_root, 'ogb', 'ogbl_ddi', 'split', 'target',
                          'valid.pt')
    with ogb_load_compat():
        d = torch.load(legacy)  # numpy legacy pickle, weights_only kept on
    assert d['edge'].shape == (133489, 2)
    if _TORCH_26:
        with pytest.raises(pickle.UnpicklingError):
            torch.load(legacy)  # outside the context: default still strict
