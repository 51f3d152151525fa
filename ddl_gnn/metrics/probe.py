r"""A forward-hook probe that records each layer's state of a GNN and turns
it into tidy metric records."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.nn import Module, ModuleList
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.models import DeepGCNLayer

from .beta_audit import beta_audit
from .mad_gap import mad_gap
from .rank import effective_rank, numerical_rank
from .signal import representation_norm
from .smoothing import (dirichlet_energy, mad, normalized_dirichlet_energy,
                        relative_dirichlet_energy)

MetricFn = Callable[[Tensor, Tensor, Optional[Tensor], Optional[Tensor]],
                    Tensor]

#: Metrics known to :meth:`LayerProbe.records`, as
#: ``fn(x, edge_index, edge_weight, batch)``.
METRICS: Dict[str, MetricFn] = {
    'dirichlet_energy': dirichlet_energy,
    'relative_dirichlet_energy': relative_dirichlet_energy,
    'normalized_dirichlet_energy': normalized_dirichlet_energy,
    'mad': lambda x, ei, ew, b: mad(x, ei, batch=b),
    'mad_gap': lambda x, ei, ew, b: mad_gap(x, ei, batch=b),
    'numerical_rank': lambda x, ei, ew, b: numerical_rank(x, b),
    'effective_rank': lambda x, ei, ew, b: effective_rank(x, b),
    'norm': lambda x, ei, ew, b: representation_norm(x, b),
}
#: Metrics computed when none are named (all but the costlier MADGap and
#: the normalized energy).
DEFAULT_METRICS = ('dirichlet_energy', 'relative_dirichlet_energy', 'mad',
                   'numerical_rank', 'effective_rank', 'norm')


def resolve_layers(model: Module, modules: Optional[Sequence[Module]] = None
                   ) -> List[Tuple[int, str, Module]]:
    r"""The modules a :class:`LayerProbe` hooks, as :obj:`(layer, name,
    module)`. Rules, first match wins:

    1. :obj:`modules` given: layers :math:`1..L` in that order.
    2. :obj:`model.layers` is a :class:`~torch.nn.ModuleList` (ddl_gnn
       models): :obj:`model.encoder` (if present) is layer 0, the blocks are
       layers :math:`1..L`.
    3. :obj:`model.convs` is a :class:`~torch.nn.ModuleList` (PyG
       :class:`BasicGNN`, GCNII-style stacks): the convs are layers
       :math:`1..L`.
    4. Top-level children that are :class:`MessagePassing` or
       :class:`DeepGCNLayer`, in registration order, are layers :math:`1..L`.
    """
    names = {id(m): n for n, m in model.named_modules()}
    found: List[Tuple[int, str, Module]] = []
    if modules is not None:
        mods = list(modules)
    elif isinstance(getattr(model, 'layers', None), ModuleList):
        encoder = getattr(model, 'encoder', None)
        if isinstance(encoder, Module):
            found.append((0, names.get(id(encoder), 'encoder'), encoder))
        mods = list(model.layers)
    elif isinstance(getattr(model, 'convs', None), ModuleList):
        mods = list(model.convs)
    else:
        mods = [m for m in model.children()
                if isinstance(m, (MessagePassing, DeepGCNLayer))]
    if not mods:
        raise ValueError("could not find layers to probe in 'model': give "
                         "'modules=' or a model with 'layers' or 'convs'")
    for i, m in enumerate(mods, 1):
        found.append((i, names.get(id(m), f'modules.{i - 1}'), m))
    return found


class LayerProbe:
    r"""Records the state :math:`\mathbf{X}^l` after each layer of a model
    and, when a loss is back-propagated, :math:`\|\partial\mathcal{L} /
    \partial \mathbf{X}^l\|_F`.

    .. code-block:: python

        with LayerProbe(model) as probe:
            out = model(x, edge_index)
            loss = criterion(out[train_mask], y[train_mask])
            loss.backward()        # or: probe.gradient_norms(loss)
        records = probe.records(edge_index) + probe.beta_audit()

    Which modules are hooked is decided by :func:`resolve_layers`. The state
    of layer :math:`l \ge 1` is the hooked module's output (the first element
    if it returns a tuple; for a PyG :class:`BasicGNN` this is the conv
    output before norm/activation/dropout). Layer 0 is the encoder output if
    the model has one, otherwise the first positional input of layer 1 (the
    features entering the stack). If a module runs several times in one
    forward pass, the last call wins; a module that never runs gives no
    records.

    **3-D states** :math:`[N, d, d_v]` are reduced to :math:`[N, d]` with
    :obj:`module.read_state(X)` if the hooked module defines
    :obj:`read_state`, else by the mean over the last dim; the gradient norm
    is always that of the full (unreduced) output.

    States are stored detached and, with :obj:`clone=True`, copied (a later
    in-place op of the model cannot alter them); this costs one
    :math:`N \times d` copy per layer. For gradient norms the raw outputs are
    kept referenced until :meth:`clear`.

    Args:
        model (torch.nn.Module): The model to probe.
        modules (Sequence[torch.nn.Module], optional): Explicit layer
            modules. (default: :obj:`None`)
        track_grad (bool, optional): Register tensor hooks that record
            gradient norms on backward. (default: :obj:`True`)
        clone (bool, optional): Copy stored states. (default: :obj:`True`)
    """
    def __init__(self, model: Module,
                 modules: Optional[Sequence[Module]] = None,
                 track_grad: bool = True, clone: bool = True) -> None:
        self.model = model
        self.layers = resolve_layers(model, modules)
        self.track_grad = track_grad
        self.clone = clone
        self.names: Dict[int, str] = {l: n for l, n, _ in self.layers}
        self._handles: List[Any] = []
        self.clear()
        self.attach()

    # hooks --------------------------------------------------------------
    def attach(self) -> 'LayerProbe':
        r"""Registers the forward hooks (done by the constructor)."""
        if self._handles:
            return self
        for layer, _, module in self.layers:
            self._handles.append(module.register_forward_hook(
                self._make_hook(layer)))
        if self.layers[0][0] == 1:  # no encoder: layer 0 = stack input
            self.names[0] = 'input'
            self._handles.append(self.layers[0][2].register_forward_pre_hook(
                self._input_hook))
        return self

    def remove(self) -> None:
        r"""Removes the module hooks; recorded values are kept."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def clear(self) -> None:
        r"""Forgets recorded states, gradient norms and raw outputs."""
        self._states: Dict[int, Tensor] = {}
        self._raw: Dict[int, Tensor] = {}
        self._grads: Dict[int, float] = {}

    def __enter__(self) -> 'LayerProbe':
        return self.attach()

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def _store(self, layer: int, module: Optional[Module], out: Any) -> None:
        if isinstance(out, (tuple, list)):
            out = out[0] if len(out) > 0 else None
        if not isinstance(out, Tensor) or out.dim() not in (2, 3):
            return
        with torch.no_grad():
            state = out.detach()
            if state.dim() == 3:
                read = getattr(module, 'read_state', None)
                state = read(state) if callable(read) else state.mean(-1)
            elif self.clone:
                state = state.clone()
        self._states[layer] = state.detach()
        if self.track_grad and out.requires_grad and torch.is_grad_enabled():
            self._raw[layer] = out

            def _grad_hook(grad: Tensor, layer: int = layer) -> None:
                self._grads[layer] = float(grad.detach().norm())

            out.register_hook(_grad_hook)

    def _make_hook(self, layer: int) -> Callable:
        def hook(module: Module, args: Any, output: Any) -> None:
            self._store(layer, module, output)
        return hook

    def _input_hook(self, module: Module, args: Any) -> None:
        if args:
            self._store(0, None, args[0])

    # results ------------------------------------------------------------
    @property
    def states(self) -> Dict[int, Tensor]:
        r"""Recorded (reduced, detached) states by layer."""
        return dict(sorted(self._states.items()))

    def gradient_norms(self, loss: Tensor,
                       retain_graph: bool = False) -> Dict[int, float]:
        r"""Computes :math:`\|\partial\mathcal{L}/\partial\mathbf{X}^l\|_F`
        for the recorded layers with :func:`torch.autograd.grad` (parameter
        :obj:`.grad` fields are not touched) and stores them."""
        layers = sorted(self._raw)
        if not layers:
            raise RuntimeError('no differentiable layer outputs were recorded;'
                               ' run the forward pass with grad enabled')
        grads = torch.autograd.grad(loss, [self._raw[l] for l in layers],
                                    retain_graph=retain_graph,
                                    allow_unused=True)
        for l, g in zip(layers, grads):
            self._grads[l] = 0.0 if g is None else float(g.detach().norm())
        return dict(sorted(self._grads.items()))

    def records(self, edge_index: Tensor,
                metrics: Sequence[str] = DEFAULT_METRICS,
                edge_weight: Optional[Tensor] = None,
                batch: Optional[Tensor] = None) -> List[Dict[str, Any]]:
        r"""Tidy records :obj:`{'layer', 'module', 'metric', 'value'}` (JSON
        ready: :obj:`int`, :obj:`str`, :obj:`str`, :obj:`float`) of each
        metric on each recorded layer, then one :obj:`'grad_norm'` record per
        layer whose gradient was recorded.

        Args:
            edge_index (torch.Tensor): The graph the states live on.
            metrics (Sequence[str], optional): Names from :obj:`METRICS`.
                (default: :obj:`DEFAULT_METRICS`)
            edge_weight (torch.Tensor, optional): Edge weights for the
                energies. (default: :obj:`None`)
            batch (torch.Tensor, optional): Graph assignment (per-graph
                values, averaged). (default: :obj:`None`)

        A layer whose state holds NaN/Inf (a diverged stack) gets NaN
        values instead of the metrics' input error.
        """
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown 'metrics' {unknown}; choose from "
                             f'{sorted(METRICS)}')
        out: List[Dict[str, Any]] = []
        for layer, state in sorted(self._states.items()):
            # A diverged stack (states overflowing to Inf/NaN) is an
            # observation, not bad input: its metrics are recorded as NaN.
            finite = bool(torch.isfinite(state).all())
            for name in metrics:
                value = (METRICS[name](state, edge_index, edge_weight, batch)
                         if finite else float('nan'))
                out.append({'layer': layer, 'module': self.names[layer],
                            'metric': name, 'value': float(value)})
        for layer, value in sorted(self._grads.items()):
            out.append({'layer': layer, 'module': self.names[layer],
                        'metric': 'grad_norm', 'value': float(value)})
        return out

    def beta_audit(self, **kwargs: Any) -> List[Dict[str, Any]]:
        r"""β audit of the probed model; see
        :func:`ddl_gnn.metrics.beta_audit`."""
        return beta_audit(self.model, **kwargs)


