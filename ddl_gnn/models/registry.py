"""Name -> model family, used by the CLI, the benchmarks and the tests."""
from __future__ import annotations

from functools import partial
from typing import Callable, Dict

from .base import DeepGNN
from .delta_gnn import PAPER_DELTA, DeltaGNN
from .g2 import G2
from .gcnii import GCNII
from .residual import PlainGNN, ResGNN, ResPlusGNN

MODELS: Dict[str, Callable[..., DeepGNN]] = {
    'plain': PlainGNN,
    'res': ResGNN,
    'res+': ResPlusGNN,
    'gcnii': GCNII,
    'g2': G2,
    'delta': DeltaGNN,
    'delta-write-only': partial(DeltaGNN, erase=False),
    'delta-paper': partial(DeltaGNN, **PAPER_DELTA),
    'delta-paper-write-only': partial(DeltaGNN, **PAPER_DELTA, erase=False),
}


def build_model(name: str, in_channels: int, hidden_channels: int,
                num_layers: int, out_channels: int, **kwargs) -> DeepGNN:
    r"""Builds a model family by name with the shared skeleton of
    :class:`~ddl_gnn.models.base.DeepGNN` (same encoder, decoder, conv and
    meaning of ``num_layers``: message-passing layers only).

    Args:
        name (str): One of :obj:`MODELS`: ``'plain'``, ``'res'``, ``'res+'``,
            ``'gcnii'``, ``'g2'``, ``'delta'``, ``'delta-write-only'``,
            ``'delta-paper'`` (the paper-faithful generators),
            ``'delta-paper-write-only'`` (its write-only ablation).
        in_channels (int): Input feature width.
        hidden_channels (int): State width.
        num_layers (int): Message-passing layers.
        out_channels (int): Output width.
        **kwargs: Family options (``conv``, ``dropout``, ``norm``,
            ``readout``, ``encoder``, ``checkpoint``, ``d_v``,
            ``beta_init``, ``beta_mode``, ``alpha``, ``theta``, ``p``, ...).
    """
    if name not in MODELS:
        raise ValueError(f"build_model: unknown model {name!r}; choose one "
                         f"of {sorted(MODELS)}")
    try:
        return MODELS[name](in_channels, hidden_channels, num_layers,
                            out_channels, **kwargs)
    except TypeError as err:
        # Options the family does not take travel on to the conv (PyG's
        # MessagePassing), whose TypeError names neither the model nor
        # the option's way in: say both.
        if 'unexpected keyword argument' not in str(err):
            raise
        bad = str(err).rsplit('argument', 1)[-1].strip()
        raise ValueError(
            f"build_model: model {name!r} with conv "
            f"{kwargs.get('conv', 'gcn')!r} does not take the option {bad} "
            f"(check the spelling in model_kwargs / --model-kwargs)"
        ) from None
