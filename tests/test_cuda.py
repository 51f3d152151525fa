"""The same numbers on a GPU as on the CPU (skipped without CUDA).

CI has no GPU; these run on a GPU machine (study/tools/gpu_sweeps.sh runs
them beside its sweeps). The CPU float64 results are the oracle: the fast op, the
fused GCN path, checkpointing and a whole training run must agree."""
import json

import pytest
import torch

from ddl_gnn.models import build_model
from ddl_gnn.ops import (delta_update, delta_update_read,
                         delta_update_reference)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='needs a CUDA device')
CUDA = torch.device('cuda')


def _inputs(N=257, d=33, d_v=3, dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(N, d, d_v, generator=g, dtype=dtype),
            torch.randn(N, d, generator=g, dtype=dtype),
            2 * torch.rand(N, generator=g, dtype=dtype),
            torch.randn(N, d_v, generator=g, dtype=dtype))


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('d_v', [1, 4])
def test_delta_update_gradients_match_cpu_reference(dtype, d_v):
    cpu = [t.requires_grad_() for t in _inputs(d_v=d_v, dtype=dtype)]
    gpu = [t.detach().to(CUDA).requires_grad_() for t in cpu]
    ref = delta_update_reference(*cpu)
    out = delta_update(*gpu)
    w = torch.randn_like(ref)
    grads_ref = torch.autograd.grad((ref * w).sum(), cpu)
    grads = torch.autograd.grad((out * w.to(CUDA)).sum(), gpu)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else {}
    torch.testing.assert_close(out.cpu(), ref.detach(), **tol)
    for name, a, b in zip('xkbv', grads, grads_ref):
        torch.testing.assert_close(a.cpu(), b, **tol, msg=name)


def test_delta_update_read_matches_cpu_kernel():
    """The GPU runs the composition update -> compress; the CPU the fused
    kernel (when built): same outputs and gradients in float64."""
    cpu = list(_inputs(d_v=4)) + [torch.randn(33, 4, dtype=torch.float64)]
    cpu = [t.requires_grad_() for t in cpu]
    gpu = [t.detach().to(CUDA).requires_grad_() for t in cpu]
    outs_c, outs_g = delta_update_read(*cpu), delta_update_read(*gpu)
    cots = [torch.randn_like(o) for o in outs_c]
    gc = torch.autograd.grad(outs_c, cpu, cots)
    gg = torch.autograd.grad(outs_g, gpu, [c.to(CUDA) for c in cots])
    for a, b in zip(list(outs_g) + list(gg), list(outs_c) + list(gc)):
        torch.testing.assert_close(a.detach().cpu(), b.detach(), rtol=1e-10,
                                   atol=1e-10)


@pytest.mark.parametrize('name,kwargs', [
    ('delta', {}), ('delta', dict(d_v=4)), ('delta-write-only', {}),
    ('res+', {}), ('gcnii', {}), ('g2', {}), ('res', {}), ('plain', {})])
@pytest.mark.parametrize('checkpoint', [False, True])
def test_model_forward_backward_match_cpu(name, kwargs, checkpoint):
    g = torch.Generator().manual_seed(1)
    N, E = 300, 1500
    x = torch.randn(N, 16, generator=g, dtype=torch.float64)
    ei = torch.randint(0, N, (2, E), generator=g)
    torch.manual_seed(0)
    model = build_model(name, 16, 32, 8, 5, dropout=0.0,
                        checkpoint=checkpoint, **kwargs).double()
    gpu_model = build_model(name, 16, 32, 8, 5, dropout=0.0,
                            checkpoint=checkpoint, **kwargs).double().to(CUDA)
    gpu_model.load_state_dict(model.state_dict())
    out = model(x, ei)
    out.square().sum().backward()
    out_gpu = gpu_model(x.to(CUDA), ei.to(CUDA))
    out_gpu.square().sum().backward()
    torch.testing.assert_close(out_gpu.cpu(), out, rtol=1e-9, atol=1e-9)
    for (n, p), q in zip(model.named_parameters(), gpu_model.parameters()):
        if p.grad is None:
            assert q.grad is None or not q.grad.any(), n
            continue
        torch.testing.assert_close(q.grad.cpu(), p.grad, rtol=1e-8,
                                   atol=1e-9, msg=n)


