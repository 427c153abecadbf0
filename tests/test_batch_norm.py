"""rnnkit.models.batch_norm: batch norm over the valid columns of padded feature maps, against
torch.nn.BatchNorm2d where nothing is padded, and independent of the padding where something is
(its sharing across processes: tests/test_ddp.py, the recogniser and image-to-text rows)."""
import torch

from rnnkit.models.batch_norm import MaskedBatchNorm2d


def _pair(seed=0):
    torch.manual_seed(seed)
    ref = torch.nn.BatchNorm2d(3, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
        ref.bias.uniform_(-0.5, 0.5)
    ours = MaskedBatchNorm2d(3, dtype=torch.float64)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def test_unpadded_it_is_batch_norm_outputs_gradients_and_running_statistics():
    ref, ours = _pair()
    for step in range(3):
        x = torch.randn(4, 3, 5, 7, dtype=torch.float64, requires_grad=True)
        w = torch.randn(4, 3, 5, 7, dtype=torch.float64)
        a, b = ref(x), ours(x, torch.full((4,), 7))
        torch.testing.assert_close(b, a)
        ga = torch.autograd.grad((a * w).sum(), [x, ref.weight, ref.bias])
        gb = torch.autograd.grad((b * w).sum(), [x, ours.weight, ours.bias])
        for u, v in zip(gb, ga):
            torch.testing.assert_close(u, v)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(ours, name), getattr(ref, name))
    ref.eval(), ours.eval()
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    torch.testing.assert_close(ours(x, torch.tensor([4, 2])), ref(x))


def test_the_padding_of_a_batch_does_not_change_its_valid_outputs():
    _, ours = _pair()
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    lengths = torch.tensor([6, 4])
    x[1, :, :, 4:] = 0
    padded = torch.cat([x, torch.zeros(2, 3, 5, 9, dtype=torch.float64)], -1)  # 9 more columns
    a, b = ours(x, lengths), ours(padded, lengths)
    torch.testing.assert_close(b[0, :, :, :6], a[0])
    torch.testing.assert_close(b[1, :, :, :4], a[1, :, :, :4])
    # the statistics are those of the valid columns alone
    valid = torch.cat([x[0].reshape(3, -1), x[1, :, :, :4].reshape(3, -1)], 1)   # (C, n)
    mean, var = valid.mean(1), valid.var(1, unbiased=False)
    want = (x[0] - mean[:, None, None]) / (var[:, None, None] + ours.eps).sqrt()
    want = want * ours.weight[:, None, None] + ours.bias[:, None, None]
    torch.testing.assert_close(a[0], want)
    # torch.nn's counts the padding: its outputs move with it
    ref = torch.nn.BatchNorm2d(3, dtype=torch.float64)
    ref.load_state_dict(ours.state_dict())
    assert (ref(padded)[0, :, :, :6] - ref(x)[0]).abs().max() > 1e-3
