"""OGB ``Logger``-style summary of runs (per run, then all runs)."""
from __future__ import annotations

from typing import Any, Dict, List

from .report import mean_std


def print_summary(records: List[Dict[str, Any]]) -> None:
    for r in records:
        print(f"Run {r['seed']:02d}: Highest Valid: {r['valid']:.4f}, "
              f"Final Test: {r['test']:.4f} (epoch {r['best_epoch']}, "
              f"{r['time_s']:.1f} s)")
    if records:
        for part in ('valid', 'test'):
            m, s = mean_std([r[part] for r in records])
            label = 'Highest Valid' if part == 'valid' else 'Final Test'
            print(f'All runs ({len(records)}): {label}: {m:.4f} ± {s:.4f}')
