"""Inputs made or edited by hand that the compiled kernels would have walked past their memory:
a PackedSequence whose batch sizes do not match its data, a weight of another shape than the
layer was built with. Each is a one-line InputError (torch.nn raises too), where the process
aborted in malloc, segfaulted or returned uninitialised memory. Also: numpy's unsigned lengths,
and to_torch of a layer with parametrizations."""
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import rnnkit
from rnnkit.layers.errors import InputError
from rnnkit.layers.fast_step import step


def _packed(data, sizes, sorted_idx=None):
    return PackedSequence(data, torch.tensor(sizes), sorted_idx, None if sorted_idx is None
                          else torch.argsort(sorted_idx))


@pytest.mark.parametrize("cls", [rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU])
def test_a_packed_sequence_that_does_not_hold_its_batch_sizes_is_refused(cls):
    layer = cls(3, 4).double()
    d = lambda *s: torch.randn(*s, dtype=torch.float64)        # noqa: E731
    for packed, said in (
            (_packed(d(4, 3), [2, 1]), r"sum to its data's 4 rows, got \[2, 1\] \(sum 3\)"),
            (_packed(d(2, 3), [2, 1]), r"sum to its data's 2 rows, got \[2, 1\] \(sum 3\)"),
            (_packed(d(1, 3), [2, -1]), r"at least 1 each"),
            (_packed(d(3), [2, 1]), r"data must be 2-D \(rows, input_size=3\), got shape \(3,\)"),
            (_packed(d(3, 1, 3), [2, 1]), r"must be 2-D .* got shape \(3, 1, 3\)"),
            (_packed(d(3, 3), [2, 1], torch.tensor([1, 0, 2])), r"sorted_indices must hold one "
                                                                r"index per sequence \(2\)")):
        with pytest.raises(InputError, match=said):
            layer(packed)


def test_a_length_past_the_padded_length_is_refused_not_read_past_the_data():
    """pack_padded_sequence takes a length of 64 for a batch padded to 50 steps: its batch
    sizes then count rows its data does not have."""
    x = torch.randn(50, 8, 16)
    packed = pack_padded_sequence(x, torch.tensor([64, 50, 40, 30, 20, 10, 5, 3]),
                                  enforce_sorted=False)
    with pytest.raises(InputError, match="sum to its data's 208 rows"):
        rnnkit.LSTM(16, 32)(packed)


@pytest.mark.parametrize("cls,name,shape", [
    (rnnkit.GRU, "weight_hh_l0", (12, 5)), (rnnkit.LSTM, "weight_hh_l0", (20, 4)),
    (rnnkit.RNN, "weight_hh_l0", (0, 4)), (rnnkit.GRU, "weight_hh_l0", (16, 4)),
    (rnnkit.LSTM, "weight_ih_l1", (16, 3)), (rnnkit.GRU, "bias_hh_l0_reverse", (13,))])
def test_a_weight_of_another_shape_is_refused_before_the_kernels_read_it(cls, name, shape):
    layer = cls(3, 4, num_layers=2, bidirectional=True)
    want = tuple(getattr(layer, name).shape)
    setattr(layer, name, nn.Parameter(torch.randn(shape)))
    said = rf"{name} must have shape \({want[0]}, ?{want[1] if len(want) > 1 else ''}\)"
    for requires_grad in (True, False):
        with pytest.raises(InputError, match=said):
            layer(torch.randn(5, 2, 3, requires_grad=requires_grad))
    if not name.endswith("_reverse"):          # one step of a one-way stack: step.cpp's path
        one_way = cls(3, 4, num_layers=2)
        setattr(one_way, name, nn.Parameter(torch.randn(shape)))
        with torch.no_grad(), pytest.raises(InputError):
            step(one_way.eval(), torch.randn(2, 3))


@pytest.mark.parametrize("cls", [rnnkit.RNNCell, rnnkit.LSTMCell, rnnkit.GRUCell])
def test_a_cell_weight_of_another_shape_is_refused(cls):
    cell = cls(3, 4)
    G = cell.weight_hh.shape[0]
    cell.weight_hh = nn.Parameter(torch.randn(G, 6))
    with pytest.raises(InputError, match=rf"weight_hh must have shape \({G}, 4\)"):
        cell(torch.randn(2, 3, requires_grad=True))


