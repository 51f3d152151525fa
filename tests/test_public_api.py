"""The public names of the issues import exactly as written."""
import importlib

import pytest

PUBLIC = {
    'ddl_gnn.ops': ['delta_update', 'delta_update_reference',
                    'delta_operator', 'delta_write'],
    'ddl_gnn.nn': ['DeltaConv', 'BetaGate', 'StateCompressor', 'make_conv'],
    'ddl_gnn.models': ['DeltaGNN', 'build_model', 'MODELS', 'PlainGNN',
                       'ResGNN', 'ResPlusGNN', 'GCNII', 'G2',
                       'depth_beta_init'],
    'ddl_gnn.metrics': ['dirichlet_energy', 'relative_dirichlet_energy',
                        'normalized_dirichlet_energy', 'mad', 'mad_gap',
                        'numerical_rank', 'effective_rank',
                        'representation_norm', 'state_gradient_norms',
                        'influence_per_hop', 'fit_decay_rate', 'beta_audit',
                        'LayerProbe', 'probe_model'],
    'ddl_gnn.data': ['load_dataset', 'GraphDataset', 'DatasetNotFoundError'],
    'ddl_gnn': ['train', 'sweep', 'report', 'results', 'write_csv',
                'load_records', 'load_model', 'limit_heap_growth',
                'restore_heap_growth', '__version__'],
    'ddl_gnn.experiment': ['RunConfig', 'load_model', 'results', 'write_csv',
                           'write_report', 'ResultStore'],
}


@pytest.mark.parametrize('module', sorted(PUBLIC))
def test_public_names(module):
    mod = importlib.import_module(module)
    for name in PUBLIC[module]:
        assert hasattr(mod, name), f'{module}.{name}'
        if hasattr(mod, '__all__'):
            assert name in mod.__all__, f'{name} not in {module}.__all__'


def test_model_names():
    from ddl_gnn.models import MODELS
    assert {'plain', 'res', 'res+', 'gcnii', 'g2', 'delta',
            'delta-write-only'} <= set(MODELS)


def test_cli_entry_points():
    from ddl_gnn.cli import build_parser, main  # noqa: F401
    sub = build_parser()._subparsers._group_actions[0].choices
    assert {'train', 'sweep', 'report', 'demo'} <= set(sub)
