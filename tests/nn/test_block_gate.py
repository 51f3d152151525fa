"""The block gate (each head's gate reads only its own block of the state
and of the input) against its oracle: the dense gate whose weight is zero
outside the head's blocks. Values, every gradient, the fused layer path
against the generic one, and bad options."""
import pytest
import torch

import ddl_gnn.nn.delta_conv as delta_conv_mod
from ddl_gnn.models import build_model
from ddl_gnn.nn import DeltaConv
from ddl_gnn.nn.gates import BetaGate
from ddl_gnn.nn.message_path import message_path_ok

MSG = dict(v_source='message', k_source='anchor', beta_source='anchor',
           norm=None, beta_init=0.1)


def dense_weight(gate: BetaGate, width: int) -> torch.Tensor:
    """The block gate's weight written as a dense ``[H, P d]`` matrix, zero
    outside head ``h``'s block of every part."""
    H, P = gate.heads, gate.parts
    w = width // H
    W = torch.zeros(H, P * width, dtype=gate.weight.dtype)
    for h in range(H):
        for p in range(P):
            W[h, p * width + h * w:p * width + (h + 1) * w] = \
                gate.weight[h, p * w:(p + 1) * w]
    return W


@pytest.mark.parametrize('heads, parts', [(16, 2), (16, 1), (4, 2), (4, 1)])
def test_gate_is_the_dense_gate_with_a_block_diagonal_weight(heads, parts):
    torch.manual_seed(heads + parts)
    gate = BetaGate(parts * 16, 0.3, 'learned01', heads, block=True,
                    parts=parts).double()
    assert tuple(gate.weight.shape) == (heads, parts * 16 // heads)
    with torch.no_grad():
        gate.weight.normal_(0, 0.5)
    c = torch.randn(7, parts * 16, dtype=torch.float64)
    want = torch.sigmoid(c @ dense_weight(gate, 16).t() + gate.bias)
    torch.testing.assert_close(gate(c), want, rtol=1e-12, atol=1e-12)


def test_gate_starts_at_beta_init_everywhere():
    gate = BetaGate(32, 0.1, 'learned01', 16, block=True, parts=2)
    beta = gate(torch.randn(5, 32))
    torch.testing.assert_close(beta, torch.full((5, 16), 0.1))


@pytest.mark.parametrize('heads', [4, 16])
def test_layer_equals_dense_gate_layer_with_masked_weight(heads):
    """Same conv weights; the dense layer's gate weight is the block gate's
    written out. Outputs and the gradients of x, x0 and the conv agree."""
    torch.manual_seed(0)
    N, d = 40, 16
    block = DeltaConv(d, **MSG, heads=heads, block_gate=True).double()
    dense = DeltaConv(d, **MSG, heads=heads).double()
    dense.load_state_dict({k: v for k, v in block.state_dict().items()
                           if not k.startswith('gate.')}, strict=False)
    with torch.no_grad():
        block.gate.weight.normal_(0, 0.5)
        dense.gate.weight.copy_(dense_weight(block.gate, d))
        dense.gate.bias.copy_(block.gate.bias)
    x = torch.randn(N, d, dtype=torch.float64, requires_grad=True)
    x0 = torch.randn(N, d, dtype=torch.float64, requires_grad=True)
    ei = torch.randint(0, N, (2, 160))
    outs, grads = [], []
    for m in (block, dense):
        out = m(x, ei, x0=x0)
        outs.append(out)
        grads.append(torch.autograd.grad(
            (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype)
             .view_as(out)).sum(), [x, x0, m.conv.lin.weight]))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_model_has_two_gate_weights_per_channel_and_layer():
    dense = build_model('delta', 5, 16, 3, 2, heads=16)
    block = build_model('delta', 5, 16, 3, 2, heads=16, block_gate=True)
    n_gate = sum(p.numel() for n, p in block.named_parameters()
                 if 'gate.weight' in n)
    assert n_gate == 3 * 2 * 16
    assert (sum(p.numel() for p in dense.parameters())
            - sum(p.numel() for p in block.parameters())
            == 3 * 16 * (2 * 16 - 2))
    assert 'block_gate=True' in repr(block.layers[0])


def test_bad_block_options_are_named():
    with pytest.raises(ValueError, match="'block_gate' must be a bool"):
        DeltaConv(16, heads=4, block_gate='yes')
    with pytest.raises(ValueError, match="'block' must be a bool"):
        BetaGate(16, heads=4, block=1)
    with pytest.raises(ValueError, match="'parts' must be a positive int"):
        BetaGate(15, heads=1, parts=2)
    with pytest.raises(ValueError, match="heads = 3 must divide"):
        BetaGate(16, heads=3, block=True, parts=2)
