r"""Signal at initialisation through deep stacks: does the input survive,
and does the gradient reach it?

For each family and depth, one untrained model (eval mode) on Cora, one
forward and one backward of the training cross-entropy, and per layer
``l`` (layer 0 = the encoder output :math:`X_0`):

- ``norm``: :math:`\lVert X_l\rVert_F / \sqrt{N}` (state scale);
- ``cos_input``: :math:`\langle X_l, X_0\rangle_F /
  (\lVert X_l\rVert_F \lVert X_0\rVert_F)` (how much of the input the state
  still holds);
- ``cos_centred``: the same after removing each state's mean over nodes
  (:func:`ddl_gnn.metrics.input_cosine` with ``centered=True``): only the
  node-specific part of the input counts. With row-normalised features the
  encoder's bias is most of :math:`X_0` (the features' entries are about
  1/18), and any stack that keeps that shared row scores near 1 on
  ``cos_input``;
- ``grad_norm``: :math:`\lVert \partial\mathcal{L}/\partial X_l\rVert_F`.

and, in train mode with the training dropout (0.6, one forward without
gradient), ``train_norm_ratio``: the train-mode / eval-mode ratio of
:math:`\lVert X_L\rVert_F`, divided by the same ratio of the encoder
output :math:`\lVert X_0\rVert_F` (input dropout already changes that):
how much dropout changes the state's scale on its way through the stack
(1 = not at all).

Each record also carries ``grad_ratio`` = grad_norm at layer 0 / grad_norm
at the top layer (how much the state gradient grows on its way down; 1 =
flat), ``cos_last`` = cos_input and ``cos_centred_last`` = cos_centred
at the top layer, and ``features``: the feature protocol, ``raw`` or
``normalized`` (row-normalised, as ``ddl-gnn train`` runs GCNII and the
recommended delta layer on Cora).

    python study/init_probe.py --depths 16 64 256 --seeds 0 1 2 \
        --features raw normalized

Writes ``study/results/init_probe/{records.jsonl.gz,report.md}``; a rerun
skips (family, features, depth, seed) cells already recorded.
"""
from __future__ import annotations

import argparse
import gc
import gzip
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
from ddl_gnn.metrics import LayerProbe, input_cosine  # noqa: E402
from ddl_gnn.models import build_model  # noqa: E402

