"""Signal propagation at initialisation through 128- and 256-layer stacks on
Cora: per-layer Dirichlet energy, relative energy, numerical rank, norm and
gradient norm of a cross-entropy loss, for every family, plus the fitted
exponential decay rate of each curve (positive = decay per layer).

    python study/oversmoothing_init.py --depths 128 256 --seeds 0 1 2

Writes ``study/results/oversmoothing_init/{curves.json,report.md,*.png}``.
Trained curves come from the ``cora_deep`` sweep (records carry both).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ddl_gnn.data import load_dataset  # noqa: E402
from ddl_gnn.metrics import METRICS as METRIC_FNS  # noqa: E402
from ddl_gnn.metrics import LayerProbe, fit_decay_rate  # noqa: E402
from ddl_gnn.models import build_model  # noqa: E402

METRICS = ('dirichlet_energy', 'relative_dirichlet_energy', 'numerical_rank',
           'norm')
FAMILIES = {'plain': {}, 'res': {}, 'res+': {}, 'gcnii': {}, 'g2': {},
            'delta': {'beta_init': 1.0}, 'delta-write-only': {
                'beta_init': 1.0}}


def curves(ds, name, kwargs, depth, seed):
    """Per-layer metric lists; a layer whose state overflowed (non-finite)
    gets ``inf`` for every metric and is reported, not silently dropped."""
    torch.manual_seed(seed)
    model = build_model(name, ds.num_features, 64, depth, ds.num_classes,
                        **kwargs).eval()
    data, idx = ds.data, ds.split['train']
    out = {m: [] for m in METRICS + ('grad_norm', )}
    with LayerProbe(model) as probe:
        logits = model(data.x, data.edge_index)
        loss = F.cross_entropy(logits[idx], data.y[idx])
        grads = probe.gradient_norms(loss) if torch.isfinite(loss) else {}
        for layer, state in probe.states.items():
            finite = bool(torch.isfinite(state).all())
            for m in METRICS:
                out[m].append(float(METRIC_FNS[m](state, data.edge_index,
                                                  None, None))
                              if finite else float('inf'))
            out['grad_norm'].append(grads.get(layer, float('nan')))
    # The probe keeps the raw layer outputs (and so the autograd graph)
    # until cleared; without this, 256-layer graphs pile up to OOM.
    probe.clear()
    del model, logits, loss
    gc.collect()
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--depths', type=int, nargs='+', default=[128, 256])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--out', default=str(ROOT / 'study' / 'results' /
                                        'oversmoothing_init'))
    p.add_argument('--report-only', action='store_true',
                   help='rewrite report.md and plots from curves.json')
    args = p.parse_args()
    if args.report_only:
        out = Path(args.out)
        write_report(json.loads((out / 'curves.json').read_text()), out, args)
        return
    torch.set_flush_denormal(True)
    ds = load_dataset('cora')
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for depth in args.depths:
        for name, kw in FAMILIES.items():
            for seed in args.seeds:
                c = curves(ds, name, kw, depth, seed)
                rates = {m: fit_decay_rate(v) for m, v in c.items()}
                overflow = next((i for i, v in enumerate(
                    c['dirichlet_energy']) if v == float('inf')), None)
                rates['overflow_layer'] = overflow
                results.append(dict(model=name, depth=depth, seed=seed,
                                    curves=c, rates=rates))
                print(f'{name:17s} L={depth} seed={seed} energy rate '
                      f"{rates['dirichlet_energy']['rate']:.3g}", flush=True)
    tmp = out / 'curves.json.tmp'
    tmp.write_text(json.dumps(results))
    os.replace(tmp, out / 'curves.json')
    write_report(results, out, args)


def _cell(vals):
    vals = [v for v in vals if v == v]
    if not vals:
        return '–'
    if any(abs(v) == float('inf') for v in vals):
        return 'inf (overflow)'
    if len(vals) == 1:
        return f'{vals[0]:.3g}'
    return f'{statistics.fmean(vals):.3g} ± {statistics.stdev(vals):.2g}'


def write_report(results, out: Path, args):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    lines = ['# Signal propagation at initialisation (Cora, width 64)', '',
             f'`python study/oversmoothing_init.py --depths '
             f'{" ".join(map(str, args.depths))} --seeds '
             f'{" ".join(map(str, args.seeds))}`', '',
             'Untrained models (eval mode), one forward and one backward of '
             'the training cross-entropy. Rates are fitted slopes of '
             'log(value) per layer over all layers (positive = decay, '
             'negative = growth), mean ± std over seeds; last-layer values '
             'are seed means. Non-positive values (underflow) are dropped '
             'before the fit, so a plain stack that underflows reports a '
             'lower bound; a state that overflowed float32 (inf) is dropped '
             'too and the first such layer is listed.', '']
    for depth in args.depths:
        lines += [f'## L = {depth}', '',
                  '| model | energy rate | last energy | last rel. energy | '
                  'last num. rank | grad-norm rate (positive = smaller '
                  '‖∂L/∂X‖ at deeper layers) | first overflowed layer |',
                  '|---|---|---|---|---|---|---|']
        for name in FAMILIES:
            rs = [r for r in results if r['model'] == name and
                  r['depth'] == depth]
            lines.append('| ' + ' | '.join([
                name,
                _cell([r['rates']['dirichlet_energy']['rate'] for r in rs]),
                _cell([r['curves']['dirichlet_energy'][-1] for r in rs]),
                _cell([r['curves']['relative_dirichlet_energy'][-1]
                       for r in rs]),
                _cell([r['curves']['numerical_rank'][-1] for r in rs]),
                _cell([r['rates']['grad_norm']['rate'] for r in rs]),
                ', '.join(str(r['rates']['overflow_layer']) for r in rs)
                if any(r['rates']['overflow_layer'] is not None for r in rs)
                else 'none']) + ' |')
        lines.append('')
        fig, axes = plt.subplots(1, 3, figsize=(16, 4))
        for name in FAMILIES:
            r = next(r for r in results if r['model'] == name and
                     r['depth'] == depth)
            for ax, m in zip(axes, ('dirichlet_energy', 'numerical_rank',
                                    'grad_norm')):
                ax.plot(r['curves'][m], label=name)
                ax.set_title(f'{m}, L={depth}, init (seed {r["seed"]})')
                ax.set_xlabel('layer')
        axes[0].set_yscale('log')
        axes[2].set_yscale('log')
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        png = out / f'init_L{depth}.png'
        fig.savefig(png, dpi=110)
        plt.close(fig)
        lines += [f'![init L={depth}]({png.name})', '']
    (out / 'report.md').write_text('\n'.join(lines))


if __name__ == '__main__':
    main()
