"""A recorded step of rnnkit's cells is one node of its own (rnnkit/bptt/cell_step.py), its
derivative written by hand: torch.nn's gradients to float64 rounding for every input, state,
weight and bias, over a loop of steps, with and without biases; gradcheck over the weights;
the refusals and the telemetry the layers' node has."""
import pytest
import torch

import rnnkit
from rnnkit.bptt import function

D64 = torch.float64
CELLS = [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}), ("LSTMCell", {}),
         ("GRUCell", {})]


def pair(name, bias=True, **extra):
    ref = getattr(torch.nn, name)(3, 4, bias=bias, **extra).double()
    mine = getattr(rnnkit, name)(3, 4, bias=bias, **extra).double()
    mine.load_state_dict(ref.state_dict())
    return mine, ref


def loop(cell, xs, hx):
    out = []
    for x in xs:
        hx = cell(x, hx)
        out.append(hx[0] if isinstance(hx, tuple) else hx)
    return torch.stack(out)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name, extra", CELLS, ids=lambda v: str(v))
def test_a_loop_of_recorded_steps_has_torch_nns_gradients(name, extra, bias, monkeypatch):
    monkeypatch.setattr(function, "run", None)      # the layers' node takes no part
    mine, ref = pair(name, bias, **extra)
    torch.manual_seed(1)
    xs = torch.randn(5, 2, 3, dtype=D64, requires_grad=True)
    n = 2 if name == "LSTMCell" else 1
    hx = [torch.randn(2, 4, dtype=D64, requires_grad=True) for _ in range(n)]
    arg = tuple(hx) if n == 2 else hx[0]
    a, b = loop(mine, xs, arg), loop(ref, xs, arg)
    torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-13)
    w = torch.randn_like(a)
    got = torch.autograd.grad((a * w).sum(), [xs, *hx, *mine.parameters()])
    want = torch.autograd.grad((b * w).sum(), [xs, *hx, *ref.parameters()])
    for g, h in zip(got, want):
        torch.testing.assert_close(g, h, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, extra", CELLS, ids=lambda v: str(v))
def test_gradcheck_over_the_weights_and_an_unbatched_step(name, extra):
    mine, _ = pair(name, **extra)
    x = torch.randn(3, dtype=D64, requires_grad=True)          # unbatched: (I,)
    ps = list(mine.parameters())

    def step(x, *weights):
        out = torch.func.functional_call(mine, dict(zip(dict(mine.named_parameters()), weights)),
                                         (x,))
        return out if isinstance(out, tuple) else (out,)
    assert torch.autograd.gradcheck(lambda x, *w: mine(x)[0] if name == "LSTMCell" else mine(x),
                                    (x,))
    for p in ps:
        p.requires_grad_(True)
    loss = lambda *w: sum(o.pow(2).sum() for o in step(x, *w))             # noqa: E731
    assert torch.autograd.gradcheck(loss, tuple(p.detach().clone().requires_grad_() for p in ps))


def test_a_second_derivative_is_refused_and_telemetry_records_the_step():
    cell = rnnkit.GRUCell(3, 4)
    x = torch.randn(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="give first derivatives only; create_graph=True"):
        torch.autograd.grad(cell(x).sum(), x, create_graph=True)
    with rnnkit.record_gradients(cell) as rec:
        h = cell(x)
        cell(x, h).sum().backward()
    assert [len(v) for v in rec.runs.values()] == [2]            # a record a step
    assert [r["h"].shape for r in rec.runs["l0"]] == [(1,), (1,)]


def test_telemetry_records_the_total_derivative_of_an_lstm_cells_c():
    """The record of c left out the path through h = o tanh(c): 0 at the last step of a loss
    on h alone."""
    mine, ref = pair("LSTMCell")
    xs = torch.randn(3, 2, 3, dtype=D64)
    with rnnkit.record_gradients(mine) as rec:
        loop(mine, xs, None).pow(2).sum().backward()
    state, states = None, []
    for x in xs:                              # torch.nn's loop, keeping each c for its gradient
        state = ref(x, state)
        state[1].retain_grad()
        states.append(state)
    torch.stack([s[0] for s in states]).pow(2).sum().backward()
    want = [float(s[1].grad.norm()) for s in states]
    got = [float(r["c"][0]) for r in rec.runs["l0"]]
    assert got == pytest.approx(want, rel=1e-12) and want[-1] > 0


@pytest.mark.parametrize("name", ["LSTMCell", "GRUCell", "RNNCell"])
def test_a_cell_inside_activation_checkpointing(name):
    """use_reentrant=False unpacks each saved tensor once: the step read them twice."""
    from torch.utils.checkpoint import checkpoint
    mine, ref = pair(name)
    xs = torch.randn(4, 2, 3, dtype=D64, requires_grad=True)
    got = torch.autograd.grad(checkpoint(loop, mine, xs, None, use_reentrant=False).sum(),
                              [xs, *mine.parameters()])
    want = torch.autograd.grad(loop(ref, xs, None).sum(), [xs, *ref.parameters()])
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)


def test_a_compiled_loop_over_a_cell_is_one_graph():
    """The step's own node defines a jvp dynamo does not trace: compiling, a step goes through
    the layers' custom operators, as before."""
    torch._dynamo.reset()
    mine, ref = pair("GRUCell")
    xs = torch.randn(3, 2, 3, dtype=D64, requires_grad=True)
    compiled = torch.compile(loop, backend="aot_eager", fullgraph=True)
    got = torch.autograd.grad(compiled(mine, xs, None).sum(), [xs, *mine.parameters()])
    want = torch.autograd.grad(loop(ref, xs, None).sum(), [xs, *ref.parameters()])
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)
