"""Dataset registry: name → how to load it, where it lives, how it is scored.

``required`` lists the files (relative to the data root) whose presence
means the real loader will not try to download: they are the loader's own
existence check (PyG ``raw_file_names``, ogb ``raw_file_names``) plus what
ogb reads for the split.  ``subdir`` is the dataset's folder, the unit that is
copied to the cache when the root is read-only.
"""
from dataclasses import dataclass, field
from typing import Optional, Tuple


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    family: str             # key into loaders.LOADERS
    arg: Optional[str]      # the loader's own dataset name
    subdir: Optional[str]   # dataset folder under the root (None: no files)
    task: str               # node | graph | link
    task_type: str          # multiclass | binary | multilabel | regression
    metric: str             # acc | rocauc | ap | rmse | hits@20
    tested_offline: bool    # loaded from real files by the offline tests
    loader: str             # the real loader call, for docs and errors
    required: Tuple[str, ...] = field(default_factory=tuple)
    note: str = ''


def _planetoid(name, low, offline):
    raw = f'planetoid/{name}/raw/ind.{low}.'
    return DatasetSpec(
        low, 'planetoid', name, f'planetoid/{name}', 'node', 'multiclass',
        'acc', offline, f"Planetoid(ROOT/planetoid, '{name}')",
        tuple(raw + s for s in ('x', 'tx', 'allx', 'y', 'ty', 'ally', 'graph',
                                'test.index')),
        'public split (20 per class / 500 / 1000)')


def _geom(name, sub, raw_dir, prefix, loader):
    raw = f'geom_gcn/{raw_dir}/raw/'
    files = ['out1_node_feature_label.txt', 'out1_graph_edges.txt'] + [
        f'{prefix}_split_0.6_0.2_{i}.npz' for i in range(10)]
    return DatasetSpec(
        name, 'geom_gcn', sub, f'geom_gcn/{raw_dir.split("/")[0]}', 'node',
        'multiclass', 'acc', True, loader, tuple(raw + f for f in files),
        '10 geom-gcn splits (60/20/20 per split); `split` picks one')


def _hetero(name, low):
    return DatasetSpec(
        low, 'heterophilous', name, f'heterophilous/{low}', 'node', 'binary',
        'rocauc', True,
        f"HeterophilousGraphDataset(ROOT/heterophilous, '{name}')",
        (f'heterophilous/{low}/raw/{low}.npz',),
        '10 splits (50/25/25); ROC-AUC as in Platonov et al. 2023')


def _filtered(name):
    arg = f'{name}_filtered'
    return DatasetSpec(
        f'{name}-filtered', 'filtered_npz', arg, 'heterophilous/extra_npz',
        'node', 'multiclass', 'acc', True,
        f'numpy.load(ROOT/heterophilous/extra_npz/{arg}.npz) '
        f'(yandex-research/heterophilous-graphs; no PyG class)',
        (f'heterophilous/extra_npz/{arg}.npz',),
        f'{name} without the duplicate nodes that leak between train and '
        f'test in the geom-gcn version (Platonov et al. 2023); the 10 '
        f'splits of the file (about 46/33/21 %); `split` picks one')


def _bench(name, cls, folder, fname):
    return DatasetSpec(
        name, 'gnn_benchmark', folder, f'gnn_benchmark/{folder}', 'node',
        'multiclass', 'acc', True, f"{cls}(ROOT/gnn_benchmark, '{folder}')",
        (f'gnn_benchmark/{folder}/raw/{fname}',),
        'no split in the file: seeded stratified 20/30 per class, rest test '
        '(Shchur et al. 2018); `split` is the seed')


def _ogbg(name, task_type, metric, offline=True):
    d = 'ogb/' + name.replace('-', '_')
    return DatasetSpec(
        name, 'ogbg', name, d, 'graph', task_type, metric, offline,
        f"PygGraphPropPredDataset('{name}', root=ROOT/ogb)",
        tuple(f'{d}/{f}' for f in (
            'RELEASE_v1.txt', 'raw/edge.csv.gz', 'raw/node-feat.csv.gz',
            'raw/edge-feat.csv.gz', 'split/scaffold/train.csv.gz')),
        'scaffold split; integer atom/bond features (AtomEncoder/BondEncoder)')