def probe_model(model: Module, data: Any,
                loss_fn: Optional[Callable[[Any, Any], Tensor]] = None,
                metrics: Sequence[str] = DEFAULT_METRICS,
                modules: Optional[Sequence[Module]] = None,
                forward_fn: Optional[Callable[[Module, Any], Any]] = None,
                edge_weight: Optional[Tensor] = None,
                beta: bool = True) -> List[Dict[str, Any]]:
    r"""Runs one forward pass (and, if :obj:`loss_fn` is given, one gradient
    computation) under a :class:`LayerProbe` and returns its records, plus
    the β audit if :obj:`beta`. The model's train/eval mode is left as is;
    parameter :obj:`.grad` fields are not modified.

    Args:
        model (torch.nn.Module): The model.
        data (torch_geometric.data.Data): Graph with :obj:`x`,
            :obj:`edge_index` and optionally :obj:`batch` (then metrics are
            per-graph averages).
        loss_fn (callable, optional): :obj:`loss_fn(out, data)` returning a
            scalar; enables :obj:`'grad_norm'` records. (default: :obj:`None`)
        metrics (Sequence[str], optional): Metric names.
            (default: :obj:`DEFAULT_METRICS`)
        modules (Sequence[torch.nn.Module], optional): Explicit layers.
            (default: :obj:`None`)
        forward_fn (callable, optional): :obj:`forward_fn(model, data)`
            (default: :obj:`model(data.x, data.edge_index)`)
        edge_weight (torch.Tensor, optional): Edge weights for the energies.
            (default: :obj:`None`)
        beta (bool, optional): Append the β audit. (default: :obj:`True`)
    """
    if forward_fn is None:
        def forward_fn(m: Module, d: Any) -> Any:
            return m(d.x, d.edge_index)
    batch = getattr(data, 'batch', None)
    with LayerProbe(model, modules=modules) as probe:
        with torch.set_grad_enabled(loss_fn is not None):
            out = forward_fn(model, data)
            if loss_fn is not None:
                probe.gradient_norms(loss_fn(out, data))
    records = probe.records(data.edge_index, metrics, edge_weight, batch)
    if beta:
        records += probe.beta_audit()
    probe.clear()
    return records
