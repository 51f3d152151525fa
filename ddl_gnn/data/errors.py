"""Errors raised by :mod:`ddl_gnn.data`."""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not under the data root and cannot be fetched.

    Raised instead of a download attempt when offline mode is on
    (``download=False`` or ``DDL_GNN_OFFLINE=1``), and instead of a network
    traceback when the real loader's download fails.  The message names the
    dataset, the expected path and how to obtain the files.
    """

    def __init__(self, name, path, missing=(), reason=None, how=None):
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
                     f"'{name}', download=True) lets the real loader download "
                     'it into the root;')
        lines.append('  or, where the project\'s offline copy exists, run '
                     '`python shared/data/verify_data.py --prepare DEST` and '
                     'set DDL_GNN_DATA=DEST')
        if how:
            lines.append(f'  note: {how}')
        super().__init__('\n'.join(lines))
