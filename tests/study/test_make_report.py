"""study/tools/make_report.py's tables against numpy."""
import numpy as np

from ddl_gnn.experiment.records import ResultStore


def test_summary_cells_are_mean_std_over_seeds_and_bold_the_best(
        tmp_path, study_tool):
    make_report = study_tool('make_report')
    store = ResultStore(str(tmp_path / 'set_a'))
    tests = {('res+', 2): [0.5, 0.6, 0.7], ('delta', 2): [0.8, 0.9],
             ('delta', 8): [0.4]}
    for (model, depth), values in tests.items():
        for seed, t in enumerate(values):
            store.append(dict(key=f'{model}{depth}{seed}', model=model,
                              depth=depth, seed=seed, test=t))
    lines = make_report._summary_table(
        tmp_path, [('set_a', 'A'), ('missing', 'B')], (2, 8),
        ('res+', 'delta'))
    rows = {tuple(c.strip() for c in line.split('|')[1:3]): line
            for line in lines[2:]}
    v = np.array(tests[('res+', 2)]) * 100
    assert f'{v.mean():.1f} ± {v.std(ddof=1):.1f} (3)' in rows[('A', 'res+')]
    w = np.array(tests[('delta', 2)]) * 100
    assert f'**{w.mean():.1f} ± {w.std(ddof=1):.1f} (2)**' in rows[
        ('A', 'delta')]
    assert '**40.0 (1)**' in rows[('A', 'delta')]          # only entry, L=8
    assert rows[('A', 'res+')].rstrip().endswith('| – |')  # nothing at L=8
    assert not any(title == 'B' for title, _ in rows)      # no folder


def test_headline_rows_are_datasets_and_fill_blocks_replaces_only_them(
        tmp_path, study_tool):
    make_report = study_tool('make_report')
    store = ResultStore(str(tmp_path / 'set_a'))
    for seed, (model, t) in enumerate([('res+', 0.5), ('delta', 0.7)]):
        store.append(dict(key=f'{model}{seed}', model=model, depth=32,
                          seed=seed, test=t))
    lines = make_report._headline_table(tmp_path, 32, [('set_a', 'A')])
    assert lines[0] == '| L = 32 | res+ | gcnii | delta-paper | delta |'
    assert lines[2] == '| A | 50.0 (1) | – | – | **70.0 (1)** |'
    doc = tmp_path / 'doc.md'
    doc.write_text('intro\n<!-- t:begin -->\nold\n<!-- t:end -->\n'
                   '<!-- u:begin -->\nkept\n<!-- u:end -->\n')
    make_report.fill_blocks(doc, {'t': 'new', 'absent': 'x'})
    assert doc.read_text() == ('intro\n<!-- t:begin -->\nnew\n<!-- t:end -->'
                               '\n<!-- u:begin -->\nkept\n<!-- u:end -->\n')


def test_documents_hold_every_generated_block(study_tool):
    """Each table make_report.py writes has its place in the documents."""
    make_report = study_tool('make_report')
    findings = (make_report.ROOT / 'docs' / 'findings.md').read_text()
    for name, *_ in make_report.SUMMARIES:
        assert f'<!-- {name}:begin -->' in findings, name
    for name in ('gap64', 'gap64_pooled'):
        assert f'<!-- {name}:begin -->' in findings, name
    readme = (make_report.ROOT / 'README.md').read_text()
    assert '<!-- headline:begin -->' in readme
    assert '<!-- headline64:begin -->' in readme


def test_delta_cells_hold_the_default_layer_only(tmp_path, study_tool):
    """A folder that also holds selection candidates of ``delta`` shows
    only the default layer's runs (spelled out or not) in its cells."""
    make_report = study_tool('make_report')
    store = ResultStore(str(tmp_path / 'set_a'))
    spelled = dict(v_source='message', k_source='anchor',
                   beta_source='anchor', beta_mode='learned01', norm='none',
                   beta_init=0.1, heads=8)
    runs = [({}, 0.7), (spelled, 0.9), (dict(spelled, theta=0.5), 0.1),
            (dict(heads=64), 0.2), (dict(layer_options=[{}]), 0.3)]
    for seed, (kw, t) in enumerate(runs):
        store.append(dict(key=f'd{seed}', model='delta', depth=32, seed=seed,
                          test=t, config=dict(model_kwargs=kw)))
    cells = make_report._cells(tmp_path, 'set_a', ('delta', ), (32, ))
    assert sorted(cells[('delta', 32)]) == [0.7, 0.9]


