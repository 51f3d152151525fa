r"""Operator math of the delta shortcut (fast paths and the dense oracle)."""
from .delta import delta_update, delta_update_eager, delta_write
from .saved import saved_tensor_bytes
from .reference import (delta_operator, delta_update_reference,
                        normalize_direction)

__all__ = [
    'delta_update',
    'delta_update_eager',
    'delta_write',
    'delta_operator',
    'delta_update_reference',
    'normalize_direction',
    'saved_tensor_bytes',
]
