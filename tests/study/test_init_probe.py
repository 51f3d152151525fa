"""study/init_probe.py: its cosines are ddl_gnn.metrics.input_cosine of the
recorded states, and its report has one section per feature protocol."""
import importlib.util
import math
from pathlib import Path

import torch

from ddl_gnn.data import load_dataset
from ddl_gnn.metrics import LayerProbe, input_cosine
from ddl_gnn.models import build_model

SCRIPT = Path(__file__).resolve().parents[2] / 'study' / 'init_probe.py'


def _script():
    spec = importlib.util.spec_from_file_location('init_probe', SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_probe_cosines_are_those_of_the_states():
    mod = _script()
    ds = load_dataset('csbm')
    r = mod.probe(ds, 'delta', {}, 4, seed=0)
    torch.manual_seed(0)
    model = build_model('delta', ds.num_features, 64, 4, ds.num_classes,
                        dropout=mod.TRAIN_DROPOUT).eval()
    with LayerProbe(model, track_grad=False) as p, torch.no_grad():
        model(ds.data.x, ds.data.edge_index)
        states = p.states
    top = states[max(states)]
    assert math.isclose(r['cos_last'], float(input_cosine(top, states[0])),
                        rel_tol=1e-9)
    assert math.isclose(r['cos_centred_last'],
                        float(input_cosine(top, states[0], centered=True)),
                        rel_tol=1e-9)
    assert r['grad_ratio'] > 0 and len(r['per_layer']) == 5


def test_report_has_a_section_per_feature_protocol(tmp_path):
    mod = _script()
    base = dict(family='delta', model='delta', model_kwargs={}, depth=4,
                seed=0, grad_ratio=0.5, cos_last=0.6, norm_last=1.0)
    records = [dict(base),                            # an older raw record
               dict(base, features='normalized', cos_centred_last=0.25)]
    mod.write_report(records, tmp_path)
    text = (tmp_path / 'report.md').read_text()
    raw, normed = text.split('## Raw')[1].split('## Row-normalised')
    assert '| delta | defaults | 0.5 | 0.6 | – |' in raw
    assert '| delta | defaults | 0.5 | 0.6 | 0.25 |' in normed
