"""``ddl-gnn train --loader random`` end to end (single process)."""
import json
import os

import pytest

from ddl_gnn.cli import main


def _records(out):
    with open(os.path.join(out, 'results.jsonl')) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_train_random_loader_csbm(tmp_path):
    out = str(tmp_path)
    assert main(['train', '--dataset', 'csbm', '--model', 'delta', '--depth',
                 '4', '--epochs', '2', '--loader', 'random', '--batch-size',
                 '256', '--no-measure', '--out', out]) == 0
    rec, = _records(out)
    assert rec['world_size'] == 1 and rec['epochs_run'] == 2
    assert rec['config']['loader'] == 'random'
    assert rec['config']['batch_size'] == 256


@pytest.mark.dataset
def test_train_random_loader_tolokers(tmp_path, data_root, monkeypatch):
    monkeypatch.setenv('DDL_GNN_DATA', data_root)
    out = str(tmp_path)
    assert main(['train', '--dataset', 'tolokers', '--model', 'delta',
                 '--depth', '2', '--hidden', '16', '--epochs', '1',
                 '--loader', 'random', '--batch-size', '4096',
                 '--no-measure', '--out', out]) == 0
    rec, = _records(out)
    assert rec['metric'] == 'rocauc' and 0.0 <= rec['test'] <= 1.0
