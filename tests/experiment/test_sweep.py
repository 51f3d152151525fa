"""Sweep, resume, records and report on the embedded csbm graph."""
import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ddl_gnn.cli import main
from ddl_gnn.experiment.config import RunConfig
from ddl_gnn.experiment.records import ResultStore
from ddl_gnn.experiment.sweep import check_spec, expand

CSBM = {'num_nodes': 120, 'num_classes': 3, 'num_features': 8}
SMALL = ['--epochs', '3', '--hidden', '8', '--dataset-kwargs',
         json.dumps(CSBM)]


def _sweep(out, *extra):
    return main(['sweep', '--dataset', 'csbm', '--models', 'res,delta',
                 '--depths', '1,3', '--seeds', '2', '--out', str(out),
                 '--no-report', *SMALL, *extra])


def _lines(out):
    return (Path(out) / 'results.jsonl').read_text().splitlines()


def test_sweep_writes_complete_records_and_resume_skips(tmp_path):
    _sweep(tmp_path)
    recs = [json.loads(x) for x in _lines(tmp_path)]
    assert len(recs) == 8
    assert len({r['key'] for r in recs}) == 8
    r = next(x for x in recs if x['model'] == 'delta' and x['depth'] == 3)
    for field in ('dataset', 'model', 'depth', 'seed', 'valid', 'test',
                  'per_layer', 'beta', 'config', 'command', 'torch',
                  'torch_geometric', 'ogb', 'device', 'git_sha'):
        assert field in r, field
    assert [p['layer'] for p in r['per_layer']] == [0, 1, 2, 3]
    assert all('dirichlet_energy' in p for p in r['per_layer'])
    assert len(r['beta']) == 3 and 0 <= r['beta'][0]['mean'] <= 2
    # the beta audit at init, not the beta_init hyper-parameter
    assert len(r['beta_audit_init']) == 3 and 'beta_init' not in r
    assert r['command'].startswith('ddl-gnn train --dataset csbm --model '
                                   'delta --depth 3')
    _sweep(tmp_path)                    # rerun: nothing new
    assert len(_lines(tmp_path)) == 8
    main(['sweep', '--dataset', 'csbm', '--models', 'res,delta', '--depths',
          '1,3', '--seeds', '3', '--out', str(tmp_path), '--no-report',
          *SMALL])                      # one more seed: only 4 new runs
    assert len(_lines(tmp_path)) == 12


