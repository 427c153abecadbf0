"""The torch.nn contract: state_dict, dropout, shapes, errors, and what the BPTT must not do."""
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import rnnkit

from helpers import MODES, pair


@pytest.mark.parametrize("mode", list(MODES))
def test_state_dict_round_trips_both_ways(mode):
    ours, theirs, extra = MODES[mode]
    ref = theirs(3, 4, num_layers=2, bidirectional=True, **extra)
    mine = ours(3, 4, num_layers=2, bidirectional=True, **extra)
    assert list(mine.state_dict()) == list(ref.state_dict())
    mine.load_state_dict(ref.state_dict())            # torch.nn -> rnnkit
    back = theirs(3, 4, num_layers=2, bidirectional=True, **extra)
    back.load_state_dict(mine.state_dict())           # rnnkit -> torch.nn
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(mine(x)[0], back(x)[0], atol=1e-6, rtol=1e-6)


def test_state_dict_through_a_file(tmp_path):
    ref = torch.nn.LSTM(3, 4, 2)
    torch.save(ref.state_dict(), tmp_path / "w.pt")
    mine = rnnkit.LSTM(3, 4, 2)
    mine.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(mine(x)[0], ref(x)[0], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("mode", list(MODES))
def test_initialisation_matches_torch(mode):
    ours, theirs, extra = MODES[mode]
    torch.manual_seed(3)
    ref = theirs(3, 16, num_layers=2, **extra)
    torch.manual_seed(3)
    mine = ours(3, 16, num_layers=2, **extra)
    for (n1, a), (n2, b) in zip(mine.named_parameters(), ref.named_parameters()):
        assert n1 == n2 and a.shape == b.shape
        torch.testing.assert_close(a, b)   # same order of draws from U(-1/√H, 1/√H)


@pytest.mark.filterwarnings("ignore:dropout option adds dropout")
def test_dropout_only_between_layers_and_only_in_training():
    mine, ref = pair("lstm", 3, 8, num_layers=2, dropout=0.5)
    x = torch.randn(6, 4, 3)
    mine.eval(), ref.eval()
    torch.testing.assert_close(mine(x)[0], ref(x)[0], atol=1e-6, rtol=1e-6)   # eval: no dropout
    mine.train()
    a, b = mine(x)[0], mine(x)[0]
    assert not torch.allclose(a, b)                     # training: a fresh mask each call
    assert (a != 0).all()                               # the last layer's output is never dropped
    one = rnnkit.LSTM(3, 8, num_layers=1, dropout=0.5)  # one layer: nothing between layers
    torch.testing.assert_close(one(x)[0], one(x)[0])


def test_graph_does_not_grow_with_sequence_length():
    m = rnnkit.GRU(3, 4, num_layers=2, bidirectional=True)

    def count(fn, seen=None):
        seen = set() if seen is None else seen
        if fn is None or fn in seen:
            return 0
        seen.add(fn)
        return 1 + sum(count(f, seen) for f, _ in fn.next_functions)

    short = count(m(torch.randn(3, 2, 3, requires_grad=True))[0].grad_fn)
    long = count(m(torch.randn(300, 2, 3, requires_grad=True))[0].grad_fn)
    assert short == long


def test_no_fused_rnn_kernel_in_the_path():
    m = rnnkit.LSTM(4, 8, num_layers=2, bidirectional=True)
    x = torch.randn(5, 3, 4, requires_grad=True)
    with torch.profiler.profile() as prof:
        m(x)[0].sum().backward()
    names = {e.key for e in prof.key_averages()}
    fused = [n for n in names if any(k in n for k in ("lstm", "gru", "rnn_tanh", "rnn_relu", "mkldnn_rnn", "_thnn"))]
    assert not fused, fused


def test_packed_in_packed_out_and_state_order():
    mine, ref = pair("gru", 3, 4, bidirectional=True)
    x = torch.randn(5, 3, 3)
    p = pack_padded_sequence(x, torch.tensor([2, 5, 3]), enforce_sorted=False)
    out, h = mine(p)
    assert isinstance(out, torch.nn.utils.rnn.PackedSequence)
    torch.testing.assert_close(out.unsorted_indices, p.unsorted_indices)
    torch.testing.assert_close(h, ref(p)[1], atol=1e-6, rtol=1e-6)


def test_repr_and_flatten_parameters():
    m = rnnkit.RNN(3, 4, 2, nonlinearity="relu", bidirectional=True)
    m.flatten_parameters()
    assert "nonlinearity='relu'" in repr(m) and "bidirectional=True" in repr(m)
    assert len(m.all_weights) == 4 and len(m.all_weights[0]) == 4


# ------------------------------------------------------------------ bad input
def test_wrong_feature_size():
    with pytest.raises(ValueError, match=r"input_size=3, got 5"):
        rnnkit.LSTM(3, 4)(torch.randn(2, 2, 5))


def test_wrong_rank():
    with pytest.raises(ValueError, match=r"2 \(unbatched\) or 3 dimensions, got 4"):
        rnnkit.GRU(3, 4)(torch.randn(2, 2, 2, 3))


def test_wrong_hidden_shape():
    with pytest.raises(ValueError, match=r"expected hx of shape \(2, 2, 4\), got \(1, 2, 4\)"):
        rnnkit.RNN(3, 4, num_layers=2)(torch.randn(5, 2, 3), torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match=r"c_0 of shape"):
        rnnkit.LSTM(3, 4)(torch.randn(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 3, 4)))
    with pytest.raises(TypeError, match=r"tuple \(h_0, c_0\)"):
        rnnkit.LSTM(3, 4)(torch.randn(5, 2, 3), torch.zeros(1, 2, 4))


