"""OGB ``Logger``-style summary of runs (per run, then all runs)."""
from __future__ import annotations

from typing import Any, Dict, List

from .records import is_diverged
from .report import mean_std


def print_summary(records: List[Dict[str, Any]]) -> None:
    for r in records:
        if is_diverged(r):
            print(f"Run {r['seed']:02d}: diverged (non-finite loss at epoch "
                  f"{r.get('diverged_epoch', '?')}, {r['time_s']:.1f} s)")
            continue
        print(f"Run {r['seed']:02d}: Highest Valid: {r['valid']:.4f}, "
              f"Final Test: {r['test']:.4f} (epoch {r['best_epoch']}, "
              f"{r['time_s']:.1f} s)")
    finite = [r for r in records if not is_diverged(r)]
    if finite:
        for part in ('valid', 'test'):
            m, s = mean_std([r[part] for r in finite])
            label = 'Highest Valid' if part == 'valid' else 'Final Test'
            print(f'All runs ({len(finite)}): {label}: {m:.4f} ± {s:.4f}')
    if len(finite) < len(records):
        print(f'Diverged: {len(records) - len(finite)} of {len(records)} '
              f'runs (left out of the means)')
