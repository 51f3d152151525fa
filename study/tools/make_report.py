"""Regenerates the study's reports and every table the documents quote.

    python study/tools/make_report.py

For every ``study/results/<name>/results.jsonl[.gz]`` it writes that folder's
``report.md`` and plots (``ddl-gnn report``); then ``study/results/summary.md``
(the cross-dataset tables and every sweep's accuracy table), and the
generated blocks of ``README.md`` (the headline table) and
``docs/findings.md`` (one table per question), between
``<!-- NAME:begin -->`` / ``<!-- NAME:end -->`` markers: no document states
a number of a table that is not computed here from a committed record.
Only records whose run key matches the config file *as it stands* enter
the tables (``folders.current_records``).
"""
from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from folders import RESULTS, current_records, record_folders
from select_hparams import main as select

from ddl_gnn.experiment.records import ResultStore, has_score
from ddl_gnn.experiment.report import mean_std, tables, write_report

ROOT = RESULTS.parents[1]
# Sweeps of one model with another setting than the main sweep's: their
# selection.md ranks both settings per depth by validation.
POOLED = {'cora_delta_beta01': ('cora', 'delta-paper'),
          'citeseer_delta_beta01': ('citeseer', 'delta-paper'),
          'cora_deep_beta01': ('cora_deep', 'delta-paper')}
SHORTCUTS = ('res+', 'gcnii', 'delta-paper', 'delta')
FAMILIES = ('plain', 'res', 'res+', 'gcnii', 'g2', 'delta-paper',
            'delta-paper-write-only', 'delta', 'delta-write-only')
HETERO = [('hetero_texas', 'Texas'), ('hetero_cornell', 'Cornell'),
          ('hetero_wisconsin', 'Wisconsin'), ('hetero_actor', 'Actor'),
          ('hetero_chameleon', 'Chameleon (leaky)'),
          ('hetero_chameleon_filtered', 'chameleon-filtered'),
          ('hetero_squirrel', 'Squirrel (leaky)'),
          ('hetero_squirrel_filtered', 'squirrel-filtered'),
          ('hetero_minesweeper', 'Minesweeper'),
          ('hetero_tolokers', 'Tolokers')]
GRAPH = [('ogbg_molbace', 'ogbg-molbace'), ('ogbg_molbbbp', 'ogbg-molbbbp'),
         ('ogbg_molhiv', 'ogbg-molhiv'), ('peptides_func', 'Peptides-func')]
#: The depth study's folders per set: GCNII's runs (``depth_*``) and the
#: runs of the delta layer ``ddl-gnn train`` runs there (``gated_gcnii``,
#: both sets in one folder; the ``delta`` rows keep only that layer's
#: runs, :func:`_by_family`)
DEPTH_CORA = ('depth_cora', 'gated_gcnii')
DEPTH_CITESEER = ('depth_citeseer', 'gated_gcnii')
#: The cross-dataset tables: (block name, title, [(folder, label) or
#: (folders, label, dataset)], depths, models). One row per (dataset,
#: model); the best mean per dataset and depth in bold.
SUMMARIES = [
    ('selected', 'The default delta layer and GCNII in their selected '
     'settings (row-normalised features, accuracy)',
     [(DEPTH_CORA, 'Cora', 'cora'),
      (DEPTH_CITESEER, 'CiteSeer', 'citeseer')],
     (2, 4, 8, 16, 32, 64, 128, 256), ('gcnii', 'delta')),
    ('depth', 'Cora and CiteSeer (public split, accuracy), every family',
     [('cora', 'Cora'), ('citeseer', 'CiteSeer')], (2, 4, 8, 16, 32, 64),
     FAMILIES),
    ('deep', 'Cora to 256 layers (accuracy)',
     [('cora_deep', 'Cora'),
      ('cora_deep_beta01', 'Cora, delta-paper β₀ = 0.1')],
     (128, 256), FAMILIES),
    ('beta01', 'delta-paper with β₀ = 0.1 at every depth (accuracy)',
     [('cora_delta_beta01', 'Cora'), ('citeseer_delta_beta01', 'CiteSeer')],
     (2, 4, 8, 16, 32, 64), ('delta-paper',)),
    ('heterophilous', 'Heterophilous node classification (geom-gcn splits: '
     'seed s = split s; Minesweeper/Tolokers: Platonov et al. splits, '
     'ROC-AUC)', HETERO, (2, 8, 32), SHORTCUTS),
    ('graph', 'OGB / LRGB graph property prediction (OGB Evaluator: '
     'ROC-AUC, Peptides-func AP)', GRAPH, (4, 16, 32), SHORTCUTS),
    ('heldout', 'Node classification beyond Cora and CiteSeer (Shchur et al. '
     'splits, seed s = split s; what `ddl-gnn train` runs there for each '
     'family; Amazon Photo\'s validation chose the delta layer of these '
     'sets, no choice looked at the others; accuracy)',
     [('heldout_photo', 'Amazon Photo'),
      ('heldout_computers', 'Amazon Computers'),
      ('heldout_cs', 'Coauthor CS')],
     (16, 64), ('res+', 'gcnii', 'delta')),
]
#: README's headline: one depth, the datasets every shortcut ran there.
HEADLINE = (32, [('cora', 'Cora (acc)'), ('citeseer', 'CiteSeer (acc)'),
                 ('hetero_texas', 'Texas (acc)'),
                 ('hetero_wisconsin', 'Wisconsin (acc)'),
                 ('hetero_actor', 'Actor (acc)'),
                 ('hetero_chameleon_filtered', 'chameleon-filtered (acc)'),
                 ('hetero_minesweeper', 'Minesweeper (ROC-AUC)'),
                 ('hetero_tolokers', 'Tolokers (ROC-AUC)'),
                 ('ogbg_molbace', 'ogbg-molbace (ROC-AUC)'),
                 ('ogbg_molbbbp', 'ogbg-molbbbp (ROC-AUC)')])
