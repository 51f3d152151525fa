"""``ddl-gnn train/sweep --distributed`` under torchrun (2 gloo ranks)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _env():
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep +
               os.environ.get('PYTHONPATH', ''), OMP_NUM_THREADS='1')
    env.pop('RANK', None)
    env.pop('WORLD_SIZE', None)
    return env


def _torchrun(*args, timeout=120):
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
           '--nproc_per_node=2', '-m', 'ddl_gnn', *args]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True,
                         timeout=timeout, cwd=REPO)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


def _records(out):
    return [json.loads(line) for line in
            (Path(out) / 'results.jsonl').read_text().splitlines() if line]


def test_torchrun_train_writes_one_record(tmp_path):
    out = tmp_path / 'train'
    _torchrun('train', '--dataset', 'csbm', '--model', 'delta', '--depth',
              '4', '--epochs', '2', '--loader', 'random', '--batch-size',
              '256', '--distributed', '--out', str(out))
    recs = _records(out)
    assert len(recs) == 1
    rec = recs[0]
    assert rec['world_size'] == 2
    assert rec['epochs_run'] == 2 and len(rec['loss_curve']) == 2
    assert rec['config']['loader'] == 'random'
    assert rec['command'].startswith('torchrun --nproc_per_node=2 -m ddl_gnn '
                                     'train --distributed ')
    assert 0.0 <= rec['test'] <= 1.0


def test_torchrun_sweep_spreads_runs(tmp_path):
    out = tmp_path / 'sweep'
    _torchrun('sweep', '--dataset', 'csbm', '--models', 'res,delta',
              '--depths', '2', '--seeds', '1', '--epochs', '2',
              '--hidden', '16', '--distributed', '--out',
              str(out))
    recs = _records(out)
    assert sorted(r['model'] for r in recs) == ['delta', 'res']
    assert len({r['key'] for r in recs}) == 2
    assert all(r['world_size'] == 1 for r in recs)  # each run: one process
    assert (out / 'report.md').exists()  # rank 0, after both ranks finished
