"""rnnkit layers against torch.nn with copied weights: outputs, states and every gradient."""
import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from helpers import MODES, loss_of, pair, states

I, H, T, B = 3, 5, 6, 4
LENGTHS = torch.tensor([4, 6, 1, 3])  # unsorted, with a length-1 sequence


def make_input(kind, dtype):
    if kind == "unbatched":
        return torch.randn(T, I, dtype=dtype, requires_grad=True), None
    if kind == "batch_first":
        return torch.randn(B, T, I, dtype=dtype, requires_grad=True), None
    return torch.randn(T, B, I, dtype=dtype, requires_grad=True), None


def make_hx(mode, layers, bi, batched, dtype):
    shape = (layers * (2 if bi else 1),) + ((B,) if batched else ()) + (H,)
    n = 2 if mode == "lstm" else 1
    hs = [torch.randn(shape, dtype=dtype, requires_grad=True) for _ in range(n)]
    return hs, (tuple(hs) if n == 2 else hs[0])


def compare(mode, layers, bi, kind, bias=True, dtype=torch.float32, tol=1e-5, with_hx=True):
    mine, ref = pair(mode, I, H, num_layers=layers, bidirectional=bi, bias=bias,
                     batch_first=(kind == "batch_first"), dtype=dtype)
    x, _ = make_input(kind, dtype)
    hs, hx = make_hx(mode, layers, bi, kind != "unbatched", dtype) if with_hx else ([], None)
    inp = pack_padded_sequence(x, LENGTHS, enforce_sorted=False) if kind == "packed" else x
    got, want = mine(inp, hx), ref(inp, hx)
    for a, b in zip((got[0].data if kind == "packed" else got[0], *states(got[1])),
                    (want[0].data if kind == "packed" else want[0], *states(want[1]))):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)
    wrt = [x, *hs]
    g_mine = torch.autograd.grad(loss_of(*got), wrt + list(mine.parameters()), retain_graph=True)
    g_ref = torch.autograd.grad(loss_of(*want), wrt + list(ref.parameters()))
    names = ["input"] + [f"hx{k}" for k in range(len(hs))] + [n for n, _ in mine.named_parameters()]
    for name, a, b in zip(names, g_mine, g_ref):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol, msg=lambda m: f"grad of {name}: {m}")


GRID = list(itertools.product(MODES, [1, 2, 3], [False, True],
                              ["time_major", "batch_first", "unbatched", "packed"]))


@pytest.mark.parametrize("mode,layers,bi,kind", GRID)
def test_parity_with_torch_nn(mode, layers, bi, kind, path):
    compare(mode, layers, bi, kind)


@pytest.mark.parametrize("mode,bi,kind", list(itertools.product(MODES, [False, True], ["time_major", "packed"])))
def test_parity_without_bias(mode, bi, kind):
    compare(mode, 2, bi, kind, bias=False)


@pytest.mark.parametrize("mode", MODES)
def test_parity_zero_initial_state(mode):
    compare(mode, 2, True, "packed", with_hx=False)


@pytest.mark.parametrize("mode,kind", list(itertools.product(MODES, ["time_major", "packed"])))
def test_parity_float64_exact(mode, kind, path):
    compare(mode, 2, True, kind, dtype=torch.float64, tol=1e-12)


def test_parity_sorted_packed_and_long_sequence():
    mine, ref = pair("lstm", I, H, num_layers=2, bidirectional=True)
    x = torch.randn(40, 3, I)
    p = pack_padded_sequence(x, torch.tensor([40, 25, 2]))  # enforce_sorted=True path
    torch.testing.assert_close(mine(p)[0].data, ref(p)[0].data, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["time_major", "batch_first", "unbatched", "packed"])
@pytest.mark.parametrize("layers,bi", [(1, False), (2, True), (3, False)])
def test_lstm_proj_size_parity(kind, layers, bi):
    P = 3
    mine, ref = pair("lstm", I, H, num_layers=layers, bidirectional=bi, proj_size=P,
                     batch_first=(kind == "batch_first"))
    x, _ = make_input(kind, torch.float32)
    LD = layers * (2 if bi else 1)
    batch = () if kind == "unbatched" else (B,)
    hs = [torch.randn(LD, *batch, P, requires_grad=True), torch.randn(LD, *batch, H, requires_grad=True)]
    inp = pack_padded_sequence(x, LENGTHS, enforce_sorted=False) if kind == "packed" else x
    got, want = mine(inp, tuple(hs)), ref(inp, tuple(hs))
    flat = lambda r: (r[0].data if kind == "packed" else r[0], *r[1])       # noqa: E731
    for a, b in zip(flat(got), flat(want)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    g1 = torch.autograd.grad(loss_of(*got), [x, *hs, *mine.parameters()], retain_graph=True)
    g2 = torch.autograd.grad(loss_of(*want), [x, *hs, *ref.parameters()])
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
