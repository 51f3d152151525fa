"""Where ddl_gnn runs from: its own source checkout, or an installed copy.

Records stamp the package version always and a git commit only when the
package runs from ddl_gnn's own checkout: an installed wheel inside some
other project's git repository must not stamp that project's HEAD.
"""
from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path
from typing import Optional

_ROOT = Path(__file__).resolve().parents[1]


def checkout_root() -> Optional[Path]:
    """The folder above the package when it is ddl_gnn's source checkout
    (its ``pyproject.toml`` names the ``ddl_gnn`` project), else ``None``
    (an installed copy: the folder is ``site-packages``)."""
    try:
        with open(_ROOT / 'pyproject.toml', 'rb') as f:
            name = tomllib.load(f).get('project', {}).get('name', '')
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return _ROOT if name.replace('-', '_') == 'ddl_gnn' else None


def git_sha() -> Optional[str]:
    """HEAD of ddl_gnn's own checkout (``None`` for an installed copy, or a
    checkout that is not a git work tree of its own); ``$DDL_GNN_GIT_SHA``
    names it where the code runs from a copy without ``.git``."""
    if os.environ.get('DDL_GNN_GIT_SHA'):
        return os.environ['DDL_GNN_GIT_SHA']
    root = checkout_root()
    if root is None:
        return None
    try:
        out = subprocess.run(['git', 'rev-parse', '--show-toplevel', 'HEAD'],
                             cwd=root, capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split()
    # a checkout without .git inside another repository reports that one
    if out.returncode or len(lines) != 2 or \
            Path(lines[0]).resolve() != root:
        return None
    return lines[1]
