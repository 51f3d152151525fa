"""Data-parallel training (2 gloo ranks on CPU) equals one process training
on the same global batches.

Tolerance: parameters agree to ``atol=1e-5`` after 3 epochs of Adam; the
only difference is the float summation order of the gradient (two partial
sums all-reduced vs one backward over both pieces).
"""
import os
import socket
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ddl_gnn.experiment.config import RunConfig

ATOL = 1e-5
WORLD = 2
LOADERS = ('random', 'full')


def _cfg(loader: str) -> RunConfig:
    # 400 nodes, batch 96 -> 5 partitions: steps of 2, 2 and 1 partitions,
    # so the last step exercises the zero-loss filler piece on rank 1.
    return RunConfig(dataset='csbm', model='delta', depth=3, hidden=16,
                     dropout=0.0, epochs=3, patience=None, loader=loader,
                     batch_size=96, measure=False, lr=0.01,
                     dataset_kwargs=dict(num_nodes=400))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=WORLD)
    try:
        from ddl_gnn.experiment.distributed import fit_distributed
        for loader in LOADERS:
            res = fit_distributed(_cfg(loader), rank, WORLD)
            torch.save(dict(state=res.model.state_dict(),
                            history=res.best['history']),
                       os.path.join(out, f'{loader}{rank}.pt'))
        model = _model_grads(_cfg('random'), rank)
        torch.save({n: p.grad for n, p in model.named_parameters()},
                   os.path.join(out, f'grads{rank}.pt'))
    finally:
        dist.destroy_process_group()


def _model_grads(cfg, rank=None):
    """Gradient of the first global step (Adam hides a uniform gradient
    scale, so the loss normalisation is checked on the gradient itself)."""
    from torch.nn.parallel import DistributedDataParallel
    from torch_geometric import seed_everything

    from ddl_gnn.experiment.distributed import global_steps
    from ddl_gnn.experiment.runner import load, make_model
    ds = load(cfg)
    seed_everything(cfg.seed)
    model = make_model(cfg, ds)
    net = model if rank is None else DistributedDataParallel(model)
    pieces, scale = next(iter(global_steps(
        ds, cfg, WORLD, None if rank is None else [rank])(0)))
    loss = 0.0
    for g, idx in pieces:
        out = net(g.x, g.edge_index)
        loss = loss + scale * torch.nn.functional.cross_entropy(
            out[idx], g.y[idx], reduction='sum')
    loss.backward()
    return model


def _reference(loader: str):
    from torch_geometric import seed_everything

    from ddl_gnn.experiment.distributed import global_steps
    from ddl_gnn.experiment.runner import load, make_model, make_optimizer
    from ddl_gnn.experiment.train import fit_node
    cfg = _cfg(loader)
    ds = load(cfg)
    seed_everything(cfg.seed)
    model = make_model(cfg, ds)
    opt = make_optimizer(cfg, model)
    best = fit_node(model, ds, cfg, opt, progress=False,
                    steps=global_steps(ds, cfg, WORLD, ranks=None))
    return model.state_dict(), best['history']


@pytest.fixture(scope='module')
def spawned():
    """One 2-rank launch trains every loader (process start-up dominates)."""
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_worker, args=(_free_port(), out), nprocs=WORLD, join=True)
        yield {key: [torch.load(os.path.join(out, f'{key}{r}.pt'))
                     for r in range(WORLD)] for key in LOADERS + ('grads',)}


@pytest.mark.parametrize('loader', LOADERS)
def test_two_ranks_equal_one_process(spawned, loader):
    ranks = spawned[loader]
    state, history = _reference(loader)
    assert len(ranks[0]['history']) == len(history) == 3
    for name, ref in state.items():
        for r in ranks:  # every rank holds the same (reference) weights
            torch.testing.assert_close(r['state'][name], ref, atol=ATOL,
                                       rtol=0, msg=name)
    for h_dist, h_ref in zip(ranks[0]['history'], history):
        assert h_dist['loss'] == pytest.approx(h_ref['loss'], abs=1e-5)
        assert h_dist['valid'] == pytest.approx(h_ref['valid'])


def test_gradient_is_global_batch_gradient(spawned):
    """DDP's average of the ranks' gradients = gradient of the global
    batch's mean loss (each rank scales its summed loss by W / n)."""
    ref = _model_grads(_cfg('random'))
    for grads in spawned['grads']:
        for name, p in ref.named_parameters():
            torch.testing.assert_close(grads[name], p.grad, atol=1e-6,
                                       rtol=1e-5, msg=name)


def test_global_steps_shard_partitions():
    """Rank r takes partitions r, r + W, ... of one shared permutation."""
    from ddl_gnn.experiment.distributed import (global_steps,
                                                random_partitions)
    from ddl_gnn.experiment.runner import load
    cfg = _cfg('random')
    ds = load(cfg)
    parts = random_partitions(ds.data.num_nodes, cfg.batch_size, cfg.seed, 0)
    assert len(parts) == 5
    assert torch.equal(torch.cat(parts).sort().values,
                       torch.arange(ds.data.num_nodes))
    per_rank = [list(global_steps(ds, cfg, WORLD, [r])(0))
                for r in range(WORLD)]
    assert [len(s) for s in per_rank] == [3, 3]
    train = set(ds.split['train'].tolist())
    seen = []
    for s, (pieces0, scale0) in enumerate(per_rank[0]):
        pieces1, scale1 = per_rank[1][s]
        assert scale0 == scale1  # W / global count, same on both ranks
        for r, (sub, idx) in enumerate(pieces0 + pieces1):
            if s * WORLD + r < len(parts):
                assert torch.equal(sub.x, ds.data.x[parts[s * WORLD + r]])
                seen += parts[s * WORLD + r][idx].tolist()
            else:
                assert idx.numel() == 0  # filler
    assert sorted(seen) == sorted(train)
