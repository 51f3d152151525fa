"""Names the records of the paper layer ``delta-paper``.

    python study/tools/name_paper_records.py [--check] [--before REV] \
        [FOLDER ...]

Runs of ``delta`` / ``delta-write-only`` written while :class:`DeltaGNN`'s
defaults were the paper layer's (``k_source='conv'``,
``beta_source='context'``, ``v_source='context'``, one head,
``norm='layer_norm'``, ``beta_mode='learned'``, ``beta_init=0.1``) ran
what ``delta-paper`` / ``delta-paper-write-only`` runs with the same
options, except for ``beta_init``, whose default there is 1.0. Every such
record whose options leave one of the settings of :data:`LAYER` to the
default (so that ``delta`` with its current defaults would run another
layer) gets:

- ``model`` (and ``config['model']``) ``delta-paper`` or
  ``delta-paper-write-only``;
- ``beta_init = 0.1`` in ``config['model_kwargs']`` when it set none;
- ``key`` and ``command`` of that config (:meth:`RunConfig.key`,
  :meth:`RunConfig.command` with the record's own ``--out`` and launcher).

A record whose options set all of them (the anchored generators with
their gate range, norm and heads) ran the same layer under either default
and keeps the name ``delta``. Every other field and every other record is
left as it is, byte for byte; a file is rewritten (temporary file and
``os.replace`` under the store's lock, the archive gzipped as
:meth:`ResultStore.compact` writes it) only when one of its records
changes, so a second run changes nothing.

Without ``FOLDER`` every record folder under ``study/results``. ``--check``
reports what would change and writes nothing. ``--before REV`` renames only
records whose ``git_sha`` is ``REV`` or an ancestor of it (for records
written after the defaults changed: a ``delta`` run there is the new
layer); a record whose commit is not in this checkout is then left and
reported (``git_sha`` is the checkout's HEAD when the record was
written).
"""
from __future__ import annotations

import argparse
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from folders import RESULTS, STUDY, record_folders
from rewrite_records import rewrite_folder, with_config

RENAME = {'delta': 'delta-paper', 'delta-write-only': 'delta-paper-write-only'}
#: DeltaGNN options whose old default (the paper layer's) differs from the
#: current one; ``beta_init`` keeps 0.1 as ``delta``'s default.
LAYER = ('v_source', 'k_source', 'beta_source', 'beta_mode', 'norm', 'heads')
#: ``delta``'s ``beta_init`` default when these records were written.
OLD_BETA_INIT = 0.1

Record = Dict[str, Any]


def unset_options(config: Dict[str, Any]) -> Tuple[str, ...]:
    """The options of :data:`LAYER` that a run's ``config`` leaves to the
    default: set neither in ``model_kwargs`` (nor as a run field of that
    name) nor in every entry of ``layer_options``."""
    kwargs = config.get('model_kwargs') or {}
    layers = kwargs.get('layer_options') or [{}]
    return tuple(name for name in LAYER
                 if name not in kwargs and name not in config
                 and not all(name in layer for layer in layers))


def renamed(record: Record) -> Record:
    """``record`` named for the paper layer (:func:`unset_options` must be
    non-empty); raises ``ValueError`` when its ``key`` or ``command`` is
    not the one :class:`RunConfig` gives its ``config`` (then nothing can
    be recomputed safely)."""
    config = dict(record['config'], model=RENAME[record['model']])
    kwargs = config.get('model_kwargs') or {}
    if 'beta_init' not in kwargs:
        config['model_kwargs'] = {**kwargs, 'beta_init': OLD_BETA_INIT}
    return with_config(record, config)


class Commits:
    """Whether a record's ``git_sha`` is ``before`` or an ancestor of it
    (``True`` for every record without ``before``)."""

    def __init__(self, before: Optional[str]):
        self.before, self.known = before, {}

    def __call__(self, sha: Optional[str]) -> Optional[bool]:
        if self.before is None:
            return True
        if sha not in self.known:
            ok = sha and subprocess.run(
                ['git', 'cat-file', '-e', f'{sha}^{{commit}}'], cwd=STUDY,
                capture_output=True).returncode == 0
            self.known[sha] = None if not ok else subprocess.run(
                ['git', 'merge-base', '--is-ancestor', sha, self.before],
                cwd=STUDY, capture_output=True).returncode == 0
        return self.known[sha]


def name_folder(folder: Path, written: Commits, check: bool) -> Counter:
    """Renames the records of ``folder`` (live file and archive parts);
    returns the counts of what changed and what was left."""
    def change(record: Record):
        if record.get('model') not in RENAME:
            return None
        unset = unset_options(record.get('config', {}))
        if not unset:
            return None, 'kept delta (new layer)'
        ok = written(record.get('git_sha'))
        if not ok:
            return None, ('left: written after --before' if ok is False
                          else 'left: commit unknown')
        try:
            new = renamed(record)
        except (KeyError, TypeError, ValueError) as err:
            return None, f'left: cannot recompute ({err})'
        what = [f"{record['model']} -> {new['model']}"]
        if set(unset) != set(LAYER):
            what.append('  (of which setting only ' + ', '.join(
                sorted(set(LAYER) - set(unset))) + ')')
        if 'beta_init' not in (record['config'].get('model_kwargs') or {}):
            what.append('  (of which beta_init 0.1 added)')
        return new, tuple(what)
    return rewrite_folder(folder, change, check)


def main(folders, check: bool = False, before: Optional[str] = None) -> None:
    written = Commits(before)
    for folder in map(Path, folders):
        if not any((folder / n).is_file()
                   for n in ('results.jsonl', 'results.jsonl.gz')):
            print(f'{folder}: no records')
            continue
        counts = name_folder(folder, written, check)
        order = ('delta ->', 'delta-write-only ->', '  (', 'kept', 'left')
        if counts:
            print(f'{Path(folder).name}:' + ''.join(
                f'\n  {n:5d}  {what}' for what, n in sorted(
                    counts.items(), key=lambda c: ([
                        c[0].startswith(o) for o in order].index(True),
                        c[0]))))
    if check:
        print('(--check: nothing written)')


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('folders', nargs='*', type=Path)
    p.add_argument('--check', action='store_true',
                   help='report what would change, write nothing')
    p.add_argument('--before', metavar='REV',
                   help='only records whose git_sha is REV or an ancestor')
    args = p.parse_args()
    main(args.folders or record_folders(RESULTS), args.check, args.before)
