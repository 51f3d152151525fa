r"""Mini-batches of small graphs gathered from one pre-collated batch.

PyG's :class:`~torch_geometric.loader.DataLoader` builds every mini-batch in
Python (``Batch.from_data_list`` over ``batch_size`` ``Data`` objects, then a
host-to-device copy): 0.17 s of a 1.9 s ogbg-molbbbp training epoch at
depth 4 on one CPU core (``benchmarks/results/perf_graph_loader.json``), and
a larger share on a GPU, where the model step takes milliseconds.

:class:`GatherGraphLoader` collates the whole split once, keeps it on the
target device, and cuts each mini-batch out of it with a few index
operations. Its batches are *the same* as the DataLoader's: the same random
draws from the same ``generator`` (what
:class:`torch.utils.data.DataLoader` draws with ``num_workers=0``: an
``int64`` seed per pass and, when shuffling, two ``randperm``), the same
graph order and identical tensors (``x``, ``edge_index`` with its per-graph
offsets, ``edge_attr``, ``y``, ``batch``, ``ptr``). A run therefore trains
identically with either loader, and its checkpointed generator state means
the same thing.
``tests/experiment/test_graph_loader.py`` checks that against PyG's
DataLoader on the real ogbg-molbbbp and on generated graphs.

The batches are for forward passes: they carry no ``_slice_dict``, so
``Batch.to_data_list`` is not available on them.
"""
from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Sequence

import torch
from torch import Tensor


def _segment_index(starts: Tensor, sizes: Tensor) -> Tensor:
    """``cat([arange(s, s + n) for s, n in zip(starts, sizes)])`` without a
    Python loop."""
    total = int(sizes.sum())
    offsets = torch.cumsum(sizes, 0) - sizes  # where each segment lands
    shift = torch.repeat_interleave(starts - offsets, sizes,
                                    output_size=total)
    return torch.arange(total, device=sizes.device) + shift


