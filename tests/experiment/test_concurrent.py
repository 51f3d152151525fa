"""Two sweeps on one --out: per-process temporary names and a claim per
run key, so two processes never train the same run."""
import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from ddl_gnn.experiment.checkpoint import RunCheckpoint
from ddl_gnn.experiment.claims import RunClaim
from ddl_gnn.experiment.records import ResultStore

# Each process runs the sweep and prints the keys it trained (every call of
# runner.run, whether or not its record was then written).
SCRIPT = textwrap.dedent('''
    import json, sys
    import ddl_gnn.experiment.runner as runner
    from ddl_gnn.experiment.sweep import expand, run_sweep
    trained, real = [], runner.run
    def counted(cfg, **kw):
        trained.append(cfg.key())
        return real(cfg, **kw)
    runner.run = counted
    spec = dict(dataset='csbm', models=['res', 'plain'], depths=[1, 2],
                seeds=2, defaults=dict(
                    hidden=8, epochs=15, patience=None, measure=False,
                    dataset_kwargs=dict(num_nodes=200, num_features=8)))
    run_sweep(expand(spec), sys.argv[1], progress=False, checkpoint_every=0)
    print(json.dumps(trained))
''')


def test_two_sweeps_on_one_out_never_train_one_run_twice(tmp_path):
    out = tmp_path / 'out'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    procs = [subprocess.Popen([sys.executable, '-c', SCRIPT, str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (stdout, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr[-2000:]
    a, b = (set(json.loads(stdout.strip().splitlines()[-1]))
            for stdout, _ in results)
    records = ResultStore(str(out)).load()
    keys = [r['key'] for r in records]
    assert len(keys) == len(set(keys)) == 8
    assert not a & b, f'trained by both: {a & b}'
    assert a | b == set(keys)
    # nothing left behind: no claim, no checkpoint, no temporary file
    leftovers = [f for d in ('claims', 'checkpoints') if (out / d).exists()
                 for f in os.listdir(out / d) if f != '.lock']
    assert leftovers == []


def _dead_pid():
    p = subprocess.Popen([sys.executable, '-c', 'pass'])
    p.wait()
    return p.pid


def _plant(claim, **info):
    os.makedirs(claim.folder, exist_ok=True)
    with open(claim.path, 'w') as f:
        json.dump(info, f)


def test_claim_is_exclusive_and_released(tmp_path):
    first = RunClaim(str(tmp_path), 'k')
    second = RunClaim(str(tmp_path), 'k')
    assert first.acquire()
    info = second.holder()
    assert info['pid'] == os.getpid() and info['host'] == socket.gethostname()
    first.release()
    assert second.holder() is None and second.acquire()
    second.release()


def test_claim_of_a_live_process_is_respected(tmp_path):
    claim = RunClaim(str(tmp_path), 'k')
    _plant(claim, host=socket.gethostname(), pid=os.getppid(), time=0)
    assert not claim.acquire()
    assert claim.holder()['pid'] == os.getppid()
    claim.release()                       # not ours: left in place
    assert os.path.exists(claim.path)


def test_claim_of_a_dead_process_is_taken_over(tmp_path):
    claim = RunClaim(str(tmp_path), 'k')
    _plant(claim, host=socket.gethostname(), pid=_dead_pid(), time=0)
    assert claim.acquire()
    assert claim.holder()['pid'] == os.getpid()
    claim.release()


def test_claim_from_another_host_goes_stale_without_refresh(tmp_path):
    claim = RunClaim(str(tmp_path), 'k', stale_after_s=2.0, refresh_s=1.0)
    _plant(claim, host='elsewhere', pid=1, time=0)
    assert not claim.acquire()            # fresh: respected
    old = time.time() - 10
    os.utime(claim.path, (old, old))
    assert claim.acquire()
    claim.release()


def test_held_claim_is_refreshed(tmp_path):
    claim = RunClaim(str(tmp_path), 'k', stale_after_s=2.0, refresh_s=0.05)
    assert claim.acquire()
    old = time.time() - 100
    os.utime(claim.path, (old, old))
    time.sleep(0.5)
    assert time.time() - os.stat(claim.path).st_mtime < 5
    claim.release()


def test_claim_rejects_bad_intervals(tmp_path):
    with pytest.raises(ValueError, match='refresh_s'):
        RunClaim(str(tmp_path), 'k', stale_after_s=1.0, refresh_s=5.0)


def test_checkpoint_temporary_names_are_per_call(tmp_path, monkeypatch):
    import torch
    names = []
    real = torch.save

    def spy(obj, f):
        names.append(os.path.basename(f))
        real(obj, f)
    monkeypatch.setattr(torch, 'save', spy)
    a = RunCheckpoint(str(tmp_path), 'k', 0)
    b = RunCheckpoint(str(tmp_path), 'k', 0)
    a.save(dict(epoch=1))
    b.save(dict(epoch=2))
    assert len(set(names)) == 2 and all(n.startswith('.k.pt.') for n in
                                        names)
    assert os.listdir(tmp_path) == ['k.pt']
    assert a.load()['epoch'] == 2
