"""Packs the checkpoints of unfinished runs (``study/results/<sweep>/
checkpoints/<key>.pt`` without a record) into one tarball, so that a run cut
off on one machine continues on another (for machines that run for a fixed
time and return files of a capped size).

    python study/tools/pack_checkpoints.py OUT.tgz [--limit-mib 15]
                                           [--parts N] [--root DIR]

Members are stored as ``study/results/<sweep>/checkpoints/<key>.pt``
(untar at the repository root, or untar elsewhere and merge with
``study/tools/merge_records.py DIR/study/results``). The runs with the
most training seconds go first; what does not fit under the limit is listed
and left out. With ``--parts N`` up to N tarballs of at most the limit each
are filled in that order (``OUT.tgz``, ``OUT.2.tgz``, ...: several files
under the size cap); part files from an
earlier call that are not needed any more are removed. Each tarball is
written atomically; with nothing to pack none is written."""
from __future__ import annotations

import argparse
import os
import tarfile
from pathlib import Path

from folders import RESULTS, pending_checkpoints


def part_path(out: str, i: int) -> str:
    """File of part ``i`` (0-based): ``OUT.tgz``, ``OUT.2.tgz``, ..."""
    if i == 0:
        return out
    stem, ext = os.path.splitext(out)
    return f'{stem}.{i + 1}{ext}'


def pack(out: str, root: Path = RESULTS, limit_mib: float = 15.0,
         parts: int = 1) -> list:
    if parts < 1:
        raise ValueError(f'parts must be >= 1, got {parts}')
    limit = limit_mib * 2 ** 20
    bins, sizes, chosen = [[] for _ in range(parts)], [0] * parts, []
    for c in pending_checkpoints(str(root)):
        fit = [i for i in range(parts) if sizes[i] + c['bytes'] <= limit]
        if fit:                              # first part with room
            bins[fit[0]].append(c)
            sizes[fit[0]] += c['bytes']
            chosen.append(c)
        else:
            print(f"left out (size limit): {c['sweep']}/{c['key']} "
                  f"epoch {c['epoch']}, {c['bytes'] / 2 ** 20:.1f} MiB")
    for i, members in enumerate(bins):
        path = part_path(out, i)
        if not members:
            if i > 0 and os.path.exists(path):
                os.remove(path)              # stale part of an earlier call
            continue
        tmp = f'{path}.tmp'
        with tarfile.open(tmp, 'w:gz') as tar:
            for c in members:
                tar.add(c['path'], arcname=f"study/results/{c['sweep']}/"
                        f"checkpoints/{c['key']}.pt")
        os.replace(tmp, path)
    return chosen


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('out')
    p.add_argument('--limit-mib', type=float, default=15.0)
    p.add_argument('--parts', type=int, default=1)
    p.add_argument('--root', type=Path, default=RESULTS)
    args = p.parse_args()
    for c in pack(args.out, args.root, args.limit_mib, args.parts):
        r = c['run']
        print(f"packed {c['sweep']}/{c['key']} ({r.get('model')} "
              f"L{r.get('depth')} s{r.get('seed')}): epoch {c['epoch']} of "
              f"{r.get('epochs')}, {c['train_s']:.0f} s trained")
