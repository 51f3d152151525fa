"""``ddl-gnn report DIR``: tables (mean ± std over seeds) and plots from
``DIR/results.jsonl``, written to ``DIR/report.md`` and ``DIR/*.png``."""
from __future__ import annotations

import math
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..metrics import fit_decay_rate
from .grouping import group_records, mean_std, metric_scale
from .plots import plot_all
from .records import ResultStore, has_score, is_diverged


def md(text: Any) -> str:
    """``text`` as literal markdown inline text (a table cell, a heading):
    markup characters are backslash-escaped, HTML brackets become entities
    and line breaks spaces, so a quoted name can neither end a table cell
    nor add markup, links or HTML."""
    text = ' '.join(str(text).splitlines())
    text = text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
    return re.sub(r'([\\`*_\[\]|~])', r'\\\1', text)


def code_block(text: str) -> List[str]:
    """Lines of a fenced code block holding ``text`` verbatim: the fence is
    longer than any run of backticks inside, so the text cannot close it."""
    runs = [len(m) for m in re.findall(r'`+', text)]
    fence = '`' * max(3, max(runs, default=0) + 1)
    return [fence, text, fence]


def _fmt(values: Sequence[float], scale: float = 100.0) -> str:
    m, s = mean_std(values)
    if math.isnan(m):
        return '–'
    if len(values) == 1:
        return f'{m * scale:.1f} (1)'
    return f'{m * scale:.1f} ± {s * scale:.1f} ({len(values)})'


def _last(r: Dict[str, Any], key: str, metric: str):
    layers = r.get(key) or []
    return layers[-1].get(metric) if layers else None


def _test_cell(rs: List[Dict[str, Any]], scale: float) -> str:
    """Mean ± std of the runs' test scores (:func:`has_score`: a run that
    diverged after its best epoch counts with that epoch's score, marked
    ``[n diverged]``), and how many runs have no score (counted apart)."""
    scored = [r for r in rs if has_score(r)]
    late = sum(is_diverged(r) for r in scored)
    lost = len(rs) - len(scored)
    if not scored:
        return f'diverged ({lost})'
    return (_fmt([r['test'] for r in scored], scale)
            + (f' [{late} diverged]' if late else '')
            + (f' + {lost} diverged' if lost else ''))


def tables(records: List[Dict[str, Any]]) -> str:
    groups = group_records(records)
    out = []
    for ds in sorted({g[0] for g in groups}):
        keys = [g for g in groups if g[0] == ds]
        depths = sorted({g[2] for g in keys})
        models = sorted({g[1] for g in keys})
        metric = groups[keys[0]][0].get('metric', 'metric')
        scale = metric_scale(metric)
        out.append(f'### {md(ds)} — test {md(metric)} (mean ± std (seeds); '
                   f'[n diverged]: runs scored before they diverged)\n')
        out.append('| model | ' + ' | '.join(f'L={d}' for d in depths) + ' |')
        out.append('|---' * (len(depths) + 1) + '|')
        for m in models:
            row = [_test_cell(groups[(ds, m, d)], scale)
                   if (ds, m, d) in groups else '–' for d in depths]
            out.append(f'| {md(m)} | ' + ' | '.join(row) + ' |')
        out.append('')
        out.append(f'### {md(ds)} — last layer after training: Dirichlet energy'
                   f' / relative energy / numerical rank (seed means)\n')
        out.append('| model | ' + ' | '.join(f'L={d}' for d in depths) + ' |')
        out.append('|---' * (len(depths) + 1) + '|')
        for m in models:
            row = []
            for d in depths:
                rs = groups.get((ds, m, d), [])
                vals = [mean_std([_last(r, 'per_layer', k) for r in rs])[0]
                        for k in ('dirichlet_energy',
                                  'relative_dirichlet_energy',
                                  'numerical_rank')]
                row.append('–' if not rs else ' / '.join(
                    f'{v:.2g}' if math.isfinite(v) else '–' for v in vals))
            out.append(f'| {md(m)} | ' + ' | '.join(row) + ' |')
        out.append('')
    return '\n'.join(out)


STALL_EPOCH = 5


def stall_table(records: List[Dict[str, Any]]) -> str:
    """Cells with *stalled* runs: the best validation score came at epoch
    ``<= STALL_EPOCH``, i.e. training never improved on (near-)initial
    weights before early stopping. The tables above include them; here
    the mean of the other runs is shown beside the count."""
    groups = group_records(records)
    lines = ['| dataset | model | L | stalled / runs | test of the others |',
             '|---|---|---|---|---|']
    for (ds, m, L), rs in sorted(groups.items()):
        stalled = [r for r in rs if r.get('best_epoch') is not None
                   and r['best_epoch'] <= STALL_EPOCH and not is_diverged(r)]
        if not stalled:
            continue
        scale = metric_scale(rs[0].get('metric', ''))
        rest = [r['test'] for r in rs if r not in stalled and has_score(r)]
        lines.append(f'| {md(ds)} | {md(m)} | {L} | {len(stalled)} / '
                     f'{len(rs)} | '
                     f'{_fmt(rest, scale) if rest else "–"} |')
    if len(lines) == 2:
        return 'No stalled runs.'
    return '\n'.join(lines)