#: label -> (registry name, model kwargs). ``delta`` is the package default;
#: the others name every option in which they differ from it.
FAMILIES = {
    'res+': ('res+', {}),
    'gcnii': ('gcnii', dict(alpha=0.1, theta=0.5)),
    'delta': ('delta', {}),
    'delta (theta=0.5)': ('delta', dict(theta=0.5)),
    'delta (theta=0.5, dropout outside the layers)': ('delta', dict(
        theta=0.5, layer_dropout=0.0, state_dropout=True)),
    'delta (theta=0.5, dropout outside the layers, eps=0.01)': ('delta', dict(
        theta=0.5, layer_dropout=0.0, state_dropout=True, eps=0.01)),
    # the same by head count; one head per channel is
    # ddl_gnn/configs/recommended.toml's layer on Cora and CiteSeer
    **{f'delta (theta=0.5, dropout outside the layers, eps=0.01, '
       f'{heads} heads)': (
        'delta', dict(theta=0.5, layer_dropout=0.0, state_dropout=True,
                      eps=0.01, heads=heads)) for heads in (16, 32, 64)},
    # one head per channel with its gate fixed at the value the learned
    # gates settle at on Cora (0.24 in every layer, node and channel)
    'delta (theta=0.5, dropout outside the layers, eps=0.01, 64 heads, '
    'fixed gate 0.25)': ('delta', dict(
        theta=0.5, layer_dropout=0.0, state_dropout=True, eps=0.01, heads=64,
        beta_mode='fixed', beta_init=0.25)),
    # the same with a stronger anchor (GCNII's alpha; 0.1 by default)
    'delta (theta=0.5, dropout outside the layers, eps=0.01, 64 heads, '
    'alpha=0.3)': ('delta', dict(
        theta=0.5, layer_dropout=0.0, state_dropout=True, eps=0.01, heads=64,
        alpha=0.3)),
    # gates opened at initialisation for shallow stacks (beta_sum: every
    # layer starts at max(0.1, min(0.9, 3.2 / L)); 0.1 from 32 layers on)
    'delta (beta_sum=3.2)': ('delta', dict(beta_sum=3.2)),
    'delta (theta=0.5, dropout outside the layers, eps=0.01, 64 heads, '
    'beta_sum=3.2)': ('delta', dict(
        theta=0.5, layer_dropout=0.0, state_dropout=True, eps=0.01, heads=64,
        beta_sum=3.2)),
    # the same with each channel's gate reading its own channel of the
    # state and the input, not decayed (its weights start at zero, as the
    # dense gate's do)
    'delta (theta=0.5, dropout outside the layers, eps=0.01, 64 heads, '
    'block gate, gates not decayed)': ('delta', dict(
        theta=0.5, layer_dropout=0.0, state_dropout=True, eps=0.01, heads=64,
        block_gate=True, gate_decay=0.0)),
    # one head per channel along its channel's axis, a ReLU'd anchored
    # message and a gate started near 1: GCNII's step (at a gate of 1)
    # with a learned per-node, per-channel keep; dropout inside the layers
    # as GCNII has it, GCNII's alpha of its tuning-budget search
    'delta (theta=0.5, eps=0.01, 64 heads, channel axes, ReLU message, '
    'beta0=0.9, alpha=0.15)': ('delta', dict(
        theta=0.5, eps=0.01, heads=64, channel_axes=True, message_act='relu',
        beta_init=0.9, alpha=0.15)),
    # the same in GCNII's order: the identity-mapped weight after the
    # anchored mix, no conv bias (at a gate of 1: GCNII's layer)
    'delta in GCNII\'s order (theta=0.5, eps=0.01, 64 heads, channel axes, '
    'ReLU message, map_anchor, no bias, beta0=0.9, alpha=0.15)': (
        'delta', dict(theta=0.5, eps=0.01, heads=64, channel_axes=True,
                      message_act='relu', map_anchor=True, bias=False,
                      beta_init=0.9, alpha=0.15)),
    'delta-paper (beta0=0.1)': ('delta-paper', dict(beta_init=0.1)),
    'delta-paper (beta0=1)': ('delta-paper', {}),
    'delta-diffuse-64': ('delta', dict(
        v_source='diffuse', k_source='anchor', beta_source='anchor',
        heads=64, beta_init=1.0, beta_mode='learned', norm='layer_norm')),
    'delta-diffuse-8': ('delta', dict(
        v_source='diffuse', k_source='anchor', beta_source='anchor',
        heads=8, beta_init=1.0, beta_mode='learned', norm='layer_norm')),
    'delta-message-8': ('delta', dict(
        v_source='message', k_source='anchor', beta_source='anchor',
        heads=8, beta_init=0.5, beta_mode='learned', norm='none')),
    'delta-message-8 (beta0=0.1)': ('delta', dict(
        v_source='message', k_source='anchor', beta_source='anchor',
        heads=8, beta_init=0.1, beta_mode='learned', norm='none')),
    'delta-message-8 (beta0=0.1, beta in (0,1))': ('delta', dict(
        v_source='message', k_source='anchor', beta_source='anchor',
        heads=8, beta_init=0.1, beta_mode='learned01', norm='none')),
    'delta-interleaved': ('delta', dict(
        k_source='anchor', beta_source='anchor', norm='none', beta_init=0.1,
        beta_mode='learned',
        layer_options=[dict(v_source='diffuse', heads=64, beta_init=1.0),
                       dict(v_source='message', heads=8)])),
    'delta-anchor-value': ('delta', dict(
        v_source='anchor', k_source='anchor', beta_source='anchor',
        heads=8, beta_init=0.5, beta_mode='learned', norm='none')),
}


