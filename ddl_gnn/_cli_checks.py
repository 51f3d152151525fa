"""Argument checks of the ``ddl-gnn`` command line: each names the flag or
file and the expected form, before anything is trained or written."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Dict


def json_object(text: str) -> Dict[str, Any]:
    """argparse type of the dict options (``--model-kwargs``, ...)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(
            f'not JSON ({err}): {text!r}; give an object such as '
            '\'{"beta_init": 0.5}\'') from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f'a JSON object is needed, got {type(value).__name__} {text!r}; '
            'e.g. \'{"beta_init": 0.5}\'')
    return value


def positive_int(text: str) -> int:
    """argparse type of counts that must be >= 1 (``--runs``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'an int >= 1 is needed, got '
                                         f'{text!r}')
    return value


def writable_folder(path: str, flag: str) -> Path:
    """``path`` as a folder this process can write records into (made if
    missing): not a file, not under a file, not read-only."""
    p = Path(path)
    for parent in [p, *p.parents]:
        if parent.exists() and not parent.is_dir():
            where = ('is a file' if parent == p else
                     f'is under the file {parent}')
            raise ValueError(f'{flag} {path}: {where}; give a folder')
        if parent.exists():
            break
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f'{flag} {path}: cannot create the folder '
                         f'({err.strerror})') from None
    # os.access alone says yes to root on a 0o555 folder.
    if not os.access(p, os.W_OK | os.X_OK) or not p.stat().st_mode & 0o222:
        raise ValueError(f'{flag} {path}: the folder is read-only')
    return p


def existing_folder(path: str, what: str) -> Path:
    """``path`` must be a folder that exists (``report DIR``)."""
    p = Path(path)
    if not p.is_dir():
        raise ValueError(f'{what} {path}: ' + (
            'is not a folder' if p.exists() else 'no such folder'))
    return p