#: and at 64 layers: the selected delta layer against GCNII.
HEADLINE_DEEP = (64, [(DEPTH_CORA, 'Cora (acc)', 'cora'),
                      (DEPTH_CITESEER, 'CiteSeer (acc)', 'citeseer')],
                 ('gcnii', 'delta'))
#: the difference of the two at that depth, with its uncertainty, on the
#: same random streams: the runs that drew the hashed dropout masks
#: (``ddl_gnn.ops.dropout``; GCNII's in ``dropout_masks``, where its
#: settings were not chosen), one row per dataset
GAP_DEEP = (64, [(DEPTH_CORA + ('dropout_masks', ), 'Cora (acc)', 'cora'),
                 (DEPTH_CITESEER + ('dropout_masks', ), 'CiteSeer (acc)',
                  'citeseer')], 'delta', 'gcnii', 'hash')
#: every run of the two, both kinds of masks together
GAP_DEEP_POOLED = GAP_DEEP[:4]
REGENERATE = '`python study/tools/make_report.py`'


def main() -> None:
    sections = []
    for folder in record_folders(RESULTS):
        if folder.name.startswith('tune_'):
            # A tuning grid is not a table of seeds: write its selection.
            _write_selection(folder)
            continue
        records = current_records(folder)
        left_out = len(ResultStore(str(folder)).load()) - len(records)
        if left_out:
            print(f'{folder.name}: {left_out} records of an older config '
                  f'left out')
        if not records:
            continue
        report = write_report(str(folder), records)
        if folder.name in POOLED:
            _write_selection(folder, POOLED[folder.name])
        # Plots of cells that left the tables (an older config) would
        # otherwise linger beside the report: drop PNGs it does not show.
        shown = report.read_text()
        for png in folder.glob('*.png'):
            if png.name not in shown:
                png.unlink()
        sections.append(f'### `{folder.name}` ({len(records)} runs, '
                        f'[full report]({folder.name}/report.md))\n\n'
                        + _accuracy_only(tables(records)))
    blocks = {name: '\n'.join(_summary_table(RESULTS, sets, depths, models))
              for name, _, sets, depths, models in SUMMARIES}
    headlines = {'headline': '\n'.join(_headline_table(RESULTS, *HEADLINE)),
                 'headline64': '\n'.join(_headline_table(RESULTS,
                                                         *HEADLINE_DEEP))}
    blocks['gap64'] = '\n'.join(_gap_table(RESULTS, *GAP_DEEP))
    blocks['gap64_pooled'] = '\n'.join(_gap_table(RESULTS,
                                                  *GAP_DEEP_POOLED))
    _write_summary(RESULTS, blocks, sections)
    fill_blocks(ROOT / 'README.md', headlines)
    fill_blocks(ROOT / 'docs' / 'findings.md', blocks)
    print(f'updated {RESULTS / "summary.md"} ({len(sections)} result sets), '
          f'README.md and docs/findings.md')