class GatherGraphLoader:
    r"""Iterates mini-batches of a graph dataset like
    ``torch_geometric.loader.DataLoader(dataset, batch_size, shuffle,
    generator=generator)`` (``drop_last=False``, no workers), with batches
    cut from one pre-collated :class:`~torch_geometric.data.Batch`.

    Args:
        dataset: a sequence of :class:`~torch_geometric.data.Data` graphs
            (an ``InMemoryDataset`` or a slice of one, a ``ConcatDataset``,
            a list).
        batch_size (int): graphs per mini-batch (the last may be smaller).
        shuffle (bool): a new random order every pass.
        generator (torch.Generator, optional): the CPU generator the order
            is drawn from; it advances exactly as under the DataLoader.
            Without one the global RNG is used (then the order is not the
            DataLoader's, which seeds a private generator from it).
        device (torch.device or str, optional): where the collated split
            lives and the batches are made (default: CPU).

    Shapes:
        - **output:** ``Batch`` objects with every tensor attribute of the
          graphs plus ``batch`` :math:`(|\mathcal{V}_b|)` and ``ptr``
          :math:`(B + 1)`; ``num_graphs`` is :math:`B`.

    Raises ``ValueError`` for an empty dataset, a non-positive batch size,
    graphs whose node count PyG cannot infer, and attributes it cannot cut
    (non-tensor values, or increments other than the node count, e.g. a
    custom ``__inc__``): use PyG's DataLoader for those.
    """

    def __init__(self, dataset: Sequence, batch_size: int,
                 shuffle: bool = False,
                 generator: Optional[torch.Generator] = None,
                 device: Optional[torch.device | str] = None):
        from torch_geometric.data import Batch
        if int(batch_size) < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        graphs = [dataset[i] for i in range(len(dataset))]
        if not graphs:
            raise ValueError('GatherGraphLoader got an empty dataset')
        whole = Batch.from_data_list(graphs)
        if getattr(whole, 'ptr', None) is None:
            raise ValueError('GatherGraphLoader needs graphs whose node '
                             'count PyG can infer (x or num_nodes)')
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.generator = generator
        self.device = torch.device(device) if device is not None else \
            torch.device('cpu')
        self.num_graphs = len(graphs)
        node_ptr = whole.ptr
        self._tensors: Dict[str, Tensor] = {}
        # Keys with equal slices (x and other node attributes; edge_index and
        # edge_attr) share one entry, so a batch computes each index once.
        self._slices: List[Tensor] = []
        self._slice_of: Dict[str, int] = {}
        self._cat_dims: Dict[str, int] = {}
        self._incremented: Dict[str, bool] = {}
        for key in whole.keys():
            if key in ('batch', 'ptr', 'num_nodes'):
                continue
            value = whole[key]
            if not isinstance(value, Tensor) or value.is_sparse:
                raise ValueError(
                    f"GatherGraphLoader cannot cut attribute '{key}' "
                    f"({type(value).__name__}); use "
                    f"torch_geometric.loader.DataLoader")
            inc = whole._inc_dict[key]
            incremented = inc is not None and bool((inc != 0).any())
            if incremented and not torch.equal(inc, node_ptr[:-1]):
                raise ValueError(
                    f"GatherGraphLoader supports attributes incremented by "
                    f"the node count only; '{key}' is incremented otherwise "
                    f"(custom __inc__); use torch_geometric.loader.DataLoader")
            cat_dim = graphs[0].__cat_dim__(key, graphs[0][key])
            self._cat_dims[key] = 0 if cat_dim is None else int(cat_dim) % \
                max(value.dim(), 1)
            self._tensors[key] = value.to(self.device)
            sl = whole._slice_dict[key].to(self.device)
            same = [i for i, t in enumerate(self._slices)
                    if torch.equal(t, sl)]
            if not same:
                self._slices.append(sl)
            self._slice_of[key] = same[0] if same else len(self._slices) - 1
            self._incremented[key] = incremented
        self._node_ptr = node_ptr.to(self.device)

    def __len__(self) -> int:
        return -(-self.num_graphs // self.batch_size)

    def __iter__(self) -> Iterator:
        # The draws of torch's DataLoader (num_workers=0), in its order: a
        # base seed when the iterator is made; with shuffling, RandomSampler
        # draws a randperm for the pass and a second one (for the empty
        # remainder, ``num_samples % n``) once it is exhausted, which
        # BatchSampler reaches before a partial last batch, or on the call
        # after a full one.
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        return self._batches()

    def in_order(self, batch_size: Optional[int] = None) -> Iterator:
        """The batches in dataset order, without the random draws of
        ``iter``: scoring the training graphs leaves the training stream
        (and so every later shuffle) as it was. ``batch_size`` overrides the
        loader's for this pass (evaluation can take larger batches than
        training)."""
        size = self.batch_size if batch_size is None else int(batch_size)
        if size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        ids = torch.arange(self.num_graphs, device=self.device)
        for chunk in ids.split(size):
            yield self._gather(chunk)

    def _batches(self) -> Iterator:
        gen = self.generator
        if self.shuffle:
            order = torch.randperm(self.num_graphs, generator=gen)
        else:
            order = torch.arange(self.num_graphs)
        chunks = order.to(self.device).split(self.batch_size)
        partial = self.num_graphs % self.batch_size != 0
        for i, ids in enumerate(chunks):
            if self.shuffle and partial and i == len(chunks) - 1:
                torch.randperm(self.num_graphs, generator=gen)
            yield self._gather(ids)
        if self.shuffle and not partial:
            torch.randperm(self.num_graphs, generator=gen)

    def _gather(self, ids: Tensor):
        from torch_geometric.data import Batch
        node_start = self._node_ptr[ids]
        node_sizes = self._node_ptr[ids + 1] - node_start
        new_node_start = torch.cumsum(node_sizes, 0) - node_sizes
        segments = []               # (index, sizes) per distinct slices
        for slices in self._slices:
            start = slices[ids]
            sizes = slices[ids + 1] - start
            segments.append((_segment_index(start, sizes), sizes))
        out = {}
        for key, value in self._tensors.items():
            index, sizes = segments[self._slice_of[key]]
            part = value.index_select(self._cat_dims[key], index)
            if self._incremented[key]:
                # Local indices move from the graph's place in the whole
                # split to its place in this batch.
                shift = torch.repeat_interleave(new_node_start - node_start,
                                                sizes,
                                                output_size=part.size(
                                                    self._cat_dims[key]))
                shape = [1] * part.dim()
                shape[self._cat_dims[key]] = -1
                part = part + shift.view(shape)
            out[key] = part
        num_graphs = ids.numel()
        total = int(node_sizes.sum())
        out['batch'] = torch.repeat_interleave(
            torch.arange(num_graphs, device=ids.device), node_sizes,
            output_size=total)
        out['ptr'] = torch.cat([node_sizes.new_zeros(1),
                                torch.cumsum(node_sizes, 0)])
        batch = Batch(**out)
        batch.num_nodes = total
        batch._num_graphs = num_graphs
        return batch