@pytest.mark.parametrize('name', ['delta', 'res+', 'gcnii'])
def test_sparse_adj_t_on_cuda_matches_cpu_edge_index(name):
    """adj='csr' (the heterophilous configs): the CUDA sparse product and
    normalisation give the CPU edge_index model, self-loops included."""
    from ddl_gnn.nn.adjacency import to_adj_t
    g = torch.Generator().manual_seed(2)
    N = 300
    ei = torch.randint(0, N, (2, 1500), generator=g)
    ei = torch.cat([ei, torch.arange(5).repeat(2, 1)], 1)  # unit loops
    x = torch.randn(N, 16, generator=g, dtype=torch.float64)
    torch.manual_seed(0)
    model = build_model(name, 16, 32, 8, 5, dropout=0.0).double()
    out = model(x, ei)
    out.square().sum().backward()
    grads = [None if p.grad is None else p.grad.clone()
             for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    model.to(CUDA)
    out_gpu = model(x.to(CUDA), to_adj_t(ei, None, N).to(CUDA))
    out_gpu.square().sum().backward()
    torch.testing.assert_close(out_gpu.cpu(), out, rtol=1e-9, atol=1e-9)
    for p, want in zip(model.parameters(), grads):
        if want is None:
            assert p.grad is None or not p.grad.any()
            continue
        torch.testing.assert_close(p.grad.cpu(), want, rtol=1e-8, atol=1e-9)


def test_training_run_on_cuda_stamps_the_device(tmp_path):
    from ddl_gnn.cli import main
    csbm = {'num_nodes': 400, 'num_classes': 3, 'num_features': 8}
    args = ['--dataset', 'csbm', '--model', 'delta', '--depth', '4',
            '--epochs', '30', '--hidden', '16', '--dataset-kwargs',
            json.dumps(csbm)]
    assert main(['train', *args, '--device', 'cuda',
                 '--out', str(tmp_path / 'gpu')]) == 0
    assert main(['train', *args, '--out', str(tmp_path / 'cpu')]) == 0
    gpu = json.loads((tmp_path / 'gpu' / 'results.jsonl').read_text())
    cpu = json.loads((tmp_path / 'cpu' / 'results.jsonl').read_text())
    assert gpu['device'].startswith('cuda') and cpu['device'] == 'cpu'
    assert gpu['key'] == cpu['key']
    # Same seed, same data: the runs differ only by float reduction order.
    assert abs(gpu["test"] - cpu["test"]) < 0.1
    assert gpu['per_layer'] and all(
        torch.isfinite(torch.tensor(p['dirichlet_energy']))
        for p in gpu['per_layer'])


def test_checkpointed_run_resumes_on_cuda_and_moves_to_cpu(tmp_path,
                                                          monkeypatch):
    """Cut a CUDA run after epoch 5, resume it on CUDA (its CUDA random
    stream restored: the dropout masks, hence the loss curve, continue as
    uninterrupted up to float reduction order) and on the CPU (the
    optimizer state moves with it)."""
    import shutil
    from ddl_gnn.experiment.checkpoint import RunCheckpoint
    from ddl_gnn.experiment.config import RunConfig
    from ddl_gnn.experiment.runner import run
    cfg = RunConfig('csbm', 'delta', 4, hidden=16, epochs=12, patience=None,
                    dataset_kwargs={'num_nodes': 400, 'num_classes': 3,
                                    'num_features': 8})
    whole = run(cfg, out=str(tmp_path / 'whole'), progress=False,
                device='cuda')
    real = RunCheckpoint.save

    class Cut(Exception):
        pass

    def save(self, state):
        real(self, state)
        if state['epoch'] == 5:
            raise Cut
    with monkeypatch.context() as m:
        m.setattr(RunCheckpoint, 'save', save)
        with pytest.raises(Cut):
            run(cfg, out=str(tmp_path / 'a'), progress=False, device='cuda',
                checkpoint_every=0)
    shutil.copytree(tmp_path / 'a', tmp_path / 'b')
    again = run(cfg, out=str(tmp_path / 'a'), progress=False, device='cuda',
                checkpoint_every=0)
    assert again['resumed'] == [5] and again['epochs_run'] == 12
    torch.testing.assert_close(torch.tensor(again['loss_curve']),
                               torch.tensor(whole['loss_curve']),
                               rtol=1e-3, atol=1e-4)
    moved = run(cfg, out=str(tmp_path / 'b'), progress=False, device='cpu',
                checkpoint_every=0)
    assert moved['resumed'] == [5] and moved['device'] == 'cpu'
    assert again['segment_devices'] == ['cuda', 'cuda']
    assert moved['segment_devices'] == ['cuda', 'cpu']
    assert moved['loss_curve'][:5] == again['loss_curve'][:5]
    assert all(torch.isfinite(torch.tensor(moved['loss_curve'])))


def _same_run_on_cuda_and_cpu(cfg, tmp_path):
    """Runs ``cfg`` on the GPU and on the CPU; without dropout and with the
    same batches, the loss curves agree up to float reduction order."""
    pytest.importorskip('ogb')
    from ddl_gnn.experiment.runner import run
    gpu = run(cfg, out=str(tmp_path / 'gpu'), progress=False, device='cuda')
    cpu = run(cfg, out=str(tmp_path / 'cpu'), progress=False)
    assert gpu['device'].startswith('cuda') and cpu['device'] == 'cpu'
    torch.testing.assert_close(torch.tensor(gpu['loss_curve']),
                               torch.tensor(cpu['loss_curve']),
                               rtol=1e-3, atol=1e-4)
    assert abs(gpu['valid'] - cpu['valid']) < 0.02


def test_link_run_on_cuda_matches_cpu(data_root, tmp_path):
    """ogbl-ddi on the GPU draws the same batches and negatives as on the
    CPU (one CPU generator)."""
    from ddl_gnn.experiment.config import RunConfig
    _same_run_on_cuda_and_cpu(
        RunConfig('ogbl-ddi', 'delta', 2, hidden=8, epochs=3,
                  batch_size=2 ** 19, lr=0.01, dropout=0.0, patience=None),
        tmp_path)


def test_graph_batches_cut_on_cuda_equal_pyg_dataloader():
    """GatherGraphLoader on the GPU: the CPU DataLoader's batches, moved."""
    from torch_geometric.data import Data
    from torch_geometric.loader import DataLoader

    from ddl_gnn.experiment.graph_loader import GatherGraphLoader
    g = torch.Generator().manual_seed(0)
    graphs = []
    for n in torch.randint(1, 9, (37,), generator=g).tolist():
        e = int(torch.randint(0, 15, (1,), generator=g))
        graphs.append(Data(x=torch.randn(n, 4, generator=g),
                           edge_index=torch.randint(0, n, (2, e), generator=g),
                           edge_attr=torch.randn(e, 2, generator=g),
                           y=torch.rand(1, 3, generator=g)))
    gens = [torch.Generator().manual_seed(1) for _ in range(2)]
    ref = DataLoader(graphs, 8, shuffle=True, generator=gens[0])
    new = GatherGraphLoader(graphs, 8, shuffle=True, generator=gens[1],
                            device=CUDA)
    for _ in range(2):
        pairs = list(zip(ref, new))
        assert len(pairs) == 5
        for a, b in pairs:
            assert b.x.is_cuda
            for key in ('x', 'edge_index', 'edge_attr', 'y', 'batch', 'ptr'):
                assert torch.equal(a[key], b[key].cpu()), key
    assert torch.equal(gens[0].get_state(), gens[1].get_state())


def test_graph_run_on_cuda_matches_cpu(data_root, tmp_path):
    """ogbg-molbbbp on the GPU sees the CPU's batches in the CPU's order
    (batches cut on the device)."""
    from ddl_gnn.experiment.config import RunConfig
    _same_run_on_cuda_and_cpu(
        RunConfig('ogbg-molbbbp', 'delta', 4, hidden=16, epochs=3,
                  batch_size=64, lr=0.001, dropout=0.0, patience=None,
                  weight_decay=0.0),
        tmp_path)


@pytest.mark.parametrize('save', [True, False])
def test_anchored_message_path_matches_cpu_reference(save):
    from ddl_gnn.nn.message_path import (anchored_message_reference,
                                         anchored_message_update)
    from ddl_gnn.ops.recompute import set_recompute
    g = torch.Generator().manual_seed(0)
    cpu = [torch.randn(*s, generator=g, dtype=torch.float64).requires_grad_()
           for s in ((97, 16), (97, 16), (97, 16), (4, 32), (4, ))]
    gpu = [t.detach().to(CUDA).requires_grad_() for t in cpu]
    set_recompute(not save)
    try:
        out, _ = anchored_message_update(*gpu, True, 0.1, 4)
        ref = anchored_message_reference(*cpu, True, 0.1, 4, 1e-5)
        w = torch.randn_like(ref)
        got = torch.autograd.grad((out * w.to(CUDA)).sum(), gpu)
        want = torch.autograd.grad((ref * w).sum(), cpu)
    finally:
        set_recompute(None)
    tol = dict(rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out.cpu(), ref.detach(), **tol)
    for a, b in zip(got, want):
        torch.testing.assert_close(a.cpu(), b, **tol)


@pytest.mark.parametrize('relu', [True, False])
def test_channel_axes_path_matches_cpu_reference(relu):
    from ddl_gnn.nn.axes_path import (channel_axes_reference,
                                      channel_axes_update)
    g = torch.Generator().manual_seed(0)
    cpu = [torch.randn(*s, generator=g, dtype=torch.float64).requires_grad_()
           for s in ((97, 16),) * 4 + ((16, 32), (16, ))]
    gpu = [t.detach().to(CUDA).requires_grad_() for t in cpu]
    out, _ = channel_axes_update(*gpu, 2.0, relu)
    ref = channel_axes_reference(*cpu, 2.0, relu)
    w = torch.randn_like(ref)
    got = torch.autograd.grad((out * w.to(CUDA)).sum(), gpu)
    want = torch.autograd.grad((ref * w).sum(), cpu)
    tol = dict(rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out.cpu(), ref.detach(), **tol)
    for a, b in zip(got, want):
        torch.testing.assert_close(a.cpu(), b, **tol)


def test_compiled_regions_are_the_default_on_cuda():
    """On CUDA (with Triton) the fused functions run compiled regions; the
    tests above then compare those regions with the CPU reference."""
    from ddl_gnn.ops.compiled import _has_triton, compile_enabled
    assert compile_enabled(CUDA) == _has_triton()
