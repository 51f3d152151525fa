"""DeltaGNN's read of the top state (``read_act``): the decoder sees
act(compress(X_L)) without a norm, as it sees act(norm(...)) with one."""
import torch
import torch.nn.functional as F

from ddl_gnn.models import DeltaGNN


def _graph():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(40, 6, generator=g),
            torch.randint(0, 40, (2, 120), generator=g))


def test_read_act_applies_the_activation_before_the_decoder():
    x, ei = _graph()
    torch.manual_seed(0)
    model = DeltaGNN(6, 16, 3, 4, d_v=2, read_act=True).eval()
    seen = {}
    model.decoder.register_forward_pre_hook(
        lambda mod, args: seen.update(h=args[0]))
    out = model(x, ei)
    plain = DeltaGNN(6, 16, 3, 4, d_v=2).eval()
    plain.load_state_dict(model.state_dict())
    plain.decoder.register_forward_pre_hook(
        lambda mod, args: seen.update(h_plain=args[0]))
    plain(x, ei)
    assert (seen['h_plain'] < 0).any()          # the plain read is signed
    torch.testing.assert_close(seen['h'], F.relu(seen['h_plain']))
    torch.testing.assert_close(out, model.decoder(F.relu(seen['h_plain'])))


def test_read_act_leaves_a_normed_read_alone():
    x, ei = _graph()
    torch.manual_seed(0)
    a = DeltaGNN(6, 16, 2, 4, norm='layer_norm', read_act=True).eval()
    b = DeltaGNN(6, 16, 2, 4, norm='layer_norm').eval()
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(x, ei), b(x, ei))