def decay_table(records: List[Dict[str, Any]]) -> str:
    """Fitted exponential rate of the per-layer Dirichlet energy (slope of
    log energy per layer, positive = decay) for the deepest run of each
    model (its first record)."""
    groups = group_records(records)
    lines = ['| dataset | model | L | decay rate at init (R²) | decay rate trained (R²) |',
             '|---|---|---|---|---|']
    for ds in sorted({g[0] for g in groups}):
        for m in sorted({g[1] for g in groups if g[0] == ds}):
            L = max(g[2] for g in groups if g[:2] == (ds, m))
            r = groups[(ds, m, L)][0]
            cells = []
            for key in ('per_layer_init', 'per_layer'):
                vals = [x.get('dirichlet_energy') for x in r.get(key, [])]
                if len(vals) < 3 or any(v is None for v in vals):
                    cells.append('–')
                    continue
                fit = fit_decay_rate(vals)
                cells.append(f"{fit['rate']:.3g} ({fit['r2']:.2f})")
            lines.append(f'| {md(ds)} | {md(m)} | {L} | '
                         + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def diverged_table(records: List[Dict[str, Any]]) -> str:
    """One row per diverged run (non-finite training loss, or a missing /
    non-finite score in a record written before the flag)."""
    rows = [r for r in records if is_diverged(r)]
    if not rows:
        return 'No diverged runs.'
    lines = ['| dataset | model | L | seed | diverged at epoch | '
             'best valid before |', '|---|---|---|---|---|---|']
    for r in sorted(rows, key=lambda r: (str(r.get('dataset')),
                                         str(r.get('model')),
                                         r.get('depth') or 0,
                                         r.get('seed') or 0)):
        valid = r.get('valid')
        lines.append(
            f"| {md(r.get('dataset'))} | {md(r.get('model'))} | "
            f"{md(r.get('depth'))} | {md(r.get('seed'))} | "
            f"{md(r.get('diverged_epoch', '?'))} | "
            f"{f'{valid:.4g}' if isinstance(valid, float) and math.isfinite(valid) else '–'} |")
    return '\n'.join(lines)


def write_report(out_dir: str,
                 records: Optional[List[Dict[str, Any]]] = None) -> Path:
    """Writes ``report.md`` and the PNG plots of ``records`` (default: all
    of ``out_dir/results.jsonl``); returns the report path."""
    if not Path(out_dir).is_dir():  # never create the folder of a typo
        raise FileNotFoundError(f'report: no folder {out_dir}')
    if records is None:
        records = ResultStore(out_dir).load()
    if not records:
        raise FileNotFoundError(f'no records in {out_dir}/results.jsonl; run '
                                f'`ddl-gnn sweep --out {out_dir}` first')
    pngs = plot_all(records, out_dir)
    devices = Counter(str(r.get('device', '?')).split(':')[0]
                      for r in records)
    where = ', '.join(f'{n} on {d}' for d, n in sorted(devices.items()))
    text = ['# ddl_gnn report', '',
            f'{len(records)} runs from {md(Path(out_dir).name)}/results.jsonl '

            f'({where}). Test metric '
            'at the best-validation epoch; `L` = message-passing layers; '
            'mean ± unbiased std over seeds (count in brackets).', '',
            tables(records), '## Stalled runs', '',
            f'A run is *stalled* when its best validation epoch is '
            f'<= {STALL_EPOCH}: it never improved before early stopping.', '',
            stall_table(records), '',
            '## Diverged runs', '',
            'A run *diverged* when its training loss became NaN or Inf; '
            'training stopped there and kept the state of its best '
            'validation epoch before, as early stopping does. The tables '
            'count it with that epoch\'s scores, marked [n diverged]; a '
            'run with no finite score is counted apart (+ n diverged).',
            '', diverged_table(records), '',
            '## Energy decay rate per layer', '',
            decay_table(records), '', '## Plots', '']
    text += [f'![{md(p.stem)}](<{p.name}>)' for p in pngs]
    text += ['', '## Commands', '',
             'Each record stores the command that reproduces it, e.g.:', '',
             *code_block(str(records[0].get('command', ''))), '']
    path = Path(out_dir) / 'report.md'
    tmp = path.with_suffix('.md.tmp')
    tmp.write_text('\n'.join(text))
    os.replace(tmp, path)
    return path