def test_numpys_unsigned_lengths_are_lengths():
    x = torch.randn(6, 3, 4)
    layer = rnnkit.GRU(4, 8)
    got = layer(x, lengths=np.array([6, 2, 4], dtype=np.uint64))
    want = layer(x, lengths=[6, 2, 4])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    with pytest.raises(InputError, match=r"lengths must lie in \[1, 6\]"):
        layer(x, lengths=np.array([7, 2, 4], dtype=np.uint32))


@pytest.mark.parametrize("cls", [rnnkit.LSTM, rnnkit.GRU, rnnkit.GRUCell])
def test_to_torch_keeps_a_layers_parametrizations(cls):
    """The README's route to a gradient of a gradient failed on a weight-normed layer: its
    state_dict's keys are the parametrizations'."""
    torch.manual_seed(0)
    layer = cls(3, 4).double()
    suffix = "" if cls is rnnkit.GRUCell else "_l0"
    parametrizations.weight_norm(layer, "weight_hh" + suffix)
    parametrizations.spectral_norm(layer, "weight_ih" + suffix)
    layer.parametrizations["weight_hh" + suffix].original1.requires_grad_(False)
    ref = rnnkit.to_torch(layer).eval()
    layer.eval()
    assert isinstance(ref, (nn.LSTM, nn.GRU, nn.GRUCell))
    assert not ref.parametrizations["weight_hh" + suffix].original1.requires_grad
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    inp = x if cls is not rnnkit.GRUCell else x[0]
    out, want = ref(inp), layer(inp)
    torch.testing.assert_close(out[0] if isinstance(out, tuple) else out,
                               want[0] if isinstance(want, tuple) else want)
    y = out[0] if isinstance(out, tuple) else out
    g, = torch.autograd.grad(y.sum(), x, create_graph=True)       # a gradient penalty
    (g ** 2).sum().backward()
    assert x.grad is not None


def test_a_reset_or_lengths_that_is_no_array_names_the_argument():
    layer = rnnkit.LSTM(3, 4, batch_first=True)
    x = torch.randn(2, 5, 3)
    for kw, said in ((dict(reset="yes"), "reset= must be a \\(batch, time\\) bool mask .* got a "
                                         "str"),
                     (dict(reset=[[0, 0, 0, 0, 0], [1, 0]]), "reset= .* got a list of rows"),
                     (dict(reset={"a": 1}), "reset= .* got a dict"),
                     (dict(lengths="abc"), r"lengths= must be \(2,\) whole numbers .* got a str"),
                     (dict(lengths=[None, 3]), "lengths= .* got a list")):
        with pytest.raises(InputError, match=said):
            layer(x, **kw)


def test_a_weight_replaced_by_a_view_at_the_same_address_is_checked_in_a_step():
    """The step's caches were keyed by the weights' addresses only: a Parameter of the first
    rows of the old one lies where it did, and the old sizes were used."""
    layer = rnnkit.LSTM(3, 4).eval()
    x = torch.randn(2, 3)
    with torch.no_grad():
        step(layer, x)
        layer.weight_hh_l0 = nn.Parameter(layer.weight_hh_l0.data[:8])
        with pytest.raises(InputError, match=r"weight_hh_l0 must have shape \(16, 4\)"):
            step(layer, x)


def test_lengths_on_the_meta_device_are_named():
    """A model moved to "meta" to check its shapes: lengths= met torch's 'The register_meta
    function for torch.nonzero()' (or 'Cannot copy out of meta tensor')."""
    from rnnkit.layers.errors import InputError
    layer = rnnkit.LSTM(3, 4, batch_first=True).to("meta")
    with pytest.raises(InputError, match="LSTM: lengths= packs the batch by the lengths' values, "
                                         "and a meta tensor has none"):
        layer(torch.randn(2, 5, 3, device="meta"), lengths=torch.tensor([5, 2], device="meta"))
    assert layer(torch.randn(2, 5, 3, device="meta"))[0].shape == (2, 5, 4)
