"""Per-device switches: an override from Python, else an environment
variable that reads ``auto``, ``1``/``always`` or ``0``/``never``."""
from __future__ import annotations

import os
from typing import Optional

_TRUE = ('1', 'true', 'yes', 'on', 'always')
_FALSE = ('0', 'false', 'no', 'off', 'never')


def forced(override: dict, variable: str) -> Optional[bool]:
    """The forced value (``override['value']``, else ``variable``), or
    :obj:`None` for the per-device default (``auto`` or unset)."""
    if 'value' in override:
        return override['value']
    flag = os.environ.get(variable, 'auto').strip().lower()
    if flag in _TRUE:
        return True
    if flag in _FALSE:
        return False
    if flag not in ('', 'auto'):
        raise ValueError(f"{variable} must be auto, 1/always or 0/never, "
                         f"got {flag!r}")
    return None
