"""Errors raised by :mod:`ddl_gnn.data`."""
from typing import Iterable, Optional

from .root import PathLike


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not under the data root and cannot be fetched.

    Raised instead of a download attempt when offline mode is on
    (``download=False`` or ``DDL_GNN_OFFLINE=1``), and instead of a network
    traceback when the real loader's download fails.  The message names the
    dataset, the expected path and how to obtain the files.
    """

    def __init__(self, name: str, path: PathLike,
                 missing: Iterable[str] = (), reason: Optional[str] = None,
                 how: Optional[str] = None):
        self.name = name
        self.path = str(path)
        self.missing = list(missing)
        lines = [f"dataset '{name}' is not available under {self.path}"]
        if reason:
            lines.append(f'  reason: {reason}')
        if self.missing:
            shown = ', '.join(self.missing[:4])
            more = len(self.missing) - 4
            lines.append(f'  missing: {shown}' + (f' (+{more} more)' if more > 0
                                                   else ''))
        lines.append('  to obtain it: on a connected machine, load_dataset('
                     f"'{name}', download=True) (or any load with "
                     'DDL_GNN_OFFLINE unset) downloads it into the root;')
        lines.append('  offline: copy the files into the layout of '
                     'ddl_gnn/data/README.md (the "path under ROOT" column) '
                     'under a folder ROOT and set DDL_GNN_DATA=ROOT')
        if how:
            lines.append(f'  note: {how}')
        super().__init__('\n'.join(lines))


class DatasetFileError(ValueError):
    """A dataset file exists but cannot be used; the message names it.

    Attributes:
        path: the file.
        reason: why it was refused.
    """

    def __init__(self, path: PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f'{self.what}: {self.path}\n  reason: {reason}')

    what = 'dataset file cannot be used'


class UnsafeFileError(DatasetFileError):
    """A dataset file would run code (or build objects other than tensors,
    plain containers, numpy arrays, scipy sparse matrices) if loaded; it was
    refused before anything in it was built."""

    what = 'refusing to load a dataset file that could run code'


class CorruptFileError(DatasetFileError):
    """A dataset file is truncated, of another format, or inconsistent with
    the other files of its dataset."""

    what = 'dataset file is truncated or corrupt'
