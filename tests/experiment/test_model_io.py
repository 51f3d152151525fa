"""Saved models: ``save=True`` keeps the trained weights with their
configuration, and ``ddl_gnn.load_model`` rebuilds a model that predicts
exactly what the trained one did."""
import json

import pytest
import torch

import ddl_gnn
from ddl_gnn.cli import main
from ddl_gnn.experiment.config import RunConfig
from ddl_gnn.experiment.model_io import (build_from_spec, model_spec,
                                         read_config, save_model)
from ddl_gnn.experiment.runner import load, make_model, run

CSBM = {'num_nodes': 150, 'num_classes': 3, 'num_features': 8}


def _perturbed(model, seed=3):
    """Weights that no initialisation produces (a load that silently kept
    fresh weights would not match)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model.eval()


def test_trained_run_round_trips_to_its_test_score(tmp_path):
    cfg = RunConfig('csbm', 'delta', 3, hidden=16, epochs=8,
                    dataset_kwargs=CSBM, model_kwargs={'d_v': 2})
    rec = run(cfg, out=str(tmp_path), progress=False, save=True)
    assert rec['model_path'] == f'models/{cfg.key()}.pt'
    path = tmp_path / rec['model_path']
    model = ddl_gnn.load_model(path)
    assert not model.training
    assert read_config(path) == json.loads(json.dumps(rec['config']))
    ds = load(cfg)
    with torch.no_grad():
        pred = model(ds.data.x, ds.data.edge_index).argmax(-1, keepdim=True)
    test = ds.split['test']
    assert ds.eval(ds.data.y[test], pred[test]) == rec['test']
    assert ds.eval(ds.data.y[ds.split['valid']],
                   pred[ds.split['valid']]) == rec['valid']


def test_save_then_load_gives_the_same_predictions(tmp_path):
    cfg = RunConfig('csbm', 'delta', 4, hidden=16, dataset_kwargs=CSBM,
                    model_kwargs={'d_v': 3, 'beta_init': 0.5})
    ds = load(cfg)
    model = _perturbed(make_model(cfg, ds))
    path = save_model(tmp_path / 'm.pt', model, cfg, model_spec(cfg, ds))
    again = ddl_gnn.load_model(path)
    x, ei = ds.data.x, ds.data.edge_index
    with torch.no_grad():
        assert torch.equal(model(x, ei), again(x, ei))


@pytest.mark.dataset
def test_molecular_model_with_encoders_round_trips(tmp_path, data_root):
    cfg = RunConfig('ogbg-molbace', 'delta', 2, hidden=16,
                    model_kwargs={'conv': 'gine'})
    ds = load(cfg)
    spec = model_spec(cfg, ds)
    assert spec['encoder'] == {'kind': 'atom'}
    assert spec['edge_encoder'] == {'kind': 'bond'}
    model = _perturbed(make_model(cfg, ds))
    again = ddl_gnn.load_model(save_model(tmp_path / 'm.pt', model, cfg,
                                          spec))
    from torch_geometric.data import Batch
    batch = Batch.from_data_list([ds.dataset[i] for i in range(8)])
    args = (batch.x, batch.edge_index)
    kw = dict(edge_attr=batch.edge_attr, batch=batch.batch)
    with torch.no_grad():
        assert torch.equal(model(*args, **kw), again(*args, **kw))


def test_spec_is_json_and_rebuilds_the_same_architecture():
    cfg = RunConfig('csbm', 'gcnii', 3, hidden=8, dataset_kwargs=CSBM,
                    model_kwargs={'alpha': 0.1, 'theta': 0.5})
    ds = load(cfg)
    spec = json.loads(json.dumps(model_spec(cfg, ds)))
    a, b = make_model(cfg, ds), build_from_spec(spec)
    assert [(k, v.shape) for k, v in a.state_dict().items()] == \
        [(k, v.shape) for k, v in b.state_dict().items()]


def test_cli_save_model_and_not_a_model_file(tmp_path):
    assert main(['train', '--dataset', 'csbm', '--model', 'res', '--depth',
                 '2', '--epochs', '2', '--hidden', '8', '--no-measure',
                 '--dataset-kwargs', json.dumps(CSBM), '--save-model',
                 '--out', str(tmp_path)]) == 0
    rec = json.loads((tmp_path / 'results.jsonl').read_text())
    assert (tmp_path / rec['model_path']).is_file()
    torch.save({'weights': torch.zeros(2)}, tmp_path / 'other.pt')
    with pytest.raises(ValueError, match='not a ddl_gnn model file'):
        ddl_gnn.load_model(tmp_path / 'other.pt')
