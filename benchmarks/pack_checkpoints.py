"""Packs the checkpoints of unfinished runs (``benchmarks/results/<sweep>/
checkpoints/<key>.pt`` without a record) into one tarball, so that a run cut
off on one machine continues on another (a lent GPU's budget is minutes; the
files it returns are size-capped).

    python benchmarks/pack_checkpoints.py OUT.tgz [--limit-mib 15] [--root DIR]

Members are stored as ``benchmarks/results/<sweep>/checkpoints/<key>.pt``
(untar at the repository root, or untar elsewhere and merge with
``benchmarks/merge_records.py DIR/benchmarks/results``). The runs with the
most training seconds go first; what does not fit under the limit is listed
and left out. The tarball is written atomically; with nothing to pack none
is written."""
from __future__ import annotations

import argparse
import os
import tarfile
from pathlib import Path

from ddl_gnn.experiment.checkpoint import pending_checkpoints

RESULTS = Path(__file__).resolve().parent / 'results'


def pack(out: str, root: Path = RESULTS, limit_mib: float = 15.0) -> list:
    chosen, total = [], 0
    for c in pending_checkpoints(str(root)):
        if total + c['bytes'] <= limit_mib * 2 ** 20:
            chosen.append(c)
            total += c['bytes']
        else:
            print(f"left out (size limit): {c['sweep']}/{c['key']} "
                  f"epoch {c['epoch']}, {c['bytes'] / 2 ** 20:.1f} MiB")
    if not chosen:
        return []
    tmp = f'{out}.tmp'
    with tarfile.open(tmp, 'w:gz') as tar:
        for c in chosen:
            tar.add(c['path'], arcname=f"benchmarks/results/{c['sweep']}/"
                    f"checkpoints/{c['key']}.pt")
    os.replace(tmp, out)
    return chosen


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('out')
    p.add_argument('--limit-mib', type=float, default=15.0)
    p.add_argument('--root', type=Path, default=RESULTS)
    args = p.parse_args()
    for c in pack(args.out, args.root, args.limit_mib):
        r = c['run']
        print(f"packed {c['sweep']}/{c['key']} ({r.get('model')} "
              f"L{r.get('depth')} s{r.get('seed')}): epoch {c['epoch']} of "
              f"{r.get('epochs')}, {c['train_s']:.0f} s trained")
