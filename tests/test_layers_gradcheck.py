"""float64 gradcheck of the hand-written BPTT, and agreement with the plain-autograd oracle."""
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit
from rnnkit.bptt.function import run
from rnnkit.bptt.reference import reference_rnn
from rnnkit.bptt.schedule import Schedule
from rnnkit.cells import CELLS

from helpers import MODES, loss_of

D64 = torch.float64


@pytest.mark.parametrize("mode", [m for m in CELLS if not CELLS[m].PARAMS])  # others: layer tests
@pytest.mark.parametrize("sizes,reverse", [([3, 3, 3, 3], False), ([3, 3, 3, 3], True),
                                           ([3, 3, 2, 1], False), ([3, 3, 2, 1], True)])
def test_gradcheck_one_direction(mode, sizes, reverse, path):
    """Every input of one layer-direction node: tokens, weights, biases, initial states."""
    cell, I, H = CELLS[mode], 2, 3
    G = cell.N_GATES * H
    sched = Schedule(sizes, reverse)
    x = torch.randn(sched.N, I, dtype=D64, requires_grad=True)
    w = [torch.randn(G, I, dtype=D64, requires_grad=True) * 0.5,
         torch.randn(G, H, dtype=D64, requires_grad=True) * 0.5,
         torch.randn(G, dtype=D64, requires_grad=True), torch.randn(G, dtype=D64, requires_grad=True)]
    w = [t.detach().requires_grad_() for t in w]
    h0 = [torch.randn(sched.B, H, dtype=D64, requires_grad=True) for _ in range(cell.N_STATES)]

    def f(x, w_ih, w_hh, b_ih, b_hh, *h0):
        out, finals = run(cell, sched, x, w_ih, w_hh, b_ih, b_hh, tuple(h0))
        return (out, *finals)

    assert torch.autograd.gradcheck(f, (x, *w, *h0))


@pytest.mark.parametrize("mode", list(MODES))
def test_gradcheck_layer_module(mode):
    cls, _, extra = MODES[mode]
    m = cls(2, 3, num_layers=2, bidirectional=True, **extra).double()
    x = torch.randn(4, 2, 2, dtype=D64, requires_grad=True)
    names = [n for n, _ in m.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in m.parameters()]

    def f(x, *ps):
        out, state = torch.func.functional_call(m, dict(zip(names, ps)), (x,))
        return (out, *(state if isinstance(state, tuple) else (state,)))

    assert torch.autograd.gradcheck(f, (x, *params))


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("packed", [False, True])
def test_agrees_with_reference(mode, packed, path):
    """rnnkit's BPTT against the plain-autograd oracle, float64, with variable lengths."""
    cls, _, extra = MODES[mode]
    m = cls(3, 4, num_layers=2, bidirectional=True, **extra).double()
    T, B = 7, 3
    lengths = torch.tensor([5, 7, 2]) if packed else torch.full((B,), T)
    x = torch.randn(T, B, 3, dtype=D64, requires_grad=True)
    inp = pack_padded_sequence(x, lengths, enforce_sorted=False) if packed else x
    out, state = m(inp)
    want_out, want_state = reference_rnn(m, x, lengths)
    got_out = pad_packed_sequence(out)[0] if packed else out
    torch.testing.assert_close(got_out, want_out)
    got_state = state if isinstance(state, tuple) else (state,)
    for a, b in zip(got_state, want_state):
        torch.testing.assert_close(a, b)
    ps = list(m.parameters())
    g1 = torch.autograd.grad(loss_of(out, state), [x, *ps])
    g2 = torch.autograd.grad(loss_of(want_out, want_state), [x, *ps])
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("cls,extra", [(rnnkit.RNNCell, {}), (rnnkit.RNNCell, {"nonlinearity": "relu"}),
                                       (rnnkit.LSTMCell, {}), (rnnkit.GRUCell, {})])
def test_cells_match_torch_and_gradcheck(cls, extra):
    ref = getattr(torch.nn, cls.__name__)(3, 4, **extra).double()
    mine = cls(3, 4, **extra).double()
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, dtype=D64, requires_grad=True)
    n = 2 if cls is rnnkit.LSTMCell else 1
    hx = [torch.randn(2, 4, dtype=D64, requires_grad=True) for _ in range(n)]
    arg = tuple(hx) if n == 2 else hx[0]
    a, b = mine(x, arg), ref(x, arg)
    for u, v in zip(a if n == 2 else (a,), b if n == 2 else (b,)):
        torch.testing.assert_close(u, v)
    assert torch.autograd.gradcheck(lambda x, *h: mine(x, tuple(h) if n == 2 else h[0]), (x, *hx))
    # unbatched and hx=None
    u1, u2 = mine(x[0]), ref(x[0])
    torch.testing.assert_close(u1[0] if n == 2 else u1, u2[0] if n == 2 else u2)
