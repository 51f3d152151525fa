"""OGB ``Logger``-style summary of runs: per run, then all runs.

The lines of ``ogb``'s examples (``Logger.print_statistics``): runs numbered
from 1, scores ×100 (regression errors as they are), the highest training
and validation scores, and the training and test scores at the epoch of the
highest validation score; over all runs, mean ± unbiased std. Node tasks
score the training split every epoch; graph tasks at each new best
validation epoch (so ``Highest Train`` is the highest of those); link tasks
have no training score, and their train lines are left out. A run that
diverged (non-finite loss) is marked; it counts with the scores of its best
epoch before it, and one without a finite score is left out of the means.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from .records import has_score, is_diverged
from .grouping import mean_std, metric_scale

#: (label, value of a record) in OGB's order and alignment.
_LINES = (('Highest Train', lambda r: _highest_train(r)),
          ('Highest Valid', lambda r: r.get('valid')),
          ('  Final Train', lambda r: r.get('train')),
          ('   Final Test', lambda r: r.get('test')))


def _highest_train(r: Dict[str, Any]) -> Optional[float]:
    curve = [v for v in r.get('train_curve') or [] if v is not None]
    if r.get('train') is not None:
        curve.append(r['train'])
    return max(curve) if curve else None


def summary_lines(records: List[Dict[str, Any]]) -> List[str]:
    """The OGB lines of ``records`` (one per run, in order). A run that
    diverged after its best epoch counts with that epoch's scores
    (:func:`~ddl_gnn.experiment.records.has_score`), as the reports do."""
    out: List[str] = []
    columns: List[Tuple[str, List[float]]] = [(label, [])
                                              for label, _ in _LINES]
    for i, r in enumerate(records):
        diverged = (f"diverged: non-finite loss at epoch "
                    f"{r.get('diverged_epoch', '?')}, " if is_diverged(r)
                    else '')
        if not has_score(r):
            out.append(f"Run {i + 1:02d}: (seed {r['seed']}) {diverged}"
                       f"no score ({r.get('time_s', 0):.1f} s)")
            continue
        scale = metric_scale(r.get('metric', ''))
        out.append(f"Run {i + 1:02d}: (seed {r['seed']}, best epoch "
                   f"{r.get('best_epoch')}, {diverged}"
                   f"{r.get('time_s', 0):.1f} s)")
        for (label, value), (_, values) in zip(_LINES, columns):
            v = value(r)
            if v is not None:
                out.append(f'{label}: {scale * v:.2f}')
                values.append(scale * v)
    scored = sum(has_score(r) for r in records)
    if scored:
        out.append(f'All runs ({scored}):')
        for label, values in columns:
            if values:
                m, s = mean_std(values)
                out.append(f'{label}: {m:.2f} ± {s:.2f}')
    diverged, lost = (sum(is_diverged(r) for r in records),
                      len(records) - scored)
    if diverged:
        parts = [f'{diverged - lost} scored at their best epoch before it'
                 ] if diverged > lost else []
        if lost:
            parts.append(f'{lost} without a score, left out of the means')
        out.append(f'Diverged: {diverged} of {len(records)} runs ('
                   + '; '.join(parts) + ')')
    return out


def print_summary(records: List[Dict[str, Any]]) -> None:
    for line in summary_lines(records):
        print(line)