def test_delta_cells_follow_the_dataset_s_recommended_options(
        tmp_path, study_tool, monkeypatch):
    """Where recommended.toml gives delta options on a dataset, its cells
    hold the runs with those model and run options (what ``ddl-gnn train``
    runs); a run with the options under another dropout is a variant."""
    from ddl_gnn.experiment import recommended
    make_report = study_tool('make_report')
    monkeypatch.setattr(recommended, '_table', lambda: {
        'cora': {'delta': {'dropout': 0.6,
                           'model_kwargs': {'theta': 0.5}}}})
    store = ResultStore(str(tmp_path / 'set_a'))
    for seed, (ds, kw, p, t) in enumerate([
            ('cora', {}, 0.6, 0.1), ('cora', {'theta': 0.5}, 0.6, 0.8),
            ('cora', {'theta': 0.5}, 0.5, 0.7),
            ('citeseer', {}, 0.5, 0.6), ('citeseer', {'theta': 0.5}, 0.5,
                                         0.2)]):
        store.append(dict(key=f'd{seed}', model='delta', depth=8, seed=seed,
                          dataset=ds, test=t,
                          config=dict(model_kwargs=kw, dropout=p)))
    cells = make_report._cells(tmp_path, 'set_a', ('delta', ), (8, ))
    assert sorted(cells[('delta', 8)]) == [0.6, 0.8]


def test_delta_cells_compare_the_starting_gate_at_each_depth(
        tmp_path, study_tool, monkeypatch):
    """With ``beta_sum`` recommended, a deep run without it starts as the
    recommendation does and counts; a shallow one starts elsewhere and
    does not."""
    from ddl_gnn.experiment import recommended
    make_report = study_tool('make_report')
    monkeypatch.setattr(recommended, '_table', lambda: {
        'cora': {'delta': {'model_kwargs': {'beta_sum': 3.2}}}})
    store = ResultStore(str(tmp_path / 'set_a'))
    runs = [(2, {}, 0.1), (2, {'beta_sum': 3.2}, 0.2),
            (2, {'beta_init': 0.9}, 0.3), (64, {}, 0.4),
            (64, {'beta_sum': 3.2}, 0.5), (64, {'beta_init': 0.9}, 0.6)]
    for seed, (depth, kw, t) in enumerate(runs):
        store.append(dict(key=f'd{seed}', model='delta', depth=depth,
                          seed=seed, dataset='cora', test=t,
                          config=dict(model_kwargs=kw)))
    cells = make_report._cells(tmp_path, 'set_a', ('delta', ), (2, 64))
    assert sorted(cells[('delta', 2)]) == [0.2, 0.3]   # both start at 0.9
    assert sorted(cells[('delta', 64)]) == [0.4, 0.5]  # both start at 0.1


def test_gap_rows_filter_a_dataset_and_pool_folders(tmp_path, study_tool,
                                                   monkeypatch):
    """delta − gcnii with its standard error against numpy; a folder of
    several datasets gives one row per dataset named; a tuple of folders
    pools their runs."""
    from ddl_gnn.experiment import recommended
    make_report = study_tool('make_report')
    # the package default layer on every set (no recommended options)
    monkeypatch.setattr(recommended, '_table', lambda: {})
    vals = {('one', 'cora', 'delta'): [0.80, 0.82, 0.84],
            ('one', 'cora', 'gcnii'): [0.83, 0.85, 0.84],
            ('one', 'citeseer', 'delta'): [0.70, 0.71],
            ('one', 'citeseer', 'gcnii'): [0.60, 0.61],
            ('two', 'cora', 'delta'): [0.81, 0.79],
            ('two', 'cora', 'gcnii'): [0.86, 0.88]}
    for (folder, ds, model), values in vals.items():
        store = ResultStore(str(tmp_path / folder))
        for seed, v in enumerate(values):
            store.append(dict(key=f'{ds}{model}{seed}', model=model, depth=64,
                              seed=seed, dataset=ds, valid=v, test=v))

    def want(folders, ds):
        a = np.array([v for f in folders for v in vals[(f, ds, 'delta')]])
        b = np.array([v for f in folders for v in vals[(f, ds, 'gcnii')]])
        se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
        return (f'{100 * (a.mean() - b.mean()):+.2f} ± {100 * se:.2f}',
                f'{a.size} / {b.size}')

    lines = make_report._gap_table(
        tmp_path, 64, [('one', 'Cora', 'cora'), ('one', 'CiteSeer',
                                                 'citeseer'),
                       (('one', 'two'), 'both', 'cora')], 'delta', 'gcnii')
    rows = {line.split('|')[1].strip(): line for line in lines[2:]}
    for title, folders, ds in [('Cora', ['one'], 'cora'),
                               ('CiteSeer', ['one'], 'citeseer'),
                               ('both', ['one', 'two'], 'cora')]:
        diff, seeds = want(folders, ds)
        assert f'| {seeds} | {diff} (' in rows[title], rows[title]


