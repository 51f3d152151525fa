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


def _entries(table):
    """(dataset or group, model, options) of every entry of a table."""
    for name, models in table.items():
        for model, opts in models.items():
            if model != recommended.GROUP_KEY:
                yield name, model, opts


def test_shipped_table_parses_and_names_known_fields():
    from dataclasses import fields

    from ddl_gnn.data import DATASETS
    from ddl_gnn.experiment.config import RunConfig
    from ddl_gnn.models import MODELS
    known = {f.name for f in fields(RunConfig)}
    table = recommended._table()
    for dataset, model, opts in _entries(table):
        assert model in MODELS, (dataset, model)
        assert set(opts) <= known, (dataset, model, set(opts) - known)
    # a group names registered datasets, and no dataset takes one family's
    # settings from two groups (the first found would win silently)
    seen = set()
    for name, group in table.items():
        members = group.get(recommended.GROUP_KEY)
        if members is None:
            assert name in DATASETS, name
            continue
        assert set(members) <= set(DATASETS), set(members) - set(DATASETS)
        pairs = {(d, m) for d in members for m in group
                 if m != recommended.GROUP_KEY}
        assert not pairs & seen, pairs & seen
        seen |= pairs


def test_shipped_model_options_build_their_model():
    # a misspelt or invalid model option in the shipped table would only
    # surface when a user trains on that dataset
    from ddl_gnn.models import build_model
    for dataset, model, opts in _entries(recommended._table()):
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


def test_group_entry_under_the_dataset_s_own(monkeypatch):
    table = {'Few': {'datasets': ['CSBM', 'karate'],
                     'res': {'dropout': 0.6, 'model_kwargs': {'act': 'relu',
                                                              'norm': None}},
                     'plain': {'lr': 0.1}},
             'csbm': {'res': {'hidden': 16, 'dropout': 0.3,
                              'model_kwargs': {'norm': 'layer_norm'}}}}
    monkeypatch.setattr(recommended, '_table', lambda: table)
    # the dataset's own fields win; model_kwargs merge key by key
    assert recommended.recommended_settings('csbm', 'res') == {
        'dropout': 0.3, 'hidden': 16,
        'model_kwargs': {'act': 'relu', 'norm': 'layer_norm'}}
    assert recommended.recommended_settings('csbm', 'plain') == {'lr': 0.1}
    assert recommended.recommended_settings('karate', 'res') == {
        'dropout': 0.6, 'model_kwargs': {'act': 'relu', 'norm': None}}
    assert recommended.recommended_settings('cora', 'res') == {}
    # the group's own name is not a dataset
    assert recommended.recommended_settings('few', 'res') == {}


def test_few_label_sets_run_the_cora_citeseer_layer():
    # the sets of 20 labels per class share the delta layer selected on
    # Cora and CiteSeer; those two add their selected training settings,
    # and the other families keep the CLI's defaults on the others
    cora = recommended.recommended_settings('cora', 'delta')
    layer = {k: v for k, v in cora['model_kwargs'].items() if k != 'alpha'}
    assert layer['theta'] == 0.5 and layer['heads'] == 64
    assert layer['channel_axes'] and layer['map_anchor']
    # Cora and CiteSeer train it with GCNII's selected settings, its alpha
    # included
    gcnii = recommended.recommended_settings('cora', 'gcnii')
    for key in ('lr', 'dropout', 'weight_decay', 'weight_decay_conv',
                'epochs', 'dataset_kwargs'):
        assert cora[key] == gcnii[key], key
        assert recommended.recommended_settings('citeseer', 'delta')[
            key] == gcnii[key], key
    assert cora['model_kwargs']['alpha'] == gcnii['model_kwargs']['alpha']
    for dataset in ('amazon-photo', 'amazon-computers', 'coauthor-cs',
                    'pubmed'):
        got = recommended.recommended_settings(dataset, 'delta')
        assert got == {'model_kwargs': layer}, dataset
        for model in ('gcnii', 'res+'):
            assert recommended.recommended_settings(dataset, model) == {}
    # sets outside the group keep their own entry or the package default
    assert 'theta' not in recommended.recommended_settings(
        'actor', 'delta')['model_kwargs']
    for dataset in ('texas', 'minesweeper', 'ogbg-molhiv'):
        assert recommended.recommended_settings(dataset, 'delta') == {}


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