#: The dropout the study trains with (study/configs/depth_*.toml).
TRAIN_DROPOUT = 0.6
#: Feature protocols (``--features``) and their report sections.
FEATURES = {'raw': 'raw bag-of-words features',
            'normalized': 'row-normalised features (as `ddl-gnn train` '
                          'runs GCNII and the recommended delta layer on '
                          'Cora)'}


def probe(ds, name, kwargs, depth, seed):
    torch.manual_seed(seed)
    # Dropout does not change the eval-mode function; it is set for the
    # train-mode forward at the end.
    model = build_model(name, ds.num_features, 64, depth, ds.num_classes,
                        dropout=TRAIN_DROPOUT, **kwargs).eval()
    data, idx = ds.data, ds.split['train']
    with LayerProbe(model) as p:
        logits = model(data.x, data.edge_index)
        loss = F.cross_entropy(logits[idx], data.y[idx])
        grads = p.gradient_norms(loss) if torch.isfinite(loss) else {}
        states = p.states
        rows = []
        for layer, state in states.items():
            node_cos = F.cosine_similarity(state.double(),
                                           states[0].double(), dim=-1)
            rows.append(dict(
                layer=layer,
                norm=float(state.double().norm() / state.size(0) ** 0.5),
                cos_input=float(input_cosine(state, states[0])),
                cos_centred=float(input_cosine(state, states[0],
                                               centered=True)),
                node_cos_input=float(node_cos.mean()),
                grad_norm=grads.get(layer, float('nan'))))
        p.clear()
    top = rows[-1]
    ratio = rows[0]['grad_norm'] / top['grad_norm'] if top['grad_norm'] \
        else float('inf')
    # The same probe in train mode: dropout's effect on the state's scale
    # at the top, over its effect on the encoder output.
    model.train()
    with LayerProbe(model, track_grad=False) as p, torch.no_grad():
        model(data.x, data.edge_index)
        train = p.states
    model.eval()
    last = max(train)
    train_ratio = float((train[last].norm() / states[last].norm()) /
                        (train[0].norm() / states[0].norm()))
    del model, logits, loss
    gc.collect()
    return dict(grad_ratio=ratio, cos_last=top['cos_input'],
                cos_centred_last=top['cos_centred'],
                norm_last=top['norm'], train_norm_ratio=train_ratio,
                per_layer=rows)


def _finite(v):
    return v if v == v and abs(v) != float('inf') else None


