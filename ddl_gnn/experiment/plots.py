"""The report's figures (matplotlib, written as PNG).

Figures are :class:`matplotlib.figure.Figure` objects drawn by the Agg
canvas directly: no ``pyplot``, no ``matplotlib.use``, so writing a report
leaves the caller's backend (a notebook's inline display) as it was."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Dict, List

from .grouping import group_records, mean_std


def _figure(**kwargs):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _finish(ax, log: bool, fontsize: int = 7) -> None:
    """Log scale and legend only where something was drawn (records made
    with ``--no-measure`` have no per-layer curves)."""
    if not ax.lines:
        ax.text(0.5, 0.5, 'no measurements', ha='center',
                transform=ax.transAxes)
        return
    if log:
        ax.set_yscale('log')
    ax.legend(fontsize=fontsize)


def _panels(records):
    """One subplot per dataset: ``(fig, groups, [(ax, dataset), ...])``."""
    groups = group_records(records)
    datasets = sorted({g[0] for g in groups})
    fig = _figure(figsize=(6 * len(datasets), 4))
    axes = fig.subplots(1, len(datasets), squeeze=False)
    return fig, groups, list(zip(axes[0], datasets))


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _per_layer_plot(records, out: Path, metric: str, log: bool) -> Path:
    fig, groups, panels = _panels(records)
    for ax, ds in panels:
        for m in sorted({g[1] for g in groups if g[0] == ds}):
            L = max(g[2] for g in groups if g[:2] == (ds, m))
            r = groups[(ds, m, L)][0]
            for key, style in (('per_layer_init', '--'), ('per_layer', '-')):
                pts = [(x['layer'], x.get(metric)) for x in r.get(key, [])
                       if x.get(metric) is not None]
                if pts:
                    xs, ys = zip(*pts)
                    label = f'{m} L={L}' + (' (init)' if style == '--'
                                            else '')
                    ax.plot(xs, ys, style, label=label)
        ax.set_title(f'{ds}: {metric} per layer (dashed: init)')
        ax.set_xlabel('layer')
        _finish(ax, log, fontsize=6)
    return _save(fig, out / f'{metric}_per_layer.png')


def _vs_depth_plot(records, out: Path, name: str, value, log: bool,
                   ylabel: str) -> Path:
    fig, groups, panels = _panels(records)
    for ax, ds in panels:
        for m in sorted({g[1] for g in groups if g[0] == ds}):
            depths = sorted(g[2] for g in groups if g[:2] == (ds, m))
            pts = [(d, *mean_std([value(r) for r in groups[(ds, m, d)]]))
                   for d in depths]
            pts = [p for p in pts if p[1] == p[1]]          # drop NaN means
            if pts:
                ax.errorbar([p[0] for p in pts], [p[1] for p in pts],
                            yerr=[p[2] for p in pts], marker='o', capsize=3,
                            label=m)
        _finish(ax, log)
        ax.set_xscale('log', base=2)
        ax.set_xlabel('depth (message-passing layers)')
        ax.set_ylabel(ylabel)
        ax.set_title(ds)
    return _save(fig, out / f'{name}.png')


def _beta_plot(records, out: Path) -> List[Path]:
    import numpy as np
    paths = []
    groups = group_records(records)
    for (ds, m, L), rs in sorted(groups.items()):
        if not rs[0].get('beta') or L != max(
                g[2] for g in groups if g[:2] == (ds, m)):
            continue
        hist = np.array([b['hist'] for b in rs[0]['beta']], dtype=float)
        hist /= hist.sum(axis=1, keepdims=True).clip(min=1)
        fig = _figure(figsize=(7, 3.5))
        ax = fig.subplots()
        im = ax.imshow(hist.T, origin='lower', aspect='auto',
                       extent=(0.5, len(hist) + 0.5, 0, 2), cmap='viridis')
        ax.set_xlabel('layer')
        ax.set_ylabel('β')
        ax.set_title(f'{ds} / {m} L={L}: β histogram per layer (trained, '
                     f'seed {rs[0]["seed"]})')
        fig.colorbar(im, ax=ax, label='fraction of nodes')
        # Variant labels carry spaces, brackets and '=': keep file names to
        # [A-Za-z0-9._-] (shells, URLs and markdown links all accept them).
        stem = re.sub(r'[^A-Za-z0-9._-]+', '_',
                      f'beta_hist_{ds}_{m}_L{L}'.replace('+', 'plus'))
        stem = re.sub(r'_+', '_', stem).strip('_')
        if len(stem) > 120:   # a variant spelled out in full: keep the
            # name under file-system limits, unique by a digest of it
            digest = hashlib.sha1(stem.encode()).hexdigest()[:10]
            stem = f'{stem[:108]}_{digest}'
        paths.append(_save(fig, out / f'{stem}.png'))
    return paths


def plot_all(records: List[Dict[str, Any]], out_dir: str) -> List[Path]:
    out = Path(out_dir)

    def last(metric):
        return lambda r: (r['per_layer'][-1].get(metric)
                          if r.get('per_layer') else None)

    paths = [
        _vs_depth_plot(records, out, 'accuracy_vs_depth',
                       lambda r: r['test'], False, 'test metric'),
        _vs_depth_plot(records, out, 'energy_vs_depth',
                       last('dirichlet_energy'), True,
                       'last-layer Dirichlet energy'),
        _vs_depth_plot(records, out, 'rank_vs_depth', last('numerical_rank'),
                       False, 'last-layer numerical rank'),
        _per_layer_plot(records, out, 'dirichlet_energy', True),
        _per_layer_plot(records, out, 'numerical_rank', False),
    ]
    return paths + _beta_plot(records, out)
