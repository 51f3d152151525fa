"""Link prediction end to end on the real ogbl-ddi (node embeddings, a GNN
stack, the edge predictor, the OGB Evaluator's Hits@20)."""
import pytest

from ddl_gnn.experiment.config import RunConfig
from ddl_gnn.experiment.runner import run


def test_ogbl_ddi_run_trains_and_scores_with_the_evaluator(data_root,
                                                           tmp_path):
    pytest.importorskip('ogb')
    # One full-graph step per epoch (batch larger than the 1.07M training
    # edges), no dropout: a short run whose loss must go down.
    cfg = RunConfig('ogbl-ddi', 'delta', 2, hidden=8, epochs=3,
                    batch_size=2 ** 21, lr=0.01, dropout=0.0, patience=None)
    rec = run(cfg, out=str(tmp_path), progress=False)
    assert rec['metric'] == 'hits@20' and rec['device'] == 'cpu'
    assert rec['epochs_run'] == 3
    assert rec['loss_curve'][-1] < rec['loss_curve'][0]
    assert 0.0 <= rec['valid'] <= 1.0 and 0.0 <= rec['test'] <= 1.0
    # 4,267 node embeddings of width 8 are part of the model.
    assert rec['num_params'] >= 4267 * 8
    assert '--dataset ogbl-ddi' in rec['command']
