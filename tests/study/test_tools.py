"""The study's tools (``study/tools/``): result folders, record merges,
checkpoint packs."""
import shutil
import tarfile
from pathlib import Path

import pytest
import torch

from ddl_gnn.experiment.checkpoint import RunCheckpoint
from ddl_gnn.experiment.records import ResultStore


def _record(i):
    return {'key': f'k{i}', 'test': i / 10}


def test_record_folders_sees_live_and_archived(tmp_path, study_tool):
    record_folders = study_tool('folders').record_folders
    for name in ('live', 'archived', 'both'):
        ResultStore(tmp_path / name).append(_record(0))
    ResultStore(tmp_path / 'archived').compact()
    both = ResultStore(tmp_path / 'both')
    both.compact()
    both.append(_record(1))
    (tmp_path / 'empty').mkdir()
    shutil.copy(both.archive, tmp_path / 'empty' / 'other.gz')
    assert [p.name for p in record_folders(tmp_path)] == [
        'archived', 'both', 'live']


def test_merge_records_adds_new_keys_only(tmp_path, study_tool):
    """merge_records.py (records from another machine) reads archived and
    live sources and never writes a key twice."""
    mod = study_tool('merge_records')
    src, dst = ResultStore(tmp_path / 'src' / 'x'), ResultStore(
        tmp_path / 'dst' / 'x')
    for i in range(3):
        src.append(_record(i))
    src.compact()
    for i in range(3, 5):
        src.append(_record(i))
    dst.append(_record(0))
    dst.compact()
    assert mod.merge(tmp_path / 'src', tmp_path / 'dst') == {'x': 4}
    assert [r['key'] for r in dst.load()] == ['k0', 'k1', 'k2', 'k3', 'k4']
    assert mod.merge(tmp_path / 'src', tmp_path / 'dst') == {'x': 0}


def test_pack_fills_parts_most_trained_first_and_drops_stale_parts(
        tmp_path, study_tool):
    """Three pending checkpoints, room for one per part: with two parts the
    two most-trained runs travel (one per file), the third is left out; a
    later call needing one part removes the stale second file."""
    pack = study_tool('pack_checkpoints')
    root = tmp_path / 'results'
    for key, train_s in (('a', 30.0), ('b', 20.0), ('c', 10.0)):
        RunCheckpoint(str(root / 'sw' / 'checkpoints'), key).save(
            dict(epoch=int(train_s), train_s=train_s,
                 pad=torch.zeros(20000)))    # ~80 kB each
    out = str(tmp_path / 'ck.tgz')
    assert pack.part_path(out, 1) == str(tmp_path / 'ck.2.tgz')
    chosen = pack.pack(out, root, limit_mib=0.1, parts=2)
    assert [c['key'] for c in chosen] == ['a', 'b']

    def members(path):
        with tarfile.open(path) as tar:
            return tar.getnames()
    assert members(out) == ['study/results/sw/checkpoints/a.pt']
    assert members(pack.part_path(out, 1)) == [
        'study/results/sw/checkpoints/b.pt']
    ResultStore(str(root / 'sw')).append({'key': 'a'})   # a finished
    ResultStore(str(root / 'sw')).append({'key': 'b'})   # b finished
    assert [c['key'] for c in pack.pack(out, root, 0.1, parts=2)] == ['c']
    assert members(out) == ['study/results/sw/checkpoints/c.pt']
    assert not Path(pack.part_path(out, 1)).exists()
    with pytest.raises(ValueError, match='parts must be >= 1'):
        pack.pack(out, root, parts=0)


def test_tuning_budget_counts_configurations_once_over_seeds_and_folders(
        tmp_path, study_tool):
    """A configuration's seeds count once among the configurations; a run
    recorded in two folders counts once; other depths and sets are out."""
    from dataclasses import asdict

    from ddl_gnn.experiment.config import RunConfig
    mod = study_tool('tuning_budget')

    def rec(folder, model, depth, seed, lr=0.01, dataset='cora'):
        cfg = RunConfig(dataset=dataset, model=model, depth=depth,
                        seed=seed, lr=lr)
        ResultStore(tmp_path / folder).append(
            dict(key=cfg.key(), dataset=dataset, model=model, depth=depth,
                 config=asdict(cfg)))
    for s in range(3):
        rec('screen', 'delta', 64, s)
        rec('depth', 'delta', 64, s)                 # the same runs again
    rec('screen', 'delta', 64, 0, lr=0.005)
    rec('screen', 'gcnii', 64, 0)
    rec('screen', 'gcnii', 16, 0)
    rec('screen', 'gcnii', 64, 0, dataset='pubmed')
    counts = mod.budget(sorted(tmp_path.iterdir()), ['cora'], [64])
    assert counts == {('cora', 64, 'delta'): (2, 4),
                      ('cora', 64, 'gcnii'): (1, 1)}
    assert mod.table(counts)[2:] == ['| delta | 2 / 4 |', '| gcnii | 1 / 1 |']



