"""Bad command lines, config files and result folders: ``ddl-gnn`` exits
with status 2 and one ``ddl-gnn: error:`` line naming the flag or file,
before training anything."""
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddl_gnn._cli_checks import json_object
from ddl_gnn.cli import main

CSBM = '{"num_nodes": 40, "num_features": 4}'
TRAIN = ['train', '--dataset', 'csbm', '--model', 'res', '--depth', '1',
         '--epochs', '1', '--hidden', '4', '--no-measure',
         '--dataset-kwargs', CSBM]


def _fails(argv, capsys, *needles):
    """``main(argv)`` refuses with status 2 and a message holding every
    needle (argparse errors exit through SystemExit(2))."""
    try:
        rc = main(argv)
    except SystemExit as exit_:
        rc = exit_.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert 'Traceback' not in err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize('flags, needle', [
    (['--patience', '-1'], "'patience' must be an int >= 0"),
    (['--weight-decay', '-1'], "'weight_decay' must be a finite number >= 0"),
    (['--lr', '0'], "'lr' must be a finite number > 0"),
    (['--lr', 'nan'], "'lr' must be a finite number > 0"),
    (['--dropout', '1.5'], "'dropout' must be a number in [0, 1)"),
    (['--runs', '0'], '--runs: an int >= 1 is needed'),
    (['--runs', '-1'], '--runs: an int >= 1 is needed'),
    (['--model-kwargs', '{bad'], '--model-kwargs: not JSON'),
    (['--model-kwargs', '[1]'], '--model-kwargs: a JSON object is needed'),
    (['--model', 'nope'], "unknown model(s) ['nope']"),
    (['--dataset', 'nope'], "unknown dataset 'nope'"),
    (['--dataset-kwargs', '{"root": "/elsewhere"}'], "may not set ['root']"),
])
def test_bad_train_option(tmp_path, capsys, flags, needle):
    _fails(TRAIN + ['--out', str(tmp_path / 'o')] + flags, capsys, needle)
    assert not (tmp_path / 'o' / 'results.jsonl').exists()


def test_unknown_model_option_is_named(tmp_path, capsys):
    _fails(TRAIN + ['--out', str(tmp_path), '--model-kwargs', '{"foo": 1}'],
           capsys, "does not take the option 'foo'")


def test_out_on_a_file(tmp_path, capsys):
    f = tmp_path / 'file'
    f.write_text('x')
    _fails(TRAIN + ['--out', str(f)], capsys, f'--out {f}: is a file')
    _fails(TRAIN + ['--out', str(f / 'sub')], capsys,
           f'is under the file {f}')


def test_out_read_only(tmp_path, capsys):
    ro = tmp_path / 'ro'
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        _fails(TRAIN + ['--out', str(ro)], capsys, 'read-only')
    finally:
        os.chmod(ro, 0o755)


@pytest.mark.parametrize('content', [b'not json\n', b'[1, 2]\n',
                                     b'\xff\xfe\x00binary'])
def test_train_refuses_damaged_results_before_training(tmp_path, capsys,
                                                        content):
    path = tmp_path / 'results.jsonl'
    path.write_bytes(content)
    _fails(TRAIN + ['--out', str(tmp_path)], capsys, str(path))
    assert path.read_bytes() == content
    assert not (tmp_path / 'checkpoints').exists()


def test_results_file_that_is_a_folder(tmp_path, capsys):
    (tmp_path / 'results.jsonl').mkdir()
    _fails(TRAIN + ['--out', str(tmp_path)], capsys, 'is a folder')


@pytest.mark.parametrize('text, needle', [
    (b'dataset = "csbm"\nmodels = [', 'not a TOML file'),
    (b'\x00\xff\xfe binary', 'not a TOML file'),
    (b'dataset = "csbm"\nmodels = "res"\ndepths = [1]\n',
     "'models' must be a non-empty list"),
    (b'dataset = "csbm"\nmodels = ["res"]\ndepths = ["2"]\n',
     "'depths' must be a non-empty list of ints"),
    (b'dataset = "csbm"\nmodels = ["res"]\ndepths = [1]\nseeds = 0\n',
     "'seeds' must be a count >= 1"),
    (b'dataset = "csbm"\nmodels = ["res"]\ndepths = [1]\ndefaults = 3\n',
     '[defaults] must be a table'),
    (b'dataset = "csbm"\nmodels = ["res"]\ndepths = [1]\n'
     b'[defaults]\nlr = "fast"\n', "'lr' must be a finite number > 0"),
    (b'dataset = "csbm"\nmodels = ["res"]\ndepths = [1]\n'
     b'[defaults]\ndataset_kwargs = { root = "/x" }\n', "may not set"),
])
def test_bad_sweep_config_names_the_file(tmp_path, capsys, text, needle):
    cfg = tmp_path / 'bad.toml'
    cfg.write_bytes(text)
    err = _fails(['sweep', '--config', str(cfg), '--out',
                  str(tmp_path / 'o')], capsys, needle)
    if 'must be a finite' not in needle and 'may not set' not in needle:
        assert str(cfg) in err


def test_sweep_checks_every_model_name_before_training(tmp_path, capsys):
    out = tmp_path / 'o'
    _fails(['sweep', '--dataset', 'csbm', '--models', 'res,nope,worse',
            '--depths', '1', '--out', str(out), '--epochs', '1'], capsys,
           "unknown model(s) ['nope', 'worse']")
    assert not (out / 'results.jsonl').exists()


@pytest.mark.parametrize('content', [b'[1, 2, 3]\n', b'\x89PNG\r\n\x1a\n'])
def test_report_on_damaged_results(tmp_path, capsys, content):
    (tmp_path / 'results.jsonl').write_bytes(content)
    _fails(['report', str(tmp_path)], capsys,
           str(tmp_path / 'results.jsonl'))


def test_report_on_missing_folder_does_not_create_it(tmp_path, capsys):
    missing = tmp_path / 'typo'
    _fails(['report', str(missing)], capsys, 'no such folder')
    assert not missing.exists()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_json_object_accepts_objects_only(text):
    import argparse
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict):
        assert json_object(text) == value
    else:
        with pytest.raises(argparse.ArgumentTypeError):
            json_object(text)
