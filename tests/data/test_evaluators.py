"""Evaluators: real ogb Evaluators for OGB sets, OGB-style stand-ins else."""
import numpy as np
import pytest
import torch

from ddl_gnn.data import Evaluator, load_dataset
from ddl_gnn.data.evaluators import eval_ap, eval_rocauc


def test_accuracy_matches_hand_computation():
    ev = Evaluator('x', 'acc')
    y_true = torch.tensor([[0], [1], [2], [1], [0]])
    y_pred = torch.tensor([[0], [2], [2], [1], [1]])
    assert ev.eval({'y_true': y_true, 'y_pred': y_pred}) == {'acc': 3 / 5}
    # 1-D input is read as [n, 1]
    assert ev.eval({'y_true': y_true.view(-1),
                    'y_pred': y_pred.view(-1)})['acc'] == 0.6


def test_accuracy_same_as_ogb_arxiv_evaluator():
    from ogb.nodeproppred import Evaluator as OgbEvaluator
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 40, (200, 1))
    y_pred = np.where(rng.random((200, 1)) < 0.5, y_true,
                      rng.integers(0, 40, (200, 1)))
    inp = {'y_true': y_true, 'y_pred': y_pred}
    assert Evaluator('x', 'acc').eval(inp)['acc'] == pytest.approx(
        OgbEvaluator('ogbn-arxiv').eval(inp)['acc'])


def test_ap_and_rocauc_follow_ogb_definitions():
    from ogb.graphproppred import Evaluator as OgbEvaluator
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 2, (300, 10)).astype(float)
    y_true[:, 3] = 0  # a task with one class is skipped, as in ogb
    y_pred = rng.random((300, 10)) + 0.3 * y_true
    ogb_ev = OgbEvaluator('ogbg-molpcba')  # metric 'ap'
    assert eval_ap(y_true, y_pred) == pytest.approx(
        ogb_ev._eval_ap(y_true, y_pred)['ap'])
    assert eval_rocauc(y_true, y_pred) == pytest.approx(
        OgbEvaluator('ogbg-molhiv')._eval_rocauc(y_true, y_pred)['rocauc'])


def test_shape_checks():
    ev = Evaluator('x', 'rocauc', num_tasks=2)
    with pytest.raises(RuntimeError):
        ev.eval({'y_true': np.zeros((4, 1)), 'y_pred': np.zeros((4, 1))})
    with pytest.raises(ValueError):
        Evaluator('x', 'f1')


def test_dataset_eval_helper_on_csbm():
    ds = load_dataset('csbm', num_nodes=100, num_classes=2)
    y = ds.data.y
    assert ds.eval(y, y) == 1.0
    assert ds.eval(y, 1 - y) == 0.0
