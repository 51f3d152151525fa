"""Helpers for the bad-input suite.

* ``payload``: ``(obj, marker)``, an object whose unpickling writes the
  file ``marker``; a test plants it in a dataset file and checks
  afterwards that ``marker`` is absent (no code ran).
* ``dataset_copy``: copies one dataset folder of the offline data into a
  temporary root, so that a test can damage it (never the data itself).
"""
import os
import shutil

import pytest


class Payload:
    """Unpickling calls ``exec`` on code that creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')", ))


@pytest.fixture
def payload(tmp_path):
    marker = tmp_path / 'code_ran'
    return Payload(marker), marker


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Writable cache in tmp, no stray offline setting, no network."""
    monkeypatch.setenv('DDL_GNN_CACHE', str(tmp_path / 'cache'))
    monkeypatch.setenv('DDL_GNN_OFFLINE', '1')


@pytest.fixture
def dataset_copy(data_root, tmp_path):
    """``copy(*relpaths, processed=True)`` → a root holding copies of the
    given files or folders of the offline data (``processed/`` folders
    left out unless ``processed``)."""
    root = tmp_path / 'root'

    def copy(*relpaths, processed=True):
        ignore = None if processed else shutil.ignore_patterns('processed')
        for rel in relpaths:
            src, dst = os.path.join(data_root, rel), root / rel
            if not os.path.exists(src):
                pytest.skip(f'{rel} is not in the offline data')
            dst.parent.mkdir(parents=True, exist_ok=True)
            if os.path.isdir(src):
                shutil.copytree(src, dst, ignore=ignore)
            else:
                shutil.copy(src, dst)
        return root
    return copy