def fill_blocks(path: Path, blocks: Dict[str, str]) -> None:
    """Replaces the text between ``<!-- NAME:begin -->`` and
    ``<!-- NAME:end -->`` in ``path`` by ``blocks[NAME]`` for every marker
    pair found (the file is rewritten atomically)."""
    text = path.read_text()
    for name, body in blocks.items():
        begin, end = f'<!-- {name}:begin -->', f'<!-- {name}:end -->'
        text = re.sub(re.escape(begin) + '.*?' + re.escape(end),
                      lambda _: f'{begin}\n{body}\n{end}', text, flags=re.S)
    tmp = path.with_suffix('.md.tmp')
    tmp.write_text(text)
    os.replace(tmp, path)


Cells = Dict[Tuple[str, int], List[float]]


def _delta_defaults() -> Dict[str, object]:
    """The options of ``build_model('delta')`` as resolved for a GCN conv
    (``'none'`` and :obj:`None` are the same norm), with the conv keyword
    a recommendation sets (``bias``, :class:`~torch_geometric.nn.GCNConv`'s
    default)."""
    import inspect

    from torch_geometric.nn import GCNConv

    from ddl_gnn.models import DeltaGNN
    out = {k: p.default for k, p in
           inspect.signature(DeltaGNN.__init__).parameters.items()
           if p.default is not inspect.Parameter.empty}
    out.update(norm=DeltaGNN.default_norm, conv='gcn',
               bias=inspect.signature(GCNConv).parameters['bias'].default)
    return out


def _is_default_delta(record: dict, defaults: Dict[str, object],
                      wanted: Dict[str, tuple]) -> bool:
    """Whether a ``delta`` record ran what ``ddl-gnn train --model delta``
    runs on its dataset: the package ``defaults`` with that dataset's
    recommended model options, trained with its recommended run options
    where it has them (``ddl_gnn/configs/recommended.toml``; read once per
    dataset into ``wanted``). The candidates of a selection, run beside it
    in one folder, are other rows' business."""
    from ddl_gnn.experiment.recommended import recommended_settings
    dataset = record.get('dataset', '')
    if dataset not in wanted:
        rec = recommended_settings(dataset, 'delta')
        wanted[dataset] = ({**defaults, **rec.get('model_kwargs', {})},
                           {k: v for k, v in rec.items()
                            if k != 'model_kwargs'})
    want, run = wanted[dataset]
    config = record.get('config', {})
    kw = config.get('model_kwargs', {})
    if not set(kw) <= set(defaults):
        return False
    if any(config.get(k) != v for k, v in run.items()):
        return False
    got = {**defaults, **kw}
    got, want = (_start_gate(o, record.get('depth', 0)) for o in (got, want))
    norm = (lambda v: None if v == 'none' else v)
    return all(norm(got[k]) == norm(want[k]) for k in want)


def _start_gate(options: Dict[str, object], depth: int) -> Dict[str, object]:
    """``options`` with ``beta_init`` and ``beta_sum`` replaced by the
    starting gate they give a ``depth``-layer stack: runs that start
    alike are the same run (``beta_sum`` opens shallow stacks only)."""
    from ddl_gnn.models import depth_beta_init
    out = {k: v for k, v in options.items() if k != 'beta_sum'}
    out['beta_init'] = depth_beta_init(depth, options['beta_init'],
                                       options.get('beta_sum', 0.0))
    return out


def _records(results: Path, name, dataset: Sequence[str] = (),
             masks: Optional[str] = None) -> List[dict]:
    """The current records of ``results/name`` (``name`` may be a tuple
    of folders, taken together); with ``dataset`` (``()`` or one name),
    only that dataset's; with ``masks``, only the runs that drew that kind
    of dropout mask (a record's ``dropout_masks``; records without it drew
    torch's)."""
    names = name if isinstance(name, tuple) else (name, )
    return [r for n in names for r in current_records(results / n)
            if (not dataset or r['dataset'] == dataset[0])
            and (masks is None or r.get('dropout_masks', 'torch') == masks)]


