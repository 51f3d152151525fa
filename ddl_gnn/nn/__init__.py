r"""Layers: the delta message-passing layer and its parts."""
from .compress import StateCompressor
from .conv_resolver import CONVS, call_conv, make_conv
from .delta_conv import PAPER_DELTA, DeltaConv
from .gates import BETA_MODES, BetaGate

__all__ = [
    'DeltaConv',
    'PAPER_DELTA',
    'BetaGate',
    'StateCompressor',
    'make_conv',
    'call_conv',
    'CONVS',
    'BETA_MODES',
]
