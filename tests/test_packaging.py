"""The package outside its checkout: what the wheel holds, where configs
come from, and which commit records stamp (ddl_gnn's own, never that of a
repository the package happens to be installed in)."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import ddl_gnn
from ddl_gnn import _checkout
from ddl_gnn.experiment.sweep import find_config as _find_config
from ddl_gnn.ops import cpu_kernels

REPO = Path(__file__).resolve().parents[1]


def test_wheel_holds_the_package_data(tmp_path):
    # built from a copy: an in-tree build leaves build/ in the checkout
    src = tmp_path / 'src'
    shutil.copytree(REPO / 'ddl_gnn', src / 'ddl_gnn',
                    ignore=shutil.ignore_patterns('__pycache__'))
    for name in ('pyproject.toml', 'README.md', 'LICENSE'):
        shutil.copy(REPO / name, src / name)
    res = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q',
                          '--no-deps', '--no-build-isolation', '-w',
                          str(tmp_path), str(src)], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    wheel, = tmp_path.glob('ddl_gnn-*.whl')
    assert wheel.name.startswith(f'ddl_gnn-{ddl_gnn.__version__}-')
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ('ddl_gnn/configs/demo.toml', 'ddl_gnn/py.typed',
                 'ddl_gnn/cli.py'):
        assert name in names
    # every file the kernels' build reads, headers included
    for src in cpu_kernels._SOURCES + cpu_kernels._HEADERS:
        assert f'ddl_gnn/ops/csrc/{src.name}' in names, src.name
    assert any(n.endswith('licenses/LICENSE') for n in names)
    meta = zipfile.ZipFile(wheel).read(
        f'ddl_gnn-{ddl_gnn.__version__}.dist-info/METADATA').decode()
    assert 'Requires-Python: >=3.11' in meta and 'ninja' in meta


def test_one_copy_of_each_packaged_config():
    packaged = {p.name for p in (REPO / 'ddl_gnn' / 'configs').glob('*.toml')}
    assert 'demo.toml' in packaged
    assert not packaged & {p.name for p in
                           (REPO / 'benchmarks' / 'configs').glob('*.toml')}


def test_configs_resolve_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    demo = REPO / 'ddl_gnn' / 'configs' / 'demo.toml'
    assert Path(_find_config('demo')) == demo
    assert Path(_find_config('demo.toml')) == demo
    # checkout paths still work from elsewhere when running from it
    cora = Path(_find_config('study/configs/cora.toml'))
    assert cora == REPO / 'study' / 'configs' / 'cora.toml'
    (tmp_path / 'demo.toml').write_text('dataset = "karate"\n')
    assert Path(_find_config('demo.toml')) == Path('demo.toml')  # a file wins
    with pytest.raises(FileNotFoundError, match='nope.toml'):
        _find_config('nope.toml')


def test_checkout_stamps_its_own_commit(monkeypatch):
    monkeypatch.delenv('DDL_GNN_GIT_SHA', raising=False)
    if not (REPO / '.git').exists():
        pytest.skip('not a git checkout')
    head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPO, text=True,
                          capture_output=True).stdout.strip()
    assert _checkout.checkout_root() == REPO
    assert _checkout.git_sha() == head


SHA = 'from ddl_gnn import _checkout; print(_checkout.git_sha())'


def _git(*args, cwd):
    subprocess.run(['git', '-c', 'user.name=t', '-c', 'user.email=t@t',
                    *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.parametrize('project', ['other', 'ddl_gnn'])
def test_a_copy_inside_another_repository_stamps_no_commit(tmp_path,
                                                           project):
    """``other``: installed into another project's tree (site-packages in
    its repository); ``ddl_gnn``: an unpacked source tree without ``.git``
    inside another repository. Neither HEAD is ddl_gnn's."""
    outer = tmp_path / 'outer'
    shutil.copytree(REPO / 'ddl_gnn', outer / 'ddl_gnn',
                    ignore=shutil.ignore_patterns('__pycache__'))
    (outer / 'pyproject.toml').write_text(f'[project]\nname = "{project}"\n')
    _git('init', '-q', cwd=outer)
    _git('add', '-A', cwd=outer)
    _git('commit', '-qm', 'outer', cwd=outer)
    if project == 'ddl_gnn':        # the source tree is a subfolder
        shutil.move(outer / 'ddl_gnn', outer / 'pkg' / 'ddl_gnn')
        shutil.move(outer / 'pyproject.toml', outer / 'pkg')
        where = outer / 'pkg'
    else:
        where = outer
    env = dict(os.environ, PYTHONPATH=str(where))
    env.pop('DDL_GNN_GIT_SHA', None)
    out = subprocess.run([sys.executable, '-c', SHA], cwd=tmp_path, env=env,
                         text=True, capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == 'None'
