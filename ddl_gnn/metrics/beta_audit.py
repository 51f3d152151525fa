r"""Audit of the delta gates :math:`\beta \in [0, 2]` of a model.

Delta layers store the gate of their last forward pass as the attribute
:obj:`last_beta` (a detached tensor, one entry per node). The gate regime
tells what a layer does: :math:`\beta \approx 0` keeps the state (identity
shortcut), :math:`\beta \approx 1` overwrites the readout along :math:`k`
(projection), :math:`\beta > 1` over-relaxes towards a reflection.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

import torch
from torch import Tensor

#: Quantiles reported by default.
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
#: Number of equal-width histogram bins over [0, 2].
NUM_BINS = 20
#: Half-width of the "near 0" and "near 1" bands.
BAND = 0.1


def beta_summary(beta: Tensor, quantiles: Sequence[float] = QUANTILES,
                 bins: int = NUM_BINS, band: float = BAND) -> Dict[str, Any]:
    r"""Summary statistics of one layer's gates.

    Args:
        beta (torch.Tensor): Gates of any shape (flattened).
        quantiles (Sequence[float], optional): Quantile levels.
            (default: :obj:`(0.05, 0.25, 0.5, 0.75, 0.95)`)
        bins (int, optional): Equal-width bins over :math:`[0, 2]`; values
            outside are clamped into the end bins, so the counts sum to the
            number of gates. (default: :obj:`20`)
        band (float, optional): Width of the near-0 (:math:`\beta <`
            :obj:`band`) and near-1 (:math:`|\beta - 1| <` :obj:`band`)
            bands. (default: :obj:`0.1`)

    Returns:
        A JSON-ready dict: :obj:`count`, :obj:`mean`, :obj:`std`,
        :obj:`min`, :obj:`max`, :obj:`q0.05` ... (one key per quantile),
        :obj:`frac_near_0`, :obj:`frac_near_1`, :obj:`frac_above_1`,
        :obj:`hist` (counts) and :obj:`bin_edges`.
    """
    b = beta.detach().reshape(-1).to(torch.float64).cpu()
    if b.numel() == 0:
        raise ValueError("'beta' is empty")
    if not bool(torch.isfinite(b).all()):
        raise ValueError("'beta' contains NaN or Inf values")
    out: Dict[str, Any] = {
        'count': int(b.numel()),
        'mean': float(b.mean()),
        'std': float(b.std(unbiased=False)),
        'min': float(b.min()),
        'max': float(b.max()),
    }
    qs = torch.quantile(b, torch.tensor(list(quantiles), dtype=torch.float64))
    for q, v in zip(quantiles, qs):
        out[f'q{q:g}'] = float(v)
    out['frac_near_0'] = float((b < band).double().mean())
    out['frac_near_1'] = float(((b - 1).abs() < band).double().mean())
    out['frac_above_1'] = float((b > 1).double().mean())
    hist = torch.histc(b.clamp(0.0, 2.0), bins=bins, min=0.0, max=2.0)
    out['hist'] = [int(c) for c in hist]
    out['bin_edges'] = [2.0 * i / bins for i in range(bins + 1)]
    return out


def find_beta_modules(model: torch.nn.Module) -> List[tuple]:
    r"""Modules with a non-:obj:`None` tensor attribute :obj:`last_beta`, as
    :obj:`(qualified_name, module)` in :obj:`model.named_modules()` order."""
    found = []
    for name, module in model.named_modules():
        beta = getattr(module, 'last_beta', None)
        if isinstance(beta, Tensor):
            found.append((name, module))
    return found


def beta_audit(model: torch.nn.Module,
               **kwargs: Any) -> List[Dict[str, Any]]:
    r"""Tidy β-audit records of every delta layer of :obj:`model`.

    The :math:`l`-th module (1-based, in :obj:`model.modules()` order) with a
    :obj:`last_beta` tensor gives one record per statistic of
    :func:`beta_summary`: :obj:`{'layer': l, 'module': name,
    'metric': 'beta_<stat>', 'value': ...}`; the histogram record
    (:obj:`'beta_hist'`) has a list value and a :obj:`'bin_edges'` key.

    Args:
        model (torch.nn.Module): Model after a forward pass.
        **kwargs: Passed to :func:`beta_summary`.
    """
    records: List[Dict[str, Any]] = []
    for layer, (name, module) in enumerate(find_beta_modules(model), 1):
        stats = beta_summary(module.last_beta, **kwargs)
        edges = stats.pop('bin_edges')
        for key, value in stats.items():
            rec = {'layer': layer, 'module': name, 'metric': f'beta_{key}',
                   'value': value}
            if key == 'hist':
                rec['bin_edges'] = edges
            records.append(rec)
    return records
