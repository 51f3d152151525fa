"""Fixtures shared by every test folder.

* ``data_root``: ``$DDL_GNN_DATA`` (a writable copy made by
  ``shared/data/verify_data.py --prepare``), else the test is skipped — also
  when the variable names a folder that does not exist (CI sets it before it
  knows whether ``shared/data`` is there).
"""
import os

import pytest


@pytest.fixture
def data_root():
    root = os.environ.get('DDL_GNN_DATA')
    if not root:
        pytest.skip('DDL_GNN_DATA is not set (point it at a writable copy '
                    'made by shared/data/verify_data.py --prepare DEST)')
    if not os.path.isdir(root):
        pytest.skip(f'DDL_GNN_DATA={root} does not exist')
    return root
