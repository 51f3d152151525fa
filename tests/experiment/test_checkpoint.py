"""Mid-run checkpoints: a run interrupted between epochs and resumed ends with
the record of the same run uninterrupted (oracle: that uninterrupted run)."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ddl_gnn.cli import main
from ddl_gnn.experiment import checkpoint as ckpt_mod
from ddl_gnn.experiment.checkpoint import RunCheckpoint
from ddl_gnn.experiment.config import RunConfig
from ddl_gnn.experiment.runner import run

CSBM = {'num_nodes': 120, 'num_classes': 3, 'num_features': 8}
#: Every field that training decides (the environment, time and the
#: provenance field ``resumed`` aside).
SAME = ('key', 'valid', 'test', 'train', 'best_epoch', 'epochs_run',
        'loss_curve', 'valid_curve', 'per_layer', 'beta', 'num_params')


class Killed(Exception):
    pass


def _interrupt_after_save(monkeypatch, at_epoch):
    """Every save goes through; the process 'dies' right after the save
    that resumes at ``at_epoch``."""
    real = RunCheckpoint.save

    def save(self, state):
        real(self, state)
        if state['epoch'] == at_epoch:
            raise Killed

    monkeypatch.setattr(RunCheckpoint, 'save', save)


def _resume_matches(cfg, tmp_path, monkeypatch, at_epoch):
    whole = run(cfg, out=str(tmp_path / 'whole'), progress=False)
    out = str(tmp_path / 'cut')
    with monkeypatch.context() as m:
        _interrupt_after_save(m, at_epoch)
        with pytest.raises(Killed):
            run(cfg, out=out, progress=False, checkpoint_every=0)
    path = Path(out) / 'checkpoints' / f'{cfg.key()}.pt'
    assert path.exists()
    resumed = run(cfg, out=out, progress=False, checkpoint_every=0)
    assert not path.exists()                  # removed with the record
    for field in SAME:
        assert resumed[field] == whole[field], field
    assert resumed['resumed'] == [at_epoch] and 'resumed' not in whole
    assert resumed['segment_devices'] == ['cpu', 'cpu']
    assert 'segment_devices' not in whole
    assert len(resumed['loss_curve']) > at_epoch   # it trained on after
    return resumed


def test_node_run_resumes_to_the_uninterrupted_record(tmp_path, monkeypatch):
    # dropout 0.5: the resumed half must draw the same masks (torch's
    # global generator is part of the checkpoint)
    cfg = RunConfig('csbm', 'delta', 3, hidden=8, epochs=12, patience=None,
                    dataset_kwargs=CSBM)
    _resume_matches(cfg, tmp_path, monkeypatch, at_epoch=5)


def test_random_state_is_restored(tmp_path, monkeypatch):
    """Without the saved random streams the resumed run differs: the
    equality above is not an accident of a deterministic run."""
    cfg = RunConfig('csbm', 'delta', 3, hidden=8, epochs=12, patience=None,
                    dataset_kwargs=CSBM)
    whole = run(cfg, out=str(tmp_path / 'whole'), progress=False)
    out = str(tmp_path / 'cut')
    with monkeypatch.context() as m:
        _interrupt_after_save(m, 5)
        with pytest.raises(Killed):
            run(cfg, out=out, progress=False, checkpoint_every=0)
    monkeypatch.setattr('ddl_gnn.experiment.train.set_random_state',
                        lambda *a, **k: None)
    resumed = run(cfg, out=out, progress=False, checkpoint_every=0)
    assert resumed['loss_curve'][:5] == whole['loss_curve'][:5]
    assert resumed['loss_curve'][5:] != whole['loss_curve'][5:]


def test_mini_batch_node_run_resumes(tmp_path, monkeypatch):
    cfg = RunConfig('csbm', 'res+', 2, hidden=8, epochs=6, patience=None,
                    loader='random', batch_size=40, dataset_kwargs=CSBM)
    _resume_matches(cfg, tmp_path, monkeypatch, at_epoch=3)


def test_graph_run_resumes_with_its_loader_shuffle(data_root, tmp_path,
                                                   monkeypatch):
    # the train loader shuffles with the run's own generator: restored too
    cfg = RunConfig('ogbg-molbace', 'delta', 2, hidden=8, epochs=4,
                    patience=None, batch_size=256, measure=False)
    _resume_matches(cfg, tmp_path, monkeypatch, at_epoch=2)


def test_patience_and_best_state_survive_a_resume(tmp_path, monkeypatch):
    # early stopping counts from the best epoch saved before the cut
    cfg = RunConfig('csbm', 'res', 2, hidden=8, epochs=60, patience=3,
                    lr=0.05, dataset_kwargs=CSBM)
    whole = run(cfg, out=str(tmp_path / 'probe'), progress=False)
    assert whole['epochs_run'] < 60          # it does stop early
    cut = max(1, whole['epochs_run'] - 2)
    _resume_matches(cfg, tmp_path, monkeypatch, at_epoch=cut)


def test_killed_sweep_resumes_the_run_in_flight(tmp_path):
    """End to end through the CLI: SIGKILL while a checkpoint exists, rerun
    the same command, get the record of an uninterrupted sweep."""
    def cmd(out):
        return [sys.executable, '-m', 'ddl_gnn', 'sweep', '--dataset',
                'csbm', '--models', 'delta', '--depths', '4', '--seeds', '1',
                '--out', str(out), '--no-report', '--epochs', '150',
                '--patience', 'none', '--hidden', '8', '--dataset-kwargs',
                json.dumps(CSBM), '--checkpoint-every', '0']
    proc = subprocess.Popen(cmd(tmp_path / 'cut'), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    folder = tmp_path / 'cut' / 'checkpoints'
    deadline = time.time() + 120
    while time.time() < deadline and not list(folder.glob('*.pt')):
        time.sleep(0.01)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / 'cut' / 'results.jsonl').exists()
    subprocess.run(cmd(tmp_path / 'cut'), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(cmd(tmp_path / 'whole'), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    [cut] = [json.loads(x) for x in
             (tmp_path / 'cut' / 'results.jsonl').read_text().splitlines()]
    [whole] = [json.loads(x) for x in
               (tmp_path / 'whole' / 'results.jsonl').read_text().splitlines()]
    assert cut['resumed'] and 0 < cut['resumed'][0] < 150
    for field in ('valid', 'test', 'best_epoch', 'loss_curve', 'valid_curve',
                  'per_layer', 'beta'):
        assert cut[field] == whole[field], field
    assert not list(folder.glob('*.pt'))


def test_damaged_or_foreign_checkpoint_is_an_error_naming_it(tmp_path):
    cfg = RunConfig('csbm', 'res', 2, hidden=8, epochs=3,
                    dataset_kwargs=CSBM)
    folder = tmp_path / 'checkpoints'
    folder.mkdir()
    path = folder / f'{cfg.key()}.pt'
    path.write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match=f'checkpoint {path}.*cannot be read'):
        run(cfg, out=str(tmp_path), progress=False, checkpoint_every=0)
    RunCheckpoint(str(folder), 'another-run').save({'epoch': 1})
    (folder / 'another-run.pt').replace(path)
    with pytest.raises(ValueError, match=f'not a format-{ckpt_mod.FORMAT} '
                       f'checkpoint of run {cfg.key()}'):
        run(cfg, out=str(tmp_path), progress=False, checkpoint_every=0)


def test_checkpoint_interval_is_validated(tmp_path, capsys):
    with pytest.raises(ValueError, match='>= 0 seconds'):
        RunCheckpoint(str(tmp_path), 'k', every_s=-1)
    with pytest.raises(SystemExit):
        main(['sweep', '--dataset', 'csbm', '--models', 'res', '--depths',
              '2', '--out', str(tmp_path), '--checkpoint-every', '-5'])
    assert "--checkpoint-every takes seconds >= 0 or 'none'" in \
        capsys.readouterr().err


def test_no_file_without_checkpointing_and_interval_respected(tmp_path):
    cfg = RunConfig('csbm', 'res', 2, hidden=8, epochs=3,
                    dataset_kwargs=CSBM)
    run(cfg, out=str(tmp_path / 'off'), progress=False)
    assert not (tmp_path / 'off' / 'checkpoints').exists()
    ck = RunCheckpoint(str(tmp_path), 'k', every_s=3600)
    assert not ck.due()
    assert RunCheckpoint(str(tmp_path), 'k', every_s=0).due()
    ck.save({'epoch': 1, 'x': torch.ones(2)})
    assert ck.load()['x'].tolist() == [1.0, 1.0]
    mapped = ck.load(mmap=True)         # what a sweep reads to order runs
    assert mapped['epoch'] == 1 and mapped['x'].tolist() == [1.0, 1.0]
    ck.clear()
    assert ck.load() is None


def test_cut_run_moves_to_another_machine_and_finishes_there(
        tmp_path, monkeypatch, study_tool):
    """study/tools: pack_checkpoints.py on machine A, merge_records.py on
    machine B, the sweep on B resumes: the record equals an uninterrupted
    run's."""
    import tarfile
    from ddl_gnn.experiment.records import ResultStore
    pending_checkpoints = study_tool('folders').pending_checkpoints
    cfg = RunConfig('csbm', 'delta', 3, hidden=8, epochs=10, patience=None,
                    dataset_kwargs=CSBM)
    whole = run(cfg, out=str(tmp_path / 'whole'), progress=False)
    a, b = tmp_path / 'a' / 'results', tmp_path / 'b' / 'results'
    with monkeypatch.context() as m:
        _interrupt_after_save(m, 4)
        with pytest.raises(Killed):
            run(cfg, out=str(a / 'sweep'), progress=False, checkpoint_every=0)
    ResultStore(str(a / 'done')).append({'key': 'finished-run'})
    RunCheckpoint(str(a / 'done' / 'checkpoints'), 'finished-run').save(
        dict(epoch=3, train_s=99.0))        # stale: its record exists
    [pending] = pending_checkpoints(str(a))
    assert pending['run'] == dict(model='delta', depth=3, seed=0, epochs=10)
    assert (pending['sweep'], pending['key'], pending['epoch']) == \
        ('sweep', cfg.key(), 4)

    pack = study_tool('pack_checkpoints')
    assert pack.pack(str(tmp_path / 'c.tgz'), a, limit_mib=0) == []
    assert not (tmp_path / 'c.tgz').exists()       # nothing fits: no file
    assert len(pack.pack(str(tmp_path / 'c.tgz'), a)) == 1
    with tarfile.open(tmp_path / 'c.tgz') as tar:
        assert tar.getnames() == [
            f'study/results/sweep/checkpoints/{cfg.key()}.pt']
        tar.extractall(tmp_path / 'unpacked', filter='data')
    merge = study_tool('merge_records')
    src = tmp_path / 'unpacked' / 'study' / 'results'
    assert merge.merge_checkpoints(src, b) == {'sweep': 1}
    assert merge.merge_checkpoints(src, b) == {'sweep': 0}  # not newer
    moved = run(cfg, out=str(b / 'sweep'), progress=False, checkpoint_every=0)
    for field in SAME:
        assert moved[field] == whole[field], field
    assert moved['resumed'] == [4]
    ResultStore(str(b / 'sweep')).append(moved)
    assert merge.merge_checkpoints(src, b) == {'sweep': 0}  # has a record