def _cells(results: Path, name, models: Sequence[str],
           depths: Sequence[int], dataset: Sequence[str] = ()) -> Cells:
    """Test scores per (model, depth) of the current records of
    ``results/name`` (:func:`_records`; empty lists where nothing ran);
    ``delta`` cells hold what ``ddl-gnn train --model delta`` runs on the
    set (:func:`_by_family`). A run that diverged counts with its best
    epoch before it, as in every report (:func:`has_score`)."""
    records = _by_family(_records(results, name, dataset))
    return {(m, d): [r['test'] for r in records.get(m, [])
                     if r['depth'] == d and has_score(r)]
            for m in models for d in depths}


def _by_family(records: Sequence[dict]) -> Dict[str, List[dict]]:
    """Records per model name, where ``delta`` holds the runs of what
    ``ddl-gnn train --model delta`` runs on each record's dataset
    (:func:`_is_default_delta`): its own default-layer runs, and runs of
    any registry model that is the delta family with other options (on
    Actor, where it runs the paper layer, the ``delta-paper`` runs). The
    candidates of a selection, run beside it, are in no ``delta`` row."""
    defaults, wanted = _delta_defaults(), {}
    out: Dict[str, List[dict]] = {}
    for r in records:
        if r['model'] != 'delta':
            out.setdefault(r['model'], []).append(r)
        as_delta = _as_delta(r)
        if as_delta is not None and _is_default_delta(as_delta, defaults,
                                                      wanted):
            out.setdefault('delta', []).append(r)
    return out


def _as_delta(record: dict) -> Optional[dict]:
    """``record`` as a run of the ``delta`` family: the registry builds
    some models as that family with fixed options (``delta-paper`` is
    ``DeltaGNN(**PAPER_DELTA)``), whose runs are ``delta`` runs with those
    options under the record's own; :obj:`None` for other families."""
    from ddl_gnn.models import MODELS
    if record['model'] == 'delta':
        return record
    build, base = MODELS.get(record['model']), MODELS['delta']
    if getattr(build, 'func', None) is not getattr(base, 'func', base):
        return None
    config = record.get('config', {})
    kw = {**build.keywords, **config.get('model_kwargs', {})}
    return dict(record, model='delta',
                config=dict(config, model='delta', model_kwargs=kw))


def welch(a: Sequence[float], b: Sequence[float]
          ) -> Tuple[float, float, float]:
    """``mean(a) - mean(b)``, its standard error
    ``sqrt(var(a)/n_a + var(b)/n_b)`` (unbiased variances) and Welch's
    two-sided p-value for a zero difference (unequal variances)."""
    from scipy import stats
    if len(a) < 2 or len(b) < 2:
        raise ValueError('welch: each side needs at least two values')
    (ma, sa), (mb, sb) = mean_std(list(a)), mean_std(list(b))
    se = (sa ** 2 / len(a) + sb ** 2 / len(b)) ** 0.5
    p = stats.ttest_ind(a, b, equal_var=False).pvalue
    return ma - mb, se, float(p)


def _gap_table(results: Path, depth: int, sets, a: str, b: str,
               masks: Optional[str] = None) -> List[str]:
    """Rows datasets: ``a − b`` at ``depth`` on validation and test
    (× 100, ± its standard error, Welch's p), over each cell's seeds.
    ``sets`` holds ``(folder, title)``, or ``(folder, title, dataset)``
    for a folder that holds several datasets; ``folder`` may be a tuple of
    folders whose records are taken together. With ``masks``, only the
    runs that drew that kind of dropout mask (:func:`_records`)."""
    out = [f'| L = {depth}: {a} − {b} | seeds | validation | test |',
           '|---|---|---|---|']
    for name, title, *dataset in sets:
        family = _by_family(_records(results, name, dataset, masks))
        side = {m: [r for r in family.get(m, []) if r['depth'] == depth]
                for m in (a, b)}
        if min(len(v) for v in side.values()) < 2:
            continue
        cols = []
        for metric in ('valid', 'test'):
            d, se, p = welch([100 * r[metric] for r in side[a]],
                             [100 * r[metric] for r in side[b]])
            cols.append(f'{d:+.2f} ± {se:.2f} ('
                        + (f'p = {p:.3f})' if p >= 0.001 else 'p < 0.001)'))
        seeds = f'{len(side[a])} / {len(side[b])}'
        out.append(f'| {title} | {seeds} | ' + ' | '.join(cols) + ' |')
    return out


