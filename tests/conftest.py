"""Fixtures shared by every test folder.

* ``data_root``: ``$DDL_GNN_DATA`` (a writable data root in the layout of
  ``ddl_gnn/data/README.md``), else the test is skipped — also when the
  variable names a folder that does not exist.
* ``study_tool``: imports a script of ``study/tools/`` by name (the tools
  import each other by name, as when run from that folder).
"""
import importlib
import os
from pathlib import Path

import pytest

STUDY_TOOLS = Path(__file__).resolve().parents[1] / 'study' / 'tools'


@pytest.fixture
def data_root():
    root = os.environ.get('DDL_GNN_DATA')
    if not root:
        pytest.skip('DDL_GNN_DATA is not set (point it at a writable data '
                    'root laid out as in ddl_gnn/data/README.md)')
    if not os.path.isdir(root):
        pytest.skip(f'DDL_GNN_DATA={root} does not exist')
    return root


@pytest.fixture
def study_tool(monkeypatch):
    monkeypatch.syspath_prepend(str(STUDY_TOOLS))
    return importlib.import_module