def test_draw_points_is_seeded_distinct_within_the_space_and_excludes(
        tmp_path, study_tool):
    """The same seed draws the same points; every point is a distinct
    combination of the space's values over its fixed settings; the
    excluded combinations are never drawn; the whole space can be drawn
    and no more."""
    import itertools
    import tomllib
    mod = study_tool('draw_points')
    space = {'lr': [0.005, 0.01], 'dropout': [0.4, 0.5, 0.6],
             'model_kwargs.alpha': [0.1, 0.2],
             'fixed': {'dataset_kwargs': {'normalize_features': True}},
             'exclude': [{'lr': 0.01, 'dropout': 0.5,
                          'model_kwargs': {'alpha': 0.1}}]}
    first = mod.draw(space, 5, seed=3)
    assert first == mod.draw(space, 5, seed=3)
    assert first != mod.draw(space, 5, seed=4)
    every = mod.draw(space, 11, seed=0)
    expected = [{'dataset_kwargs': {'normalize_features': True}, 'lr': lr,
                 'dropout': p, 'model_kwargs': {'alpha': a}}
                for lr, p, a in itertools.product(
                    [0.005, 0.01], [0.4, 0.5, 0.6], [0.1, 0.2])
                if (lr, p, a) != (0.01, 0.5, 0.1)]
    assert sorted(map(json_key, every)) == sorted(map(json_key, expected))
    with pytest.raises(ValueError, match='the space holds 11'):
        mod.draw(space, 12, seed=0)
    with pytest.raises(ValueError, match="space key 'lr'"):
        mod.draw({'lr': 0.01}, 1, seed=0)
    # a drawn point is a valid TOML inline table that reads back equal
    line = 'p = ' + mod.toml_value(first[0])
    assert tomllib.loads(line)['p'] == first[0]


def json_key(d):
    import json
    return json.dumps(d, sort_keys=True)


def test_budget_configs_hold_the_points_their_draw_command_gives(
        study_tool):
    """study/configs/budget_*_cora.toml are the draws their headers name
    (the seeded random search is reproducible from the space file)."""
    import re
    import tomllib
    mod = study_tool('draw_points')
    configs = Path(__file__).parents[2] / 'study' / 'configs'
    spaces = tomllib.loads((configs / 'budget_space.toml').read_text())
    checked = 0
    for path in sorted(configs.glob('budget_*_cora.toml')):
        text = path.read_text()
        model, n, seed = re.search(
            r'--model (\S+) --n (\d+) --seed (\d+)', text).groups()
        points = [{k: v for k, v in p.items() if k != 'depths'}
                  for p in tomllib.loads(text)['grid'][model]['point']]
        assert points == mod.draw(spaces[model], int(n), int(seed)), path
        checked += 1
    assert checked >= 1


def test_welch_difference_standard_error_and_p(study_tool):
    import math

    import numpy as np
    mod = study_tool('make_report')
    a, b = [1.0, 2.0, 3.0], [2.0, 3.0, 4.0, 5.0]
    d, se, p = mod.welch(a, b)
    # by hand: variances 1 and 5/3, se = sqrt(1/3 + 5/12)
    assert d == pytest.approx(-1.5) and se == pytest.approx(0.75 ** 0.5)
    # p from Student's t density integrated numerically at Welch's df
    v = (1 / 3, 5 / 12)
    df = sum(v) ** 2 / (v[0] ** 2 / 2 + v[1] ** 2 / 3)
    t = abs(d) / se
    x = np.linspace(t, 400.0, 2_000_001)
    c = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi)
                                    * math.gamma(df / 2))
    pdf = c * (1 + x ** 2 / df) ** (-(df + 1) / 2)
    tail = float(np.sum((pdf[1:] + pdf[:-1]) / 2 * np.diff(x)))
    assert p == pytest.approx(2 * tail, rel=1e-4)
    # swapping the sides flips the sign only; equal samples: no evidence
    assert mod.welch(b, a) == pytest.approx((1.5, se, p))
    assert mod.welch(a, a)[2] == pytest.approx(1.0)
    with pytest.raises(ValueError, match='two values'):
        mod.welch([1.0], b)


def test_budget_citeseer_configs_take_their_points_from_the_cora_draw():
    """study/configs/budget_*_citeseer.toml run points of the Cora search:
    the ones drawn first (at L = 16 too) and others of the same draw."""
    import tomllib
    configs = Path(__file__).parents[2] / 'study' / 'configs'
    checked = 0
    for path in sorted(configs.glob('budget_*_citeseer.toml')):
        cora = tomllib.loads(
            path.with_name(path.name.replace('citeseer', 'cora')).read_text())
        text = tomllib.loads(path.read_text())
        (model, grid), = text['grid'].items()
        drawn = [{k: v for k, v in p.items() if k != 'depths'}
                 for p in cora['grid'][model]['point']]
        points = grid['point']
        first = [p for p in points if 16 in p['depths']]
        strip = [{k: v for k, v in p.items() if k != 'depths'}
                 for p in points]
        assert strip[:len(first)] == drawn[:len(first)], path
        assert all(p in drawn for p in strip), path
        assert len({json_key(p) for p in strip}) == len(strip), path
        assert all(64 in p['depths'] for p in points), path
        checked += 1
    assert checked >= 2