def test_gap_rows_can_keep_one_kind_of_dropout_mask(tmp_path, study_tool,
                                                   monkeypatch):
    """With ``masks``, only the runs that drew those masks count (records
    without ``dropout_masks`` drew torch's)."""
    from ddl_gnn.experiment import recommended
    make_report = study_tool('make_report')
    monkeypatch.setattr(recommended, '_table', lambda: {})
    store = ResultStore(str(tmp_path / 'one'))
    runs = [('delta', 'hash', 0.80), ('delta', 'hash', 0.84),
            ('delta', 'torch', 0.10), ('gcnii', 'hash', 0.82),
            ('gcnii', 'hash', 0.86), ('gcnii', None, 0.99),
            ('gcnii', None, 0.97)]
    for seed, (model, masks, v) in enumerate(runs):
        rec = dict(key=f'k{seed}', model=model, depth=64, seed=seed,
                   dataset='cora', valid=v, test=v)
        if masks is not None:
            rec['dropout_masks'] = masks
        store.append(rec)
    rows = {}
    for kind in ('hash', 'torch', None):
        lines = make_report._gap_table(tmp_path, 64, [('one', 'Cora',
                                                       'cora')],
                                       'delta', 'gcnii', kind)
        rows[kind] = lines[2:]
    a, b = np.array([0.80, 0.84]), np.array([0.82, 0.86])
    se = np.sqrt(a.var(ddof=1) / 2 + b.var(ddof=1) / 2)
    assert f'| 2 / 2 | {100 * (a.mean() - b.mean()):+.2f} ± {100 * se:.2f}' \
        in rows['hash'][0]
    assert rows['torch'] == []          # one torch delta run: no row
    assert '| 3 / 4 |' in rows[None][0]


def test_summary_cells_pool_folders_and_keep_one_dataset(tmp_path,
                                                       study_tool,
                                                       monkeypatch):
    """A ``(folders, title, dataset)`` entry takes the runs of every
    folder named that are of that dataset; the ``delta`` row keeps only
    what ``ddl-gnn train`` runs there."""
    from ddl_gnn.experiment import recommended
    make_report = study_tool('make_report')
    monkeypatch.setattr(recommended, '_table', lambda: {})
    runs = [('base', 'gcnii', 'cora', {}, 0.82),
            ('base', 'gcnii', 'cora', {}, 0.86),
            ('base', 'delta', 'cora', {'theta': 0.5}, 0.10),
            ('own', 'delta', 'cora', {}, 0.85),
            ('own', 'delta', 'cora', {}, 0.87),
            ('own', 'delta', 'citeseer', {}, 0.30),
            ('own', 'gcnii', 'citeseer', {}, 0.40)]
    for seed, (folder, model, ds, kw, v) in enumerate(runs):
        ResultStore(str(tmp_path / folder)).append(dict(
            key=f'k{seed}', model=model, depth=64, seed=seed, dataset=ds,
            valid=v, test=v, config=dict(model_kwargs=kw)))
    lines = make_report._summary_table(
        tmp_path, [(('base', 'own'), 'Cora', 'cora')], (64, ),
        ('gcnii', 'delta'))
    rows = {line.split('|')[2].strip(): line for line in lines[2:]}
    for model, values in [('gcnii', [0.82, 0.86]), ('delta', [0.85, 0.87])]:
        v = np.array(values) * 100
        assert f'{v.mean():.1f} ± {v.std(ddof=1):.1f} (2)' in rows[model]
    head = make_report._headline_table(
        tmp_path, 64, [(('base', 'own'), 'CiteSeer', 'citeseer')],
        ('gcnii', 'delta'))
    assert head[2] == '| CiteSeer | **40.0 (1)** | 30.0 (1) |'
