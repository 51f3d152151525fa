"""The command line as a new user meets it: fast help on every option with
choices, defaults and examples, ``--version``, and OGB's per-run lines."""
import argparse
import json
import subprocess
import sys
import time

import pytest

import ddl_gnn
from ddl_gnn.cli import (DATASET_NAMES, MODEL_NAMES, build_parser, main)
from ddl_gnn.experiment.logger import summary_lines


def _subparsers(parser):
    action, = [a for a in parser._actions
               if isinstance(a, argparse._SubParsersAction)]
    return action.choices


def test_every_option_has_help():
    parser = build_parser()
    for name, sub in [('', parser), *_subparsers(parser).items()]:
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help and action.help.strip(), \
                f'ddl-gnn {name} {action.option_strings or action.dest}'


def test_help_shows_choices_defaults_and_examples():
    text = _subparsers(build_parser())['train'].format_help()
    assert '{full,random,neighbor,cluster}' in text
    assert '{edge_index,csr}' in text
    assert '(default: 64)' in text and '(default: edge_index)' in text
    for name in ('delta-write-only', 'res+', 'ogbg-molhiv', 'chameleon'):
        assert name in text
    assert 'examples:' in text and 'ddl-gnn train --dataset' in text
    sweep = _subparsers(build_parser())['sweep'].format_help()
    assert '(default: None)' not in sweep and '(run default: 64)' in sweep


def test_names_in_help_match_the_registries():
    from ddl_gnn.data import DATASETS
    from ddl_gnn.models import MODELS
    assert MODEL_NAMES == tuple(MODELS)
    assert DATASET_NAMES == tuple(DATASETS)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(['--version'])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f'ddl-gnn {ddl_gnn.__version__}'


PROBE = ('import sys; from ddl_gnn.cli import build_parser; build_parser(); '
         'print(sorted(m for m in ("torch", "torch_geometric", "numpy") '
         'if m in sys.modules))')


def test_help_is_fast_and_imports_no_torch():
    res = subprocess.run([sys.executable, '-c', PROBE], capture_output=True,
                         text=True, timeout=60)
    assert res.stdout.strip() == '[]', res.stderr[-2000:]
    times = []
    for _ in range(3):
        start = time.perf_counter()
        res = subprocess.run([sys.executable, '-m', 'ddl_gnn', 'train',
                              '--help'], capture_output=True, timeout=60)
        times.append(time.perf_counter() - start)
        assert res.returncode == 0 and b'--model-kwargs' in res.stdout
    assert min(times) < 1.0, times


RECORDS = [dict(seed=0, metric='acc', train=0.9, valid=0.8, test=0.7,
                train_curve=[0.5, 0.95, 0.9], best_epoch=2, time_s=1.0),
           dict(seed=1, metric='acc', train=0.7, valid=0.6, test=0.5,
                train_curve=[0.7], best_epoch=0, time_s=1.0)]


def test_ogb_logger_lines():
    lines = summary_lines(RECORDS)
    assert lines[:5] == ['Run 01: (seed 0, best epoch 2, 1.0 s)',
                         'Highest Train: 95.00', 'Highest Valid: 80.00',
                         '  Final Train: 90.00', '   Final Test: 70.00']
    assert lines[5].startswith('Run 02:')
    # OGB: mean ± unbiased std of each line over the runs
    assert lines[10:] == ['All runs (2):', 'Highest Train: 82.50 ± 17.68',
                          'Highest Valid: 70.00 ± 14.14',
                          '  Final Train: 80.00 ± 14.14',
                          '   Final Test: 60.00 ± 14.14']


def test_regression_errors_are_not_scaled_and_missing_lines_left_out():
    lines = summary_lines([dict(seed=0, metric='rmse', train=None,
                                valid=1.25, test=1.5, best_epoch=1,
                                time_s=0.5)])
    assert lines == ['Run 01: (seed 0, best epoch 1, 0.5 s)',
                     'Highest Valid: 1.25', '   Final Test: 1.50',
                     'All runs (1):', 'Highest Valid: 1.25 ± 0.00',
                     '   Final Test: 1.50 ± 0.00']


def test_train_prints_ogb_lines_and_records_train(tmp_path, capsys):
    assert main(['train', '--dataset', 'csbm', '--model', 'delta', '--depth',
                 '2', '--epochs', '3', '--hidden', '8', '--runs', '2',
                 '--no-measure', '--out', str(tmp_path), '--dataset-kwargs',
                 json.dumps({'num_nodes': 100})]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [ln for ln in out if ln.startswith('Run ')][1].startswith('Run 02')
    assert 'All runs (2):' in out
    recs = [json.loads(x) for x in
            (tmp_path / 'results.jsonl').read_text().splitlines()]
    for r in recs:
        assert 0.0 <= r['train'] <= 1.0
        assert len(r['train_curve']) == r['epochs_run']
        assert r['train_curve'][r['best_epoch']] == round(r['train'], 5)


@pytest.mark.dataset
def test_graph_tasks_score_train_at_each_new_best(tmp_path, data_root):
    assert main(['train', '--dataset', 'ogbg-molbace', '--model', 'res',
                 '--depth', '2', '--epochs', '4', '--hidden', '8',
                 '--no-measure', '--out', str(tmp_path)]) == 0
    r = json.loads((tmp_path / 'results.jsonl').read_text())
    assert 0.0 <= r['train'] <= 1.0
    best = float('-inf')
    for valid, train in zip(r['valid_curve'], r['train_curve']):
        assert (train is not None) == (valid > best)
        best = max(best, valid)