_SPECS = [
    DatasetSpec('csbm', 'csbm', None, None, 'node', 'multiclass', 'acc', True,
                'ddl_gnn.data.synthetic.csbm_graph (generated)', (),
                'synthetic, no files; stratified 60/20/20, `split` is the '
                'split seed, `seed` the graph seed'),
    DatasetSpec('karate', 'karate', None, None, 'node', 'multiclass', 'acc',
                True, 'KarateClub() (built into PyG)', (),
                'train = the 4 labelled nodes; the rest split in half '
                'valid/test, stratified, seed `split`'),
    _planetoid('Cora', 'cora', True),
    _planetoid('CiteSeer', 'citeseer', True),
    _planetoid('PubMed', 'pubmed', False),
    _geom('texas', 'Texas', 'texas', 'texas', "WebKB(ROOT/geom_gcn, 'Texas')"),
    _geom('cornell', 'Cornell', 'cornell', 'cornell',
          "WebKB(ROOT/geom_gcn, 'Cornell')"),
    _geom('wisconsin', 'Wisconsin', 'wisconsin', 'wisconsin',
          "WebKB(ROOT/geom_gcn, 'Wisconsin')"),
    _geom('chameleon', 'chameleon', 'chameleon/geom_gcn', 'chameleon',
          "WikipediaNetwork(ROOT/geom_gcn, 'chameleon', "
          "geom_gcn_preprocess=True)"),
    _geom('squirrel', 'squirrel', 'squirrel/geom_gcn', 'squirrel',
          "WikipediaNetwork(ROOT/geom_gcn, 'squirrel', "
          "geom_gcn_preprocess=True)"),
    _filtered('chameleon'),
    _filtered('squirrel'),
    _geom('actor', None, 'actor', 'film', 'Actor(ROOT/geom_gcn/actor)'),
    _hetero('Minesweeper', 'minesweeper'),
    _hetero('Tolokers', 'tolokers'),
    _bench('amazon-photo', 'Amazon', 'Photo', 'amazon_electronics_photo.npz'),
    _bench('amazon-computers', 'Amazon', 'Computers',
           'amazon_electronics_computers.npz'),
    _bench('coauthor-cs', 'Coauthor', 'CS', 'ms_academic_cs.npz'),
    DatasetSpec('peptides-func', 'lrgb', 'Peptides-func', 'lrgb/peptides-func',
                'graph', 'multilabel', 'ap', True,
                "LRGBDataset(ROOT/lrgb, 'Peptides-func', split=...)",
                tuple(f'lrgb/peptides-func/raw/{p}.pt'
                      for p in ('train', 'val', 'test')),
                'raw files written from lrgb/peptides_func_graphs_ogb.npz when '
                'absent; official split 10873/2331/2331; 10 tasks, macro AP'),
    DatasetSpec('ogbn-arxiv', 'ogbn', 'ogbn-arxiv', 'ogb/ogbn_arxiv', 'node',
                'multiclass', 'acc', False,
                "PygNodePropPredDataset('ogbn-arxiv', root=ROOT/ogb)",
                ('ogb/ogbn_arxiv/RELEASE_v1.txt', 'ogb/ogbn_arxiv/raw/edge.csv.gz',
                 'ogb/ogbn_arxiv/raw/node-feat.csv.gz',
                 'ogb/ogbn_arxiv/split/time/train.csv.gz'),
                'directed citation graph, symmetrised by default; time split'),
    DatasetSpec('ogbn-proteins', 'ogbn', 'ogbn-proteins', 'ogb/ogbn_proteins',
                'node', 'multilabel', 'rocauc', False,
                "PygNodePropPredDataset('ogbn-proteins', root=ROOT/ogb)",
                ('ogb/ogbn_proteins/RELEASE_v1.txt',
                 'ogb/ogbn_proteins/raw/edge.csv.gz',
                 'ogb/ogbn_proteins/raw/edge-feat.csv.gz',
                 'ogb/ogbn_proteins/split/species/train.csv.gz'),
                'no node features: x = mean of the 8-dim incident edge '
                'features; 112 binary tasks'),
    _ogbg('ogbg-molhiv', 'binary', 'rocauc'),
    _ogbg('ogbg-molbace', 'binary', 'rocauc'),
    _ogbg('ogbg-molbbbp', 'binary', 'rocauc'),
    _ogbg('ogbg-molesol', 'regression', 'rmse'),
    _ogbg('ogbg-molfreesolv', 'regression', 'rmse'),
    DatasetSpec('ogbl-ddi', 'ogbl', 'ogbl-ddi', 'ogb/ogbl_ddi', 'link',
                'binary', 'hits@20', True,
                "PygLinkPropPredDataset('ogbl-ddi', root=ROOT/ogb)",
                ('ogb/ogbl_ddi/RELEASE_v1.txt', 'ogb/ogbl_ddi/raw/edge.csv.gz',
                 'ogb/ogbl_ddi/split/target/train.pt',
                 'ogb/ogbl_ddi/split/target/valid.pt',
                 'ogb/ogbl_ddi/split/target/test.pt'),
                'no node features (learn embeddings); protein-target split'),
]

DATASETS = {s.name: s for s in _SPECS}

_ALIASES = {'photo': 'amazon-photo', 'computers': 'amazon-computers',
            'cs': 'coauthor-cs', 'film': 'actor', 'peptides_func':
            'peptides-func', 'karateclub': 'karate'}


def get_spec(name: str) -> DatasetSpec:
    key = name.strip().lower().replace('_', '-')
    key = _ALIASES.get(key, _ALIASES.get(key.replace('-', '_'), key))
    if key not in DATASETS:
        raise KeyError(f'unknown dataset {name!r}; known: '
                       f'{", ".join(sorted(DATASETS))}')
    return DATASETS[key]
