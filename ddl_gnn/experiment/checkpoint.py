"""Mid-run checkpoints: a run killed between epochs resumes where it stopped
and ends with the record it would have had uninterrupted.

A sweep already resumes at run granularity (finished runs are skipped), which
loses the run in flight. Runs that take hours on a CPU (Peptides-func,
ogbg-molhiv, deep stacks on dense graphs) may be stopped before they end,
so the training loop also saves, at an epoch boundary every ``every_s``
seconds, everything the rest of the run depends on:

- the model and optimizer states, the best-validation state and its scores,
  the per-epoch history (the record's curves) and the epoch count;
- the random streams: torch's global CPU generator (dropout, node shuffles),
  the CUDA generator of the run's device, and the run's own
  :class:`torch.Generator` objects (the graph loader's shuffle);
- the training seconds spent so far (the record's ``time_s`` is their sum).

A file is bound to its run key; it is written atomically (temporary file,
then ``os.replace``) and removed once the run's record is made. Loading uses
``torch.load(weights_only=True)``: tensors and plain containers only.
"""
from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional, Sequence

import torch

#: Bump when the saved layout changes; an older file is then an error.
FORMAT = 1


class RunCheckpoint:
    """The checkpoint file of one run, ``folder/<run key>.pt``.

    Args:
        folder: where checkpoints of a sweep live (``<out>/checkpoints``).
        key: the run key (:meth:`RunConfig.key`).
        every_s: seconds of training between two saves; ``0`` saves after
            every epoch.
    """

    def __init__(self, folder: str, key: str, every_s: float = 600.0):
        if every_s < 0:
            raise ValueError(f'checkpoint interval must be >= 0 seconds, '
                             f'got {every_s}')
        self.folder, self.key, self.every_s = folder, key, float(every_s)
        self.path = os.path.join(folder, f'{key}.pt')
        self._last = time.monotonic()

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.path!r}, '
                f'every_s={self.every_s:g})')

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.every_s

    def load(self, mmap: bool = False) -> Optional[Dict[str, Any]]:
        """The saved state, or ``None`` when this run has none. ``mmap=True``
        maps the tensors instead of reading them: cheap when only the
        plain fields (the epoch count) are wanted."""
        if not os.path.exists(self.path):
            return None
        try:
            state = torch.load(self.path, map_location='cpu',
                               weights_only=True, mmap=mmap)
        except Exception as err:  # truncated or foreign file
            raise ValueError(f'checkpoint {self.path} cannot be read ({err});'
                             f' delete it to restart this run') from None
        if not isinstance(state, dict) or state.get('format') != FORMAT \
                or state.get('key') != self.key:
            raise ValueError(f'checkpoint {self.path} is not a format-'
                             f'{FORMAT} checkpoint of run {self.key}; delete '
                             f'it to restart this run')
        return state

    def save(self, state: Dict[str, Any]) -> None:
        with _temporary(self.folder, self.key) as tmp:
            torch.save(dict(state, format=FORMAT, key=self.key), tmp)
            os.replace(tmp, self.path)
        self._last = time.monotonic()

    def clear(self) -> None:
        if os.path.exists(self.path):
            os.remove(self.path)


def random_state(device: torch.device,
                 generators: Sequence[torch.Generator] = ()
                 ) -> Dict[str, Any]:
    """The random streams a run draws from, to restore with
    :func:`set_random_state`."""
    state: Dict[str, Any] = dict(
        cpu=torch.get_rng_state(),
        generators=[g.get_state() for g in generators])
    if device.type == 'cuda':
        state['cuda'] = torch.cuda.get_rng_state(device)
    return state


def set_random_state(state: Dict[str, Any], device: torch.device,
                     generators: Sequence[torch.Generator] = ()) -> None:
    if len(state['generators']) != len(generators):
        raise ValueError(f"checkpoint holds {len(state['generators'])} "
                         f"generator states, the run has {len(generators)}")
    torch.set_rng_state(state['cpu'])
    for gen, saved in zip(generators, state['generators']):
        gen.set_state(saved)
    if device.type == 'cuda' and 'cuda' in state:
        torch.cuda.set_rng_state(state['cuda'], device)


@contextmanager
def _temporary(folder: str, key: str) -> Iterator[str]:
    """A fresh temporary file name in ``folder`` for run ``key`` (unique
    per call: two processes writing the same key never share one); removed
    if the block leaves it behind."""
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{key}.pt.',
                               suffix='.tmp')
    os.close(fd)
    try:
        yield tmp
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
