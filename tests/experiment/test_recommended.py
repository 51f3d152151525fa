"""Recommended settings fill the run options a caller does not set."""
import json

import pytest

import ddl_gnn
from ddl_gnn.cli import main
from ddl_gnn.experiment import recommended

TABLE = {'CSBM': {'res': dict(dropout=0.3, hidden=16, epochs=2,
                              model_kwargs={'norm': 'layer_norm'})}}


@pytest.fixture
def table(monkeypatch):
    monkeypatch.setattr(recommended, '_table', lambda: TABLE)


def _config(out):
    lines = (out / 'results.jsonl').read_text().splitlines()
    return json.loads(lines[-1])['config']


def test_shipped_table_parses_and_names_known_fields():
    from dataclasses import fields

    from ddl_gnn.experiment.config import RunConfig
    from ddl_gnn.models import MODELS
    known = {f.name for f in fields(RunConfig)}
    for dataset, models in recommended._table().items():
        for model, opts in models.items():
            assert model in MODELS, (dataset, model)
            assert set(opts) <= known, (dataset, model, set(opts) - known)


def test_shipped_model_options_build_their_model():
    # a misspelt or invalid model option in the shipped table would only
    # surface when a user trains on that dataset
    from ddl_gnn.models import build_model
    for dataset, models in recommended._table().items():
        for model, opts in models.items():
            kwargs = dict(opts.get('model_kwargs', {}))
            hidden = opts.get('hidden', 64)
            net = build_model(model, 8, hidden, 2, 3, **kwargs)
            assert sum(p.numel() for p in net.parameters()) > 0, dataset


def test_merge_keeps_explicit_options_and_dict_keys(table):
    got = recommended.with_recommended(
        'csbm', 'res', dict(dropout=0.5, hidden=64, epochs=200,
                            model_kwargs={'norm': None, 'act': 'gelu'}),
        explicit={'dropout', 'model_kwargs'})
    assert got['dropout'] == 0.5 and got['hidden'] == 16
    assert got['epochs'] == 2
    assert got['model_kwargs'] == {'norm': None, 'act': 'gelu'}


def test_cli_fills_only_what_is_not_given(table, tmp_path, capsys):
    out = tmp_path / 'a'
    main(['train', '--dataset', 'csbm', '--model', 'res', '--depth', '2',
          '--hidden', '8', '--no-measure', '--out', str(out)])
    cfg = _config(out)
    assert (cfg['dropout'], cfg['hidden'], cfg['epochs']) == (0.3, 8, 2)
    assert cfg['model_kwargs'] == {'norm': 'layer_norm'}
    assert 'recommended settings for csbm/res' in capsys.readouterr().err
    # an explicit value equal to the run default still wins
    main(['train', '--dataset', 'csbm', '--model', 'res', '--depth', '2',
          '--dropout', '0.5', '--no-measure', '--out', str(out)])
    assert _config(out)['dropout'] == 0.5


def test_cli_no_recommended_and_other_models_untouched(table, tmp_path):
    out = tmp_path / 'b'
    main(['train', '--dataset', 'csbm', '--model', 'res', '--depth', '2',
          '--epochs', '1', '--no-recommended', '--no-measure',
          '--out', str(out)])
    assert _config(out)['dropout'] == 0.5 and _config(out)['hidden'] == 64
    main(['train', '--dataset', 'csbm', '--model', 'plain', '--depth', '2',
          '--epochs', '1', '--no-measure', '--out', str(out)])
    assert _config(out)['dropout'] == 0.5


def test_api_train_applies_them(table, tmp_path):
    rec = ddl_gnn.train('csbm', 'res', 2, out=str(tmp_path), measure=False,
                        model_kwargs={'act': 'relu'})
    assert rec['config']['dropout'] == 0.3
    assert rec['config']['model_kwargs'] == {'norm': 'layer_norm',
                                             'act': 'relu'}
    rec = ddl_gnn.train('csbm', 'res', 2, out=str(tmp_path), measure=False,
                        recommended=False, epochs=1)
    assert rec['config']['dropout'] == 0.5


def test_actor_recommendation_is_the_paper_layer():
    # [actor.delta] spells out PAPER_DELTA: the delta family with it is the
    # delta-paper model (same parameters from the same seed, same output),
    # so the delta-paper records on Actor are that recommendation's runs
    import torch

    from ddl_gnn.models import PAPER_DELTA, build_model
    kwargs = recommended.recommended_settings('actor', 'delta')[
        'model_kwargs']
    assert kwargs == PAPER_DELTA
    x = torch.randn(12, 6)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
                               [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0]])
    nets = []
    for model, kw in (('delta', kwargs), ('delta-paper', {})):
        torch.manual_seed(0)
        nets.append(build_model(model, 6, 8, 3, 4, **kw).eval())
    a, b = (net.state_dict() for net in nets)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    torch.testing.assert_close(nets[0](x, edge_index), nets[1](x, edge_index),
                               rtol=0, atol=0)


def test_recorded_command_reruns_the_run_not_todays_recommendation(
        table, tmp_path, monkeypatch):
    """A record's command reproduces its config although the table would
    fill the options it leaves at their defaults: a run made without the
    recommendation (here a sweep-like ``--no-recommended`` run), and one
    made under an older table, rerun as recorded."""
    import shlex
    first = tmp_path / 'a'
    main(['train', '--dataset', 'csbm', '--model', 'res', '--depth', '2',
          '--epochs', '1', '--no-recommended', '--no-measure',
          '--out', str(first)])
    rec = json.loads((first / 'results.jsonl').read_text().splitlines()[-1])
    assert '--no-recommended' in rec['command']
    argv = shlex.split(rec['command'])[1:]
    argv[argv.index('--out') + 1] = str(tmp_path / 'b')
    main(argv)
    assert _config(tmp_path / 'b') == rec['config']   # dropout 0.5, not 0.3
