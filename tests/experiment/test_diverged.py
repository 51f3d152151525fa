"""Diverged runs are recorded as strict JSON with a flag and reported as
diverged; report.md escapes the names and commands it quotes."""
import json
import math

import pytest

from ddl_gnn.cli import main
from ddl_gnn.experiment.config import RunConfig
from ddl_gnn.experiment.logger import summary_lines
from ddl_gnn.experiment.records import (ResultStore, has_score, is_diverged,
                                       strict_record)
from ddl_gnn.experiment.report import code_block, md, write_report
from ddl_gnn.experiment.runner import run

CSBM = dict(num_nodes=100, num_features=8)


def _strict_lines(path):
    """Every line parsed by a parser that rejects NaN/Infinity tokens."""
    def refuse(token):
        raise AssertionError(f'non-strict JSON token {token}')
    return [json.loads(line, parse_constant=refuse)
            for line in path.read_text().splitlines()]


@pytest.fixture(scope='module')
def diverged_record(tmp_path_factory):
    # Adam moves each weight by about lr per step: lr = 1e30 overflows the
    # outputs after the first step, so the loss of epoch 1 is not finite.
    out = tmp_path_factory.mktemp('div')
    cfg = RunConfig(dataset='csbm', model='res', depth=2, lr=1e30, epochs=5,
                    hidden=8, dataset_kwargs=CSBM)
    return run(cfg, out=str(out), progress=False)


def test_training_stops_and_flags_divergence(diverged_record):
    r = diverged_record
    assert r['diverged'] is True and r['diverged_epoch'] == 1
    assert r['epochs_run'] == 1 and len(r['loss_curve']) == 1
    assert r['best_epoch'] == 0                  # the last finite epoch
    assert all(math.isfinite(v) for v in r['loss_curve'])


def test_record_is_strict_json(diverged_record, tmp_path):
    ResultStore(str(tmp_path)).append(diverged_record)
    (rec, ) = _strict_lines(tmp_path / 'results.jsonl')
    assert rec['diverged'] is True
    # the per-layer energies of the overflowed weights were NaN: now null
    assert any(v is None for layer in rec['per_layer']
               for v in layer.values())


def test_non_finite_scores_become_null_and_flag():
    rec = dict(key='k', valid=float('nan'), test=float('inf'), train=0.5,
               loss_curve=[1.0, float('nan')],
               per_layer=[dict(e=float('-inf'))])
    out = strict_record(rec)
    assert out['valid'] is None and out['test'] is None
    assert out['per_layer'] == [dict(e=None)] and out['diverged'] is True
    json.dumps(out, allow_nan=False)
    fine = strict_record(dict(key='k', valid=0.5, test=0.4, train=0.6))
    assert 'diverged' not in fine and not is_diverged(fine)


def test_old_records_with_nan_tokens_are_reported_diverged(tmp_path):
    """A record written before the flag, with a bare NaN test score."""
    good = dict(key='a', dataset='csbm', model='res', depth=2, seed=0,
                metric='acc', valid=0.5, test=0.5, best_epoch=10)
    old = dict(good, key='b', seed=1, test=float('nan'))
    with open(tmp_path / 'results.jsonl', 'w') as f:
        for r in (good, old):
            f.write(json.dumps(r, allow_nan=True) + '\n')
    text = write_report(str(tmp_path)).read_text()
    assert '50.0 (1) + 1 diverged' in text
    assert '| csbm | res | 2 | 1 |' in text         # in the diverged table


def test_report_scores_a_run_before_it_diverged(diverged_record, tmp_path):
    # the run kept its best finite epoch (0): the table counts its score
    # there and marks it; the diverged table lists it
    assert has_score(diverged_record)
    store = ResultStore(str(tmp_path))
    store.append(diverged_record)
    text = write_report(str(tmp_path)).read_text()
    test = 100 * diverged_record['test']
    assert f'| res | {test:.1f} (1) [1 diverged] |' in text
    assert '## Diverged runs' in text
    assert '| csbm | res | 2 | 0 | 1 |' in text


def test_report_and_summary_average_the_same_runs(tmp_path):
    """The report's cell and the CLI summary: a run that diverged after its
    best epoch is averaged in at that epoch, one without a score is not."""
    base = dict(dataset='csbm', model='res', depth=2, metric='acc',
                valid=0.5, train=0.9)
    runs = [dict(base, key='a', seed=0, test=0.80, best_epoch=30),
            dict(base, key='b', seed=1, test=0.60, best_epoch=12,
                 diverged=True, diverged_epoch=40),
            dict(base, key='c', seed=2, test=None, best_epoch=-1,
                 diverged=True, diverged_epoch=0)]
    store = ResultStore(str(tmp_path))
    for r in runs:
        store.append(r)
    text = write_report(str(tmp_path)).read_text()
    assert '| res | 70.0 ± 14.1 (2) [1 diverged] + 1 diverged |' in text
    lines = summary_lines(runs)
    assert 'All runs (2):' in lines
    assert '   Final Test: 70.00 ± 14.14' in lines
    assert lines[-1] == ('Diverged: 2 of 3 runs (1 scored at their best '
                         'epoch before it; 1 without a score, left out of '
                         'the means)')
    assert any('seed 1, best epoch 12, diverged: non-finite loss at epoch '
               '40' in line for line in lines)


def test_train_cli_prints_diverged(tmp_path, capsys):
    rc = main(['train', '--dataset', 'csbm', '--model', 'res', '--depth', '2',
               '--lr', '1e30', '--epochs', '5', '--hidden', '8',
               '--dataset-kwargs', json.dumps(CSBM), '--no-measure',
               '--out', str(tmp_path)])
    assert rc == 0
    assert 'diverged' in capsys.readouterr().out
    (rec, ) = _strict_lines(tmp_path / 'results.jsonl')
    assert rec['diverged'] is True


# -- escaping -----------------------------------------------------------------

def test_md_escapes_markup_and_html():
    assert md('a|b') == 'a\\|b'
    assert md('<script>x</script>') == '&lt;script&gt;x&lt;/script&gt;'
    assert md('[x](http://e)') == '\\[x\\](http://e)'
    assert md('two\nlines') == 'two lines'
    assert md('res+') == 'res+'


def test_code_block_cannot_be_closed_from_inside():
    lines = code_block('echo ```; rm -rf /')
    assert lines[0] == lines[-1] == '````'
    assert code_block('plain') == ['```', 'plain', '```']


def test_report_escapes_quoted_names(tmp_path):
    rec = dict(key='a', dataset='csbm', model='evil|<b>x</b>', depth=2,
               seed=0, metric='acc', valid=0.5, test=0.5, best_epoch=10,
               command='ddl-gnn train ```\n# injected heading\n```',
               config=dict(model_kwargs={'norm': '| x |'}))
    ResultStore(str(tmp_path)).append(rec)
    text = write_report(str(tmp_path)).read_text()
    assert '<b>' not in text and 'evil\\|&lt;b&gt;x&lt;/b&gt;' in text
    # the command sits inside a fence longer than its own backtick runs
    lines = text.splitlines()
    start = lines.index('````')
    assert lines[start + 1:start + 4] == ['ddl-gnn train ```',
                                          '# injected heading', '```']
    assert lines[start + 4] == '````'
    # every table row keeps its column count
    for line in lines:
        if line.startswith('| model |'):
            width = line.count(' | ')
        elif line.startswith('| evil'):
            assert line.replace('\\|', '').count(' | ') == width
