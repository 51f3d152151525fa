"""Spells out a model option's old default in the records that left it
unset, before that default changes.

    python study/tools/spell_default.py --option beta_sum --value 0.0 \
        [--models delta delta-write-only] [--before REV] [--check] \
        [FOLDER ...]

A run whose ``model_kwargs`` did not set ``--option`` ran with the
option's default of its time. When the default changes, its config would
describe a different run under the same key; this tool adds
``--option = --value`` (a JSON value) to the ``model_kwargs`` of every
such record of ``--models``, with the key and command of the new config
(``rewrite_records.py``), so the records stay what they ran. Study configs
whose grid points describe those runs spell the option out the same way.

``--before REV`` changes only records whose ``git_sha`` is ``REV`` or an
ancestor of it (written under the old default); without it every record
that leaves the option unset. Without ``FOLDER`` every record folder
under ``study/results``. ``--check`` reports what would change and writes
nothing; a second run changes nothing.
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from folders import RESULTS, record_folders
from name_paper_records import Commits
from rewrite_records import Record, rewrite_folder, with_config


def spell_folder(folder: Path, option: str, value: Any,
                 models: Sequence[str], written: Commits,
                 check: bool) -> Counter:
    """Adds ``option = value`` to the records of ``models`` in ``folder``
    that leave ``option`` unset; returns the counts."""
    def change(record: Record):
        kwargs = record.get('config', {}).get('model_kwargs') or {}
        if record.get('model') not in models or option in kwargs:
            return None
        ok = written(record.get('git_sha'))
        if not ok:
            return None, ('left: written after --before' if ok is False
                          else 'left: commit unknown')
        config = dict(record['config'],
                      model_kwargs={**kwargs, option: value})
        try:
            return with_config(record, config), \
                f"{record['model']}: {option} = {json.dumps(value)} added"
        except (KeyError, TypeError, ValueError) as err:
            return None, f'left: cannot recompute ({err})'
    return rewrite_folder(folder, change, check)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('folders', nargs='*', type=Path)
    p.add_argument('--option', required=True,
                   help='the model option (a model_kwargs key)')
    p.add_argument('--value', required=True, type=json.loads,
                   help='its old default, as JSON (0.0, null, "none")')
    p.add_argument('--models', nargs='+',
                   default=['delta', 'delta-write-only'])
    p.add_argument('--check', action='store_true',
                   help='report what would change, write nothing')
    p.add_argument('--before', metavar='REV',
                   help='only records whose git_sha is REV or an ancestor')
    args = p.parse_args(argv)
    written = Commits(args.before)
    for folder in args.folders or record_folders(RESULTS):
        counts = spell_folder(folder, args.option, args.value, args.models,
                              written, args.check)
        if counts:
            print(f'{folder.name}:' + ''.join(
                f'\n  {n:5d}  {what}' for what, n in sorted(counts.items())))
    if args.check:
        print('(--check: nothing written)')


if __name__ == '__main__':
    main()