def test_mismatched_dtype():
    with pytest.raises(TypeError, match=r"dtype"):
        rnnkit.LSTM(3, 4)(torch.randn(5, 2, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"hx dtype torch.float64"):
        rnnkit.GRU(3, 4)(torch.randn(5, 2, 3), torch.zeros(1, 2, 4, dtype=torch.float64))


def test_mismatched_device():
    with pytest.raises(ValueError, match=r"meta"):
        rnnkit.GRU(3, 4)(torch.randn(5, 2, 3), torch.zeros(1, 2, 4, device="meta"))


def test_lengths_longer_than_sequence():
    x = torch.randn(4, 2, 3)
    for lengths, got in (([5, 2], "5 at batch row 0"), ([4, float("nan")], "nan at batch row 1"),
                         ([float("inf"), 2], "inf at batch row 0"),
                         ([4, 2.5], "2.5 at batch row 1")):
        with pytest.raises(ValueError, match=r"lengths must lie in \[1, 4\] \(the padded length\), "
                                             f"whole numbers, got {got}"):
            rnnkit.LSTM(3, 4)(x, lengths=torch.tensor(lengths))
    with pytest.raises(ValueError, match=r"lengths must have shape \(2,\)"):
        rnnkit.LSTM(3, 4)(x, lengths=torch.tensor([3, 2, 1]))


@pytest.mark.parametrize("batch_first", [False, True])
def test_lengths_keyword_equals_packing(batch_first):
    mine = rnnkit.GRU(3, 4, bidirectional=True, batch_first=batch_first)
    x = torch.randn(2, 5, 3) if batch_first else torch.randn(5, 2, 3)
    lengths = torch.tensor([3, 5])
    out, h = mine(x, lengths=lengths)
    packed, h2 = mine(pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False))
    want = torch.nn.utils.rnn.pad_packed_sequence(packed, batch_first=batch_first, total_length=5)[0]
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(h, h2)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="nonlinearity"):
        rnnkit.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size"):
        rnnkit.LSTM(3, 0)
    with pytest.raises(ValueError, match="dropout"):
        rnnkit.GRU(3, 4, dropout=1.5)
    for flag in ("bias", "batch_first", "bidirectional"):   # "False" from a config file
        with pytest.raises(TypeError, match=f"{flag} should be of type bool, got: str"):
            rnnkit.GRU(3, 4, **{flag: "False"})
    with pytest.raises(TypeError, match="batch_first should be of type bool, got: int"):
        rnnkit.LSTM(3, 4, batch_first=1)                # as torch.nn says
    assert rnnkit.GRU(3, 4, bidirectional=1).bidirectional is True   # torch.nn takes it too


def test_a_cell_s_state_tuple_must_hold_its_states():
    cell, x, h = rnnkit.LSTMCell(3, 4), torch.randn(2, 3), torch.randn(2, 4)
    for hx, got in (((h, h, h), "a tuple of 3"), ((h,), "a tuple of 1"), (h, "Tensor")):
        with pytest.raises(RuntimeError, match=f"hx must be a tuple of 2 states.*got {got}"):
            cell(x, hx)
    with pytest.raises(TypeError, match=r"tuple \(h_0, c_0\), got a tuple of 3"):
        rnnkit.LSTM(3, 4)(torch.randn(5, 2, 3), (torch.zeros(1, 2, 4),) * 3)


def test_changing_the_output_in_place_is_autograd_s_own_error():
    """The output is what the backward reads (a copy handed out always would cost every
    forward and backward): changed in place it is refused by autograd, as torch.nn's float32
    LSTM's is; out of place the gradients are torch.nn's."""
    out, _ = rnnkit.GRU(3, 5)(torch.randn(6, 2, 3))
    out.relu_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()
    grads, x = [], torch.randn(6, 2, 3, dtype=torch.float64)
    for m in pair("gru", 3, 5, dtype=torch.float64):
        m(x)[0].relu().sum().backward()
        grads.append(m.weight_hh_l0.grad)
    torch.testing.assert_close(*grads)


@pytest.mark.parametrize("batch_first", [False, True])
def test_per_step_states_with_lengths_come_back_padded(batch_first):
    """return_sequences="all" with lengths=: (L·D, T, B, ·) (batch_first (L·D, B, T, ·)), zero
    past each sequence's end, equal to a full-length run where the sequence is full length."""
    torch.manual_seed(0)
    m = rnnkit.LSTM(3, 4, 2, bidirectional=True, batch_first=batch_first, return_sequences="all")
    x = torch.randn(2, 5, 3) if batch_first else torch.randn(5, 2, 3)
    out, _, seq = m(x, lengths=torch.tensor([5, 3]))
    _, _, full = m(x)
    pick = (lambda t, b: t[:, b]) if batch_first else (lambda t, b: t[:, :, b])
    for got, want in ((seq.h, full.h), (seq.c, full.c), (seq.gates, full.gates)):
        assert got.shape == want.shape
        assert torch.allclose(pick(got, 0), pick(want, 0), atol=1e-6)
        assert not pick(got, 1)[:, 3:].abs().any()
    h_last = torch.cat([seq.h[2], seq.h[3]], -1)
    assert torch.allclose(h_last, out, atol=1e-6)
