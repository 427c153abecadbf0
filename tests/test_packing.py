"""lengths= by two gathers (rnnkit.layers.packing) is torch's pack_padded_sequence and
pad_packed_sequence: the same PackedSequence, the same padded output, the same gradients."""
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.layers import LSTM
from rnnkit.layers.packing import Packing


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("lengths", [(3, 5, 1, 5, 2), (4, 4), (1,), (2, 6, 3)])
def test_packing_is_torchs(batch_first, lengths, T=7):
    torch.manual_seed(0)
    B = len(lengths)
    shape = (B, T, 3) if batch_first else (T, B, 3)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    ours = Packing(torch.tensor(lengths), T, batch_first, x.device)
    theirs = pack_padded_sequence(x, torch.tensor(lengths), batch_first, enforce_sorted=False)
    packed = ours.pack(x)
    for a, b in zip(packed, theirs):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    w = torch.randn(3, 2, dtype=torch.float64)
    out = ours.unpack(packed.data @ w)
    ref = pad_packed_sequence(theirs._replace(data=theirs.data @ w), batch_first,
                              total_length=T)[0]
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    g = torch.randn_like(out)
    ours_grad, = torch.autograd.grad(out, x, g)
    ref_grad, = torch.autograd.grad(ref, x, g)
    torch.testing.assert_close(ours_grad, ref_grad, rtol=0, atol=1e-15)
    assert bool((ours_grad.transpose(0, 1) if not batch_first else ours_grad)[
        torch.arange(T)[None] >= torch.tensor(lengths)[:, None]].eq(0).all())   # padding: no grad


def test_a_layer_with_lengths_is_the_layer_on_packed_input():
    torch.manual_seed(1)
    rnn = LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True).double()
    x = torch.randn(4, 6, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([2, 6, 1, 4])
    out, (h, c) = rnn(x, lengths=lengths)
    packed = pack_padded_sequence(x, lengths, True, enforce_sorted=False)
    ref_packed, (h_ref, c_ref) = rnn(packed)
    ref = pad_packed_sequence(ref_packed, True, total_length=6)[0]
    for a, b in ((out, ref), (h, h_ref), (c, c_ref)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    g = torch.randn_like(out)
    torch.testing.assert_close(torch.autograd.grad(out, x, g)[0],
                               torch.autograd.grad(ref, x, g)[0], rtol=0, atol=1e-14)
