r"""Operator math of the delta shortcut (fast paths and the dense oracle)."""
from .compress import compress_state
from .delta import (delta_update, delta_update_eager, delta_update_read,
                    delta_write, head_components)
from .saved import saved_tensor_bytes
from .reference import (delta_operator, delta_update_reference,
                        head_directions, normalize_direction)

__all__ = [
    'compress_state',
    'delta_update',
    'delta_update_read',
    'delta_update_eager',
    'delta_write',
    'head_components',
    'delta_operator',
    'delta_update_reference',
    'head_directions',
    'normalize_direction',
    'saved_tensor_bytes',
]