def _load(path: Path) -> list:
    """The records so far (none before the first run)."""
    if not path.exists():
        return []
    text = gzip.decompress(path.read_bytes()).decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--depths', type=int, nargs='+', default=[16, 64, 256])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--families', nargs='+', default=list(FAMILIES),
                   choices=list(FAMILIES))
    p.add_argument('--features', nargs='+', default=['raw'],
                   choices=list(FEATURES),
                   help='feature protocols: raw bag-of-words, or '
                        'row-normalised as ddl-gnn train runs Cora')
    p.add_argument('--refresh', action='store_true',
                   help='measure the chosen families again under the chosen '
                        'feature protocols (records written before a column '
                        'existed lack it)')
    p.add_argument('--out', default=str(ROOT / 'study' / 'results' /
                                        'init_probe'))
    args = p.parse_args()
    torch.set_flush_denormal(True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / 'records.jsonl.gz'
    records = _load(path)
    for r in records:    # records from before the option are raw
        r.setdefault('features', 'raw')
    if args.refresh:   # measure the chosen families again
        records = [r for r in records if r['family'] not in args.families
                   or r['features'] not in args.features]
    done = {(r['family'], r['features'], r['depth'], r['seed'])
            for r in records}
    for features in args.features:
        ds = load_dataset('cora',
                          normalize_features=features == 'normalized')
        for depth in args.depths:
            for fam in args.families:
                for seed in args.seeds:
                    if (fam, features, depth, seed) in done:
                        continue
                    name, kw = FAMILIES[fam]
                    r = dict(family=fam, model=name, model_kwargs=kw,
                             features=features, depth=depth, seed=seed,
                             **probe(ds, name, kw, depth, seed))
                    records.append(r)
                    print(f"{fam:26s} {features:10s} L={depth:<4d} "
                          f"seed={seed} grad ratio {r['grad_ratio']:.3g}  "
                          f"cos(X_L, X_0) {r['cos_last']:.3f} (centred "
                          f"{r['cos_centred_last']:.3f})", flush=True)
                    _save(records, path)
    write_report(records, out)


def _save(records, path: Path):
    """Writes the records atomically."""
    text = ''.join(
        json.dumps(x, allow_nan=False, default=_finite) + '\n'
        for x in [{k: (_finite(v) if isinstance(v, float) else v)
                   for k, v in rec.items()} for rec in records])
    tmp = path.with_suffix('.tmp')
    # gzip without a timestamp: the same records, the same bytes
    tmp.write_bytes(gzip.compress(text.encode(), mtime=0))
    os.replace(tmp, path)


def _cell(vals):
    if not vals:              # not measured at this depth
        return '–'
    vals = [v for v in vals if v is not None]
    if not vals:              # measured, every value non-finite
        return 'non-finite'
    if len(vals) == 1:
        return f'{vals[0]:.3g}'
    return f'{statistics.fmean(vals):.3g} ± {statistics.stdev(vals):.2g}'


def _column(rs, key):
    """A cell of ``key`` over records; '–' where no record has it."""
    if not any(key in r for r in rs):
        return '–'
    return _cell([r[key] for r in rs if key in r])


def write_report(records, out: Path):
    depths = sorted({r['depth'] for r in records})
    lines = ['# Signal at initialisation (Cora, width 64)', '',
             '`python study/init_probe.py --depths '
             + ' '.join(map(str, depths)) + ' --features raw normalized`',
             '',
             'Untrained models in eval mode, one forward and one backward of '
             'the training cross-entropy; mean ± std over seeds. '
             '**grad ratio** = ‖∂L/∂X_0‖ / ‖∂L/∂X_L‖ (growth of the state '
             'gradient from the top layer to the encoder output; 1 = flat). '
             '**cos** = Frobenius cosine of the top state X_L with the '
             'encoder output X_0; **centred cos** = the same after removing '
             "each state's mean over nodes (the part every node shares, "
             "which with row-normalised features is mostly the encoder's "
             'bias). **norm** = ‖X_L‖_F/√N. **train/eval norm** '
             '= ‖X_L‖_F of a train-mode forward (dropout 0.6) / eval mode, '
             'over the same ratio of X_0 (1 = dropout does not change the '
             'scale on the way through the stack).']
    for features, title in FEATURES.items():
        recs = [r for r in records if r.get('features', 'raw') == features]
        if not recs:
            continue
        lines += ['', f'## {title[0].upper() + title[1:]}', '',
                  '| family | kwargs | ' + ' | '.join(
                      f'L={d} grad ratio | L={d} cos | L={d} centred cos | '
                      f'L={d} norm | L={d} train/eval norm'
                      for d in depths) + ' |',
                  '|---|---|' + '---|' * (5 * len(depths))]
        for fam in [f for f in FAMILIES
                    if any(r['family'] == f for r in recs)]:
            cells = []
            for d in depths:
                rs = [r for r in recs if r['family'] == fam and
                      r['depth'] == d]
                cells += [_cell([r['grad_ratio'] for r in rs]),
                          _cell([r['cos_last'] for r in rs]),
                          _column(rs, 'cos_centred_last'),
                          _cell([r['norm_last'] for r in rs]),
                          _column(rs, 'train_norm_ratio')]
            kw = next(r['model_kwargs'] for r in recs if r['family'] == fam)
            kw_txt = ', '.join(f'{k}={v}' for k, v in kw.items()) or \
                'defaults'
            lines.append(f'| {fam} | {kw_txt} | ' + ' | '.join(cells) + ' |')
    (out / 'report.md').write_text('\n'.join(lines) + '\n')


if __name__ == '__main__':
    main()
