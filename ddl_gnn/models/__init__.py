r"""Deep-stack model families built on one skeleton (matched comparisons)."""
from .base import DeepGNN
from .delta_gnn import PAPER_DELTA, DeltaGNN, depth_beta_init
from .g2 import G2
from .gcnii import GCNII
from .registry import MODELS, build_model
from .residual import PlainGNN, ResGNN, ResPlusGNN

__all__ = [
    'DeepGNN',
    'DeltaGNN',
    'PAPER_DELTA',
    'depth_beta_init',
    'PlainGNN',
    'ResGNN',
    'ResPlusGNN',
    'GCNII',
    'G2',
    'MODELS',
    'build_model',
]