def _best(cells: Cells, models: Sequence[str], depth: int) -> str:
    """The model with the best mean at ``depth`` ('' when none ran)."""
    ran = [(mean_std(cells[(m, depth)])[0], m) for m in models
           if cells[(m, depth)]]
    return max(ran)[1] if ran else ''


def _cell(values: List[float], bold: bool) -> str:
    """``mean ± std (seeds)`` × 100, ``–`` when nothing ran."""
    if not values:
        return '–'
    mu, sd = mean_std(values)
    txt = (f'{100 * mu:.1f} ± {100 * sd:.1f} ({len(values)})'
           if len(values) > 1 else f'{100 * mu:.1f} (1)')
    return f'**{txt}**' if bold else txt


def _summary_table(results: Path, sets, depths, models) -> List[str]:
    """Rows (dataset, model), columns depths; the best mean per dataset
    and depth in bold."""
    out = ['| dataset | model | ' + ' | '.join(f'L={d}' for d in depths)
           + ' |', '|---|---|' + '---|' * len(depths)]
    for name, title, *dataset in sets:
        cells = _cells(results, name, models, depths, dataset)
        if not any(cells.values()):
            continue
        best = {d: _best(cells, models, d) for d in depths}
        for m in models:
            if any(cells[(m, d)] for d in depths):
                row = [_cell(cells[(m, d)], best[d] == m and len(models) > 1)
                       for d in depths]
                out.append(f'| {title} | {m} | ' + ' | '.join(row) + ' |')
    return out


def _headline_table(results: Path, depth: int, sets,
                    models: Sequence[str] = SHORTCUTS) -> List[str]:
    """Rows datasets, columns models, at one depth; the best in bold."""
    out = [f'| L = {depth} | ' + ' | '.join(models) + ' |',
           '|---|' + '---|' * len(models)]
    for name, title, *dataset in sets:
        cells = _cells(results, name, models, (depth,), dataset)
        best = _best(cells, models, depth)
        out.append(f'| {title} | ' + ' | '.join(
            _cell(cells[(m, depth)], m == best) for m in models) + ' |')
    return out


def _write_summary(results: Path, blocks: Dict[str, str],
                   sections: List[str]) -> None:
    """``results/summary.md``: the cross-dataset tables, then every
    sweep's accuracy table."""
    lines = ['# Study summary', '',
             f'Generated by {REGENERATE} from the records of each folder '
             '(records of an older config left out). Test metric × 100 at '
             'the epoch of best validation, mean ± std (seeds); bold: the '
             'best mean per dataset and depth (ties and overlapping stds are '
             'common: read the spreads).', '']
    for name, title, *_ in SUMMARIES:
        lines += [f'## {title}', '', blocks[name], '']
    lines += ['## Every sweep', '', *sections]
    (results / 'summary.md').write_text('\n'.join(lines))


def _write_selection(folder: Path, pooled: tuple = ()) -> None:
    """``selection.md``: the configurations of ``folder`` (with
    ``pooled = (other folder name, model)``: and that model's runs in the
    other folder) ranked by validation per (model, depth)."""
    folders = [folder] if not pooled else [folder.parent / pooled[0], folder]
    model = pooled[1] if pooled else None
    cmd = ' '.join(str(f.relative_to(ROOT)) for f in folders) + (
        f' --model {model}' if model else '')
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        select(*map(str, folders), model=model)
    text = ('# Hyper-parameter selection (by validation)\n\n'
            f'`python study/tools/select_hparams.py {cmd}`'
            '\n\n```\n' + buf.getvalue() + '```\n')
    (folder / 'selection.md').write_text(text)


def _accuracy_only(md: str) -> str:
    """Keeps the test-metric tables, drops the per-layer ones."""
    keep, on = [], False
    for line in md.splitlines():
        if line.startswith('### '):
            on = 'test' in line
        if on:
            keep.append(line)
    return '\n'.join(keep) + '\n'


if __name__ == '__main__':
    main()