def test_sweep_takes_cut_off_runs_first_most_trained_first(tmp_path,
                                                           monkeypatch):
    """Runs with a checkpoint come before fresh ones, the one with more
    epochs first; without checkpointing the sweep keeps its own order."""
    from ddl_gnn.experiment.sweep import run_sweep
    cfgs = [RunConfig('csbm', 'res', 2, seed=s, hidden=8, epochs=8,
                      patience=None, dataset_kwargs=CSBM) for s in range(3)]
    out = str(tmp_path / 'sweep')
    for cfg, at in ((cfgs[1], 2), (cfgs[2], 5)):
        with monkeypatch.context() as m:
            _interrupt_after_save(m, at)
            with pytest.raises(Killed):
                run(cfg, out=out, progress=False, checkpoint_every=0)
    written = run_sweep(cfgs, out, progress=False, checkpoint_every=0)
    assert [r['seed'] for r in written] == [2, 1, 0]
    assert [r.get('resumed') for r in written] == [[5], [2], None]
    plain = run_sweep(cfgs, str(tmp_path / 'plain'), progress=False)
    assert [r['seed'] for r in plain] == [0, 1, 2]


def test_checkpoint_without_devices_reads_as_unknown(tmp_path, monkeypatch):
    """Checkpoints written before ``devices`` existed still resume; the
    record says where the earlier epochs ran is unknown."""
    cfg = RunConfig('csbm', 'res', 2, hidden=8, epochs=6, patience=None,
                    dataset_kwargs=CSBM)
    out = str(tmp_path / 'old')
    with monkeypatch.context() as m:
        _interrupt_after_save(m, 3)
        with pytest.raises(Killed):
            run(cfg, out=out, progress=False, checkpoint_every=0)
    ck = RunCheckpoint(str(tmp_path / 'old' / 'checkpoints'), cfg.key())
    state = ck.load()
    assert state['devices'] == ['cpu']
    del state['devices']
    ck.save(state)
    rec = run(cfg, out=out, progress=False, checkpoint_every=0)
    assert rec['resumed'] == [3]
    assert rec['segment_devices'] == ['unknown', 'cpu']