def test_kill_mid_sweep_loses_only_the_run_in_flight(tmp_path):
    cmd = [sys.executable, '-m', 'ddl_gnn', 'sweep', '--dataset', 'csbm',
           '--models', 'res,delta', '--depths', '1,2,3', '--seeds', '1',
           '--out', str(tmp_path), '--no-report', '--epochs', '40',
           '--hidden', '8', '--dataset-kwargs', json.dumps(CSBM)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    path = tmp_path / 'results.jsonl'
    deadline = time.time() + 120
    while time.time() < deadline and (not path.exists() or
                                      len(_lines(tmp_path)) < 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = [json.loads(x) for x in _lines(tmp_path)]   # all lines parse
    assert 2 <= len(before) < 6
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    after = [json.loads(x) for x in _lines(tmp_path)]
    assert len(after) == 6 and len({r['key'] for r in after}) == 6
    assert after[:len(before)] == before


def test_recorded_command_reproduces_the_test_metric(tmp_path):
    _sweep(tmp_path / 'a')
    rec = json.loads(_lines(tmp_path / 'a')[-1])
    argv = shlex.split(rec['command'])[1:]
    out = argv.index('--out')
    argv[out + 1] = str(tmp_path / 'b')
    main(argv)
    again = json.loads(_lines(tmp_path / 'b')[0])
    assert again['key'] == rec['key']
    assert again['test'] == pytest.approx(rec['test'], abs=1e-9)
    assert again['valid'] == pytest.approx(rec['valid'], abs=1e-9)


def test_report_writes_markdown_and_pngs(tmp_path):
    _sweep(tmp_path)
    main(['report', str(tmp_path)])
    text = (tmp_path / 'report.md').read_text()
    assert '| delta |' in text and '| res |' in text and 'L=3' in text
    pngs = sorted(p.name for p in tmp_path.glob('*.png'))
    for name in ('accuracy_vs_depth.png', 'energy_vs_depth.png',
                 'rank_vs_depth.png', 'dirichlet_energy_per_layer.png',
                 'beta_hist_csbm_delta_L3.png'):
        assert name in pngs
        assert (tmp_path / name).stat().st_size > 1000


def test_report_mean_std_matches_records(tmp_path):
    _sweep(tmp_path)
    recs = [json.loads(x) for x in _lines(tmp_path)]
    tests = [r['test'] for r in recs if r['model'] == 'res'
             and r['depth'] == 1]
    import statistics
    main(['report', str(tmp_path)])
    cell = (f'{100 * statistics.fmean(tests):.1f} ± '
            f'{100 * statistics.stdev(tests):.1f} (2)')
    assert cell in (tmp_path / 'report.md').read_text()


def test_config_file_overrides_and_unknown_keys(tmp_path):
    spec = dict(dataset='csbm', models=['res', 'delta'], depths=[2, 64],
                seeds=1, defaults=dict(lr=0.01, hidden=16),
                model={'delta': dict(model_kwargs={'beta_init': 0.5})},
                override=[dict(models=['delta'], depths=[64], lr=0.002)],
                extra=[dict(models=['delta'], depths=[64], seeds=3)])
    runs = expand(spec, {'epochs': 5})
    cells = {(r.model, r.depth, r.seed): r for r in runs}
    assert len(runs) == 2 * 2 + 2          # extra adds seeds 1, 2 at 64
    assert cells[('delta', 64, 2)].lr == 0.002
    assert cells[('delta', 2, 0)].lr == 0.01
    assert cells[('delta', 2, 0)].model_kwargs == {'beta_init': 0.5}
    assert all(r.epochs == 5 and r.hidden == 16 for r in runs)
    with pytest.raises(ValueError, match="unknown run options"):
        expand(dict(spec, defaults=dict(learning_rate=0.1)))


def test_store_never_duplicates_a_key(tmp_path):
    store = ResultStore(tmp_path)
    assert store.append({'key': 'a', 'x': 1})
    assert not store.append({'key': 'a', 'x': 2})
    assert store.load() == [{'key': 'a', 'x': 1}]


def test_run_config_validates():
    with pytest.raises(ValueError, match="'loader' must be one of"):
        RunConfig('csbm', 'delta', 2, loader='metis')


def test_report_handles_runs_without_measurements(tmp_path):
    main(['sweep', '--dataset', 'csbm', '--models', 'res', '--depths', '2',
          '--seeds', '1', '--out', str(tmp_path), '--no-measure', *SMALL])
    assert (tmp_path / 'report.md').exists()
    assert (tmp_path / 'energy_vs_depth.png').exists()


def test_grid_expands_per_model_and_merges_dicts():
    spec = dict(dataset='csbm', models=['res+', 'delta'], depths=[4],
                seeds=2, model={'delta': dict(model_kwargs={'d_v': 2})},
                grid={'*': dict(lr=[0.01, 0.005]),
                      'delta': dict(model_kwargs=[{'beta_init': 0.1},
                                                  {'beta_init': 1.0}])})
    runs = expand(spec)
    assert sum(r.model == 'res+' for r in runs) == 2 * 2
    delta = [r for r in runs if r.model == 'delta']
    assert len(delta) == 2 * 2 * 2
    assert {(r.lr, r.model_kwargs['beta_init'], r.model_kwargs['d_v'])
            for r in delta} == {(lr, b, 2) for lr in (0.01, 0.005)
                                for b in (0.1, 1.0)}


def test_grid_points_are_whole_configurations():
    spec = dict(dataset='csbm', models=['delta'], depths=[4], seeds=1,
                grid={'delta': dict(
                    point=[{'lr': 0.01, 'model_kwargs': {'heads': 4}},
                           {'lr': 0.005, 'dropout': 0.2}],
                    dataset_kwargs=[{}, {'normalize_features': True}])})
    got = {(r.lr, r.dropout, r.model_kwargs.get('heads'),
            r.dataset_kwargs.get('normalize_features')) for r in expand(spec)}
    assert got == {(0.01, RunConfig.dropout, 4, None),
                   (0.01, RunConfig.dropout, 4, True),
                   (0.005, 0.2, None, None), (0.005, 0.2, None, True)}
    bad = dict(spec, grid={'delta': dict(point=[0.01])})
    with pytest.raises(ValueError, match="'point' must be a list of tables"):
        check_spec(bad)


def test_a_point_with_depths_runs_only_there():
    spec = dict(dataset='csbm', models=['delta', 'res'], depths=[2, 4, 8],
                seeds=2, grid={'*': dict(point=[
                    {'lr': 0.01}, {'lr': 0.005, 'depths': [2, 8]}])})
    got = sorted((r.model, r.depth, r.lr) for r in expand(spec)
                 if r.seed == 0)
    assert got == sorted((m, d, lr) for m in ('delta', 'res')
                         for d, lr in [(2, 0.01), (4, 0.01), (8, 0.01),
                                       (2, 0.005), (8, 0.005)])
    assert spec['grid']['*']['point'][1]['depths'] == [2, 8]  # not consumed
    for bad in ([], [2.0], 'all'):
        with pytest.raises(ValueError, match="a point's 'depths'"):
            check_spec(dict(spec, grid={'*': dict(point=[{'depths': bad}])}))


def test_run_key_ignores_fields_at_their_default():
    a = RunConfig('csbm', 'delta', 2)
    b = RunConfig('csbm', 'delta', 2, lr=RunConfig.lr, model_kwargs={})
    assert a.key() == b.key()
    assert a.key() != RunConfig('csbm', 'delta', 2, lr=0.02).key()


def test_report_separates_variants_of_one_model(tmp_path):
    from ddl_gnn.experiment.report import group_records
    base = dict(dataset='cora', depth=2, test=0.5)
    recs = [dict(base, model='delta', config={'model_kwargs': {'d_v': 1}}),
            dict(base, model='delta', config={'model_kwargs': {'d_v': 4}}),
            dict(base, model='res', config={'model_kwargs': {}})]
    assert set(group_records(recs)) == {('cora', 'delta [d_v=1]', 2),
                                        ('cora', 'delta [d_v=4]', 2),
                                        ('cora', 'res', 2)}


def test_report_separates_runs_with_other_training_settings():
    """Records that differ in a training setting (here lr) are different
    rows, never averaged as if they were seeds; settings shared by all
    records of a model stay out of the label."""
    from ddl_gnn.experiment.report import group_records
    base = dict(dataset='cora', depth=128, test=0.5, model='delta')
    kw = {'beta_init': 1.0}
    recs = [dict(base, config={'model_kwargs': kw, 'lr': 0.005, 'seed': 0}),
            dict(base, config={'model_kwargs': kw, 'lr': 0.005, 'seed': 1}),
            dict(base, config={'model_kwargs': kw, 'lr': 0.001, 'seed': 0}),
            dict(base, model='res', config={'lr': 0.01, 'seed': 0})]
    groups = group_records(recs)
    assert set(groups) == {('cora', 'delta [lr=0.005]', 128),
                           ('cora', 'delta [lr=0.001]', 128),
                           ('cora', 'res', 128)}
    assert len(groups[('cora', 'delta [lr=0.005]', 128)]) == 2


def test_report_reads_a_missing_setting_as_its_default():
    """Records written before a setting existed (no 'adj' in their
    config) ran with its default: one row with the records that state it,
    another row only for a non-default value."""
    from ddl_gnn.experiment.report import group_records
    base = dict(dataset='x', depth=4, test=0.5, model='delta')
    recs = [dict(base, config={'seed': 0}),
            dict(base, config={'seed': 1, 'adj': 'edge_index'})]
    assert list(group_records(recs)) == [('x', 'delta', 4)]
    recs.append(dict(base, config={'seed': 2, 'adj': 'csr'}))
    assert sorted(group_records(recs)) == [('x', 'delta [adj=csr]', 4),
                                           ('x', "delta [adj=edge_index]", 4)]
    assert len(group_records(recs)[('x', 'delta [adj=edge_index]', 4)]) == 2


def test_cli_user_errors_are_one_clear_message(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv('DDL_GNN_TRACEBACK', raising=False)
    assert main(['train', '--dataset', 'nonexist', '--model', 'delta',
                 '--depth', '2', '--out', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ddl-gnn: error: unknown dataset 'nonexist'")
    assert main(['train', '--dataset', 'csbm', '--model', 'resnet',
                 '--depth', '2', '--out', str(tmp_path)]) == 2
    assert 'unknown model' in capsys.readouterr().err
    monkeypatch.setenv('DDL_GNN_OFFLINE', '1')
    monkeypatch.setenv('DDL_GNN_DATA', str(tmp_path / 'empty'))
    assert main(['train', '--dataset', 'cora', '--model', 'delta',
                 '--depth', '2', '--out', str(tmp_path)]) == 2
    assert 'cora' in capsys.readouterr().err.lower()


def test_shards_partition_the_sweep(tmp_path):
    """Two ``--shard`` processes writing one folder run every configuration
    exactly once, and their union equals the unsharded sweep."""
    _sweep(tmp_path / 'full')
    _sweep(tmp_path / 'sharded', '--shard', '0/2')
    first = {json.loads(x)['key'] for x in _lines(tmp_path / 'sharded')}
    _sweep(tmp_path / 'sharded', '--shard', '1/2')
    both = [json.loads(x)['key'] for x in _lines(tmp_path / 'sharded')]
    full = {json.loads(x)['key'] for x in _lines(tmp_path / 'full')}
    assert len(both) == len(set(both)) == len(full) == 8
    assert set(both) == full and 0 < len(first) < 8


@pytest.mark.parametrize('shard', ['2/2', '1', 'a/b', '-1/3'])
def test_bad_shard_is_a_usage_error(tmp_path, shard, capsys):
    with pytest.raises(SystemExit) as exc:
        _sweep(tmp_path, '--shard', shard)
    assert exc.value.code == 2
    assert '--shard' in capsys.readouterr().err


def test_device_is_stamped_but_not_part_of_the_key(tmp_path):
    main(['train', '--dataset', 'csbm', '--model', 'delta', '--depth', '2',
          '--device', 'cpu', '--out', str(tmp_path), *SMALL])
    rec = json.loads(_lines(tmp_path)[0])
    assert rec['device'] == 'cpu'
    cfg = RunConfig(**rec['config'])
    assert 'device' not in rec['config'] and cfg.key() == rec['key']


def test_stall_table_counts_runs_that_never_improved():
    from ddl_gnn.experiment.report import stall_table
    recs = [dict(dataset='d', model='m', depth=4, seed=s, test=t,
                 best_epoch=e, metric='acc', config={})
            for s, (t, e) in enumerate([(0.2, 0), (0.8, 50), (0.6, 120)])]
    table = stall_table(recs)
    assert '| d | m | 4 | 1 / 3 | 70.0 ± 14.1 (2) |' in table
    assert stall_table(recs[1:]) == 'No stalled runs.'


@pytest.mark.skipif(__import__('torch').cuda.is_available(),
                    reason='checks the message on a machine without CUDA')
def test_unavailable_device_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv('DDL_GNN_TRACEBACK', raising=False)
    args = ['train', '--dataset', 'csbm', '--model', 'res', '--depth', '1',
            '--out', str(tmp_path), *SMALL]
    assert main(args + ['--device', 'cuda']) == 2
    assert 'CUDA is not available' in capsys.readouterr().err
    assert main(args + ['--device', 'tpu9']) == 2
    assert "unknown device 'tpu9'" in capsys.readouterr().err


def test_csr_adjacency_trains_the_same_run(tmp_path):
    from ddl_gnn.experiment.runner import run
    # The two adjacencies sum in other orders (about 1e-7 apart); with the
    # layer's default guard eps = 1e-5 a head whose dropped message is near
    # zero amplifies that by up to 1 / eps and some dropout masks part the
    # runs within a few epochs, so this run takes the guard of the deep
    # settings (eps = 0.01).
    recs = [run(RunConfig('csbm', 'delta', 3, epochs=15, hidden=8, adj=adj,
                          dataset_kwargs=CSBM, model_kwargs={'eps': 0.01}),
                str(tmp_path), progress=False)
            for adj in ('edge_index', 'csr')]
    assert recs[1]['config']['adj'] == 'csr'
    assert recs[1]['command'].count('--adj csr') == 1
    assert recs[1]['valid_curve'] == pytest.approx(recs[0]['valid_curve'],
                                                   abs=1e-6)
    assert recs[1]['test'] == pytest.approx(recs[0]['test'], abs=1e-6)


def test_csr_adjacency_on_a_graph_task_is_a_clear_error(tmp_path,
                                                        monkeypatch):
    from types import SimpleNamespace

    from ddl_gnn.experiment import runner
    monkeypatch.setattr(runner, 'load',
                        lambda cfg: SimpleNamespace(task='graph'))
    with pytest.raises(ValueError, match='full-graph node tasks'):
        runner.run(RunConfig('ogbg-molbace', 'delta', 2, adj='csr'),
                   str(tmp_path), progress=False)


def test_beta_plots_of_long_variant_labels_get_short_unique_names(tmp_path):
    """Variants spelled out in full (per-layer options) make labels longer
    than a file name may be: the plot name is cut and made unique."""
    from ddl_gnn.experiment.plots import _beta_plot
    hist = [{'hist': [1] * 20, 'layer': 1}]
    long = [{'v_source': 'diffuse', 'heads': 64, 'beta_init': 1.0}] * 12
    recs = [dict(dataset='cora', model='delta', depth=4, seed=0, beta=hist,
                 config=dict(model_kwargs=kw))
            for kw in ({'layer_options': long},
                       {'layer_options': long[:-1]})]
    paths = _beta_plot(recs, tmp_path)
    names = [p.name for p in paths]
    assert len(names) == 2 and len(set(names)) == 2
    assert all(len(n) <= 124 and n.startswith('beta_hist_cora_delta')
               and (tmp_path / n).stat().st_size > 1000 for n in names)


def test_train_rerun_reports_recorded_seeds_and_trains_the_rest(
        tmp_path, monkeypatch, capsys):
    import ddl_gnn.experiment.runner as runner
    trained = []
    real = runner.run

    def counting_run(cfg, **kw):
        trained.append(cfg.seed)
        return real(cfg, **kw)
    monkeypatch.setattr(runner, 'run', counting_run)
    args = ['train', '--dataset', 'csbm', '--model', 'res', '--depth', '2',
            '--out', str(tmp_path), '--no-measure', *SMALL]
    assert main(args + ['--runs', '2']) == 0
    first = {json.loads(x)['seed']: json.loads(x) for x in _lines(tmp_path)}
    capsys.readouterr()
    assert main(args + ['--runs', '3']) == 0
    out = capsys.readouterr()
    assert trained == [0, 1, 2]
    assert out.err.count('not trained again') == 2
    assert 'All runs (3)' in out.out
    recs = {json.loads(x)['seed']: json.loads(x) for x in _lines(tmp_path)}
    assert sorted(recs) == [0, 1, 2]
    assert all(recs[s] == first[s] for s in (0, 1))
    # --save-model needs the weights, which the recorded runs lack
    assert main(args + ['--runs', '1', '--save-model']) == 0
    assert trained == [0, 1, 2, 0]
    assert (tmp_path / 'models' / f"{recs[0]['key']}.pt").is_file()


def test_models_and_depths_given_limit_the_extra_blocks_too():
    """``--models`` / ``--depths`` limit a config's [[extra]] blocks as
    they limit its grid (an extra block keeps its own seeds where it still
    applies), and leave the run keys as they are."""
    from ddl_gnn.experiment.sweep import sweep_configs
    spec = dict(dataset='csbm', models=['res', 'delta'], depths=[2, 64],
                seeds=1, extra=[dict(models=['delta', 'res'], depths=[64],
                                     seeds=3),
                                dict(models=['delta'], depths=[128],
                                     seeds=2)])
    every = {(r.model, r.depth, r.seed): r.key()
             for r in sweep_configs(spec)}
    assert ('delta', 128, 1) in every and ('res', 64, 2) in every
    only_res = sweep_configs(spec, models=['res'], depths=[2, 64])
    assert {(r.model, r.depth, r.seed) for r in only_res} == {
        ('res', 2, 0), ('res', 64, 0), ('res', 64, 1), ('res', 64, 2)}
    shallow = sweep_configs(spec, depths=[2])
    assert {(r.model, r.depth, r.seed) for r in shallow} == {
        ('res', 2, 0), ('delta', 2, 0)}
    deep = sweep_configs(spec, depths=[64])
    assert len(deep) == 6
    assert all(every[(r.model, r.depth, r.seed)] == r.key()
               for r in only_res + shallow + deep)
    with pytest.raises(ValueError, match='extra'):
        sweep_configs(dict(spec, extra=['oops']), depths=[2])
