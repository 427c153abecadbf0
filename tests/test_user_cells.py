"""Cells from outside the torch set: the contract, ``rnnkit.Recurrent``, the registry, rnnkit's
peephole LSTM, IndRNN and MGU against their own autograd references, a cell written here, and
what the command line and a checkpoint say of a user's cell at fault or changed."""
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit
import rnnkit.layers.base as base
from rnnkit.bptt.reference import reference_direction, reference_rnn
from rnnkit.cells import CellError, registry
from rnnkit.cells.indrnn import IndRNN
from rnnkit.cells.validate import check_class
from rnnkit.config import ConfigError
from rnnkit.layers import LAYERS

from helpers import loss_of

D64 = torch.float64


class Leaky(rnnkit.Cell):
    """A cell written in a test: a leaky tanh RNN with a learned rate λ per unit.

        y_t = tanh(gi_t + W_hh h_{t-1}),   h_t = h_{t-1} + λ ⊙ (y_t - h_{t-1})

        δa_t = δh_t ⊙ λ ⊙ (1 - y_t²),  δh_{t-1} += δh_t ⊙ (1 - λ) + δa_t W_hh,
        δλ = Σ_t δh_t ⊙ (y_t - h_{t-1})
    """
    PARAMS = ("leak",)

    def param_shapes(self, input_size, hidden_size):
        return {**super().param_shapes(input_size, hidden_size), "leak": (hidden_size,)}

    def init_parameter(self, name, weight, hidden_size):
        weight.fill_(0.5) if name == "leak" else super().init_parameter(name, weight, hidden_size)

    def alloc_cache(self, n, sizes, like, gi):
        return (like.new_empty(n, sizes[0]),)                              # y_t

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        y = torch.addmm(gi, hrec, w_hh_t, out=cache[0]).tanh_()
        torch.sub(y, prev[0], out=out[0]).mul_(params[0]).add_(prev[0])

    def prepare_backward(self, cache, states, prev, params):
        y = cache[0]
        return (params[0] * (1 - y * y), y - prev[0])

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        dh = dstate[0]
        torch.mul(dh, pre[0], out=dgi)                                       # δa_t
        dprev[0].add_(dh).addcmul_(dh, params[0], value=-1)                  # δh ⊙ (1 - λ)
        dhrec.addmm_(dgi, w_hh)

    def param_grads(self, cache, pre, dG, dGh, dS, params):
        return ((dS[0] * pre[1]).sum(0),)

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        hrec = state[0] if hrec is None else hrec
        y = torch.tanh(gi + hrec @ w_hh.t() + (0 if b_hh is None else b_hh))
        return (state[0] + params[0] * (y - state[0]),)


CELLS = ["peephole-lstm", "indrnn", "mgu", Leaky]


def layer(cell, **kw):
    kw = {"num_layers": 2, "bidirectional": True, **kw}
    return rnnkit.Recurrent(cell, 3, 4, **kw).double()


def states(s):
    return s if isinstance(s, tuple) else (s,)


# ---------------------------------------------------------------- every cell follows the contract
def builtin_layers():
    return [rnnkit.RNN(3, 4), rnnkit.RNN(3, 4, nonlinearity="relu"), rnnkit.LSTM(3, 4),
            rnnkit.GRU(3, 4), rnnkit.GRU(3, 4, reset_after=False), rnnkit.LSTM(3, 4, proj_size=2),
            rnnkit.LSTM(3, 4, layer_norm=True), rnnkit.GRU(3, 4, layer_norm=True),
            rnnkit.RNN(3, 4, layer_norm=True), *(rnnkit.Recurrent(c, 3, 4) for c in CELLS)]


@pytest.mark.parametrize("m", builtin_layers(), ids=lambda m: type(m.cell).__name__)
def test_every_cell_passes_the_contract_checks(m):
    """rnnkit's own cells skip the layer's trial (trusted); here they take it."""
    from rnnkit.cells.validate import trial
    check_class(m.cell)
    m = m.double()
    trial(m.cell, {k: getattr(m, f"{k}_l0") for k in (*m._cell_params, *m.cell.PARAMS)})


# ---------------------------------------------------------------- the new cells, checked
@pytest.mark.parametrize("cell", CELLS, ids=str)
@pytest.mark.parametrize("batch_first", [False, True])
def test_hand_backward_matches_its_autograd_reference(cell, batch_first):
    """Stacked, bidirectional, variable lengths: outputs, final states and every gradient."""
    m = layer(cell, batch_first=batch_first)
    T, B = 6, 3
    lengths = torch.tensor([6, 2, 4])
    x = torch.randn(T, B, 3, dtype=D64, requires_grad=True)
    out, state = m(x.transpose(0, 1) if batch_first else x, lengths=lengths)
    out = out.transpose(0, 1) if batch_first else out
    want, want_state = reference_rnn(m, x, lengths)
    torch.testing.assert_close(out, want)
    for a, b in zip(states(state), want_state):
        torch.testing.assert_close(a, b)
    leaves = [x, *m.parameters()]
    g = torch.autograd.grad(loss_of(out, state), leaves)
    g_ref = torch.autograd.grad(loss_of(want, want_state if len(want_state) > 1 else want_state[0]),
                                leaves)
    for p, a, b in zip(["x", *dict(m.named_parameters())], g, g_ref):
        torch.testing.assert_close(a, b, msg=lambda s, p=p: f"δ{p}: {s}")


@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_gradcheck_through_the_layer(cell, path):
    """float64 gradcheck of every input and parameter: two layers, both directions, packed."""
    m = rnnkit.Recurrent(cell, 2, 3, num_layers=2, bidirectional=True).double()
    names = [n for n, _ in m.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in m.parameters()]
    x = torch.randn(4, 2, 2, dtype=D64, requires_grad=True)
    lengths = torch.tensor([4, 2])

    def f(x, *ps):
        out, state = torch.func.functional_call(m, dict(zip(names, ps)), (x,), {"lengths": lengths})
        return (out, *states(state))

    assert torch.autograd.gradcheck(f, (x, *params))


def test_indrnn_recurrent_weight_is_a_vector_in_0_1():
    m = rnnkit.Recurrent("indrnn", 3, 5)
    assert m.weight_hh_l0.shape == (5,) and not hasattr(m, "bias_hh_l0")
    assert ((m.weight_hh_l0 >= 0) & (m.weight_hh_l0 <= 1)).all()


# ---------------------------------------------------------------- the options, for a user's cell
OPTIONS = {"recurrent_dropout": 0.3, "zoneout": 0.2, "input_dropout": 0.1, "learn_init": True,
           "weight_dropout": 0.2, "return_sequences": "all"}


@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_options_and_resets_match_the_oracle_with_the_same_masks(cell, monkeypatch):
    captured = []
    real_run = base.run

    def spy(*args, **kw):
        res = real_run(*args, **kw)
        captured.append((args, kw, res))
        return res

    monkeypatch.setattr(base, "run", spy)
    m = layer(cell, **OPTIONS)
    reset = torch.zeros(2, 6, dtype=torch.bool)
    reset[0, 2] = reset[1, 4] = True
    out, state, seq = m(torch.randn(6, 2, 3, dtype=D64), reset=reset)
    assert len(captured) == 4 and seq.h.shape == (4, 6, 2, 4)
    for (cell_, sched, xs, w_ih, w_hh, b_ih, b_hh, h0), kw, res in captured:
        leaves = [t for t in (xs, w_ih, w_hh, b_ih, b_hh, *h0, *kw["inits"], *kw["params"])
                  if t is not None and t.requires_grad]
        want = reference_direction(cell_, sched, xs, w_ih, w_hh, b_ih, b_hh, h0, kw["opts"],
                                   kw["inits"], kw["params"])
        got, want = [res[0], *res[1]], [want[0], *want[1]]
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b)
        seeds = [torch.randn_like(a) for a in got]
        g1 = torch.autograd.grad(got, leaves, seeds, retain_graph=True, allow_unused=True)
        g2 = torch.autograd.grad(want, leaves, seeds, retain_graph=True, allow_unused=True)
        for a, b in zip(g1, g2):
            torch.testing.assert_close(a, b)


def test_telemetry_names_the_cells_states():
    m = rnnkit.Recurrent("peephole-lstm", 3, 4)
    x = torch.randn(5, 2, 3)
    with rnnkit.record_gradients(m) as rec:
        out, _ = m(x)
        out.sum().backward()
    norms = rec.norms["l0"]
    assert set(norms) == {"h", "c"} and norms["h"].shape == (5,)


# ---------------------------------------------------------------- Recurrent, the registry
def test_a_cell_as_class_instance_or_registered_name_gives_the_same_layer():
    torch.manual_seed(1)
    a = rnnkit.Recurrent(Leaky, 3, 4)
    torch.manual_seed(1)
    b = rnnkit.Recurrent(Leaky(), 3, 4)
    registry.register("test-leaky", Leaky)
    torch.manual_seed(1)
    c = LAYERS["test-leaky"](3, 4)
    assert "test-leaky" in LAYERS and "test-leaky" in registry.names()
    assert repr(c).startswith("Recurrent(test-leaky, 3, 4")
    x = torch.randn(5, 2, 3)
    for m in (b, c):
        torch.testing.assert_close(m(x)[0], a(x)[0])
    torch.testing.assert_close(a.leak_l0, torch.full((4,), 0.5))


def test_register_as_a_decorator_and_the_errors_of_names():
    @rnnkit.cells.register("test-indrnn-2")
    class Ind2(IndRNN):
        pass

    assert isinstance(registry.get("test-indrnn-2"), Ind2)
    with pytest.raises(CellError, match="'lstm' is rnnkit's own cell"):
        registry.register("lstm", Leaky)
    with pytest.raises(CellError, match="a cell name is letters"):
        registry.register("my cell", Leaky)
    with pytest.raises(ConfigError, match=r"unknown cell 'nope'; the registered cells are rnn, "):
        rnnkit.Recurrent("nope", 3, 4)
    assert "nope" not in LAYERS
    assert LAYERS["lstm"] is rnnkit.LSTM                 # torch's cells keep their drop-in class


def test_packed_input_and_unbatched():
    m = rnnkit.Recurrent("mgu", 3, 4, bidirectional=True)
    x = torch.randn(6, 3, 3)
    packed = pack_padded_sequence(x, torch.tensor([6, 2, 4]), enforce_sorted=False)
    out, h = m(packed)
    out2, h2 = m(x, lengths=torch.tensor([6, 2, 4]))
    torch.testing.assert_close(pad_packed_sequence(out)[0], out2)
    torch.testing.assert_close(h, h2)
    assert m(x[:, 0])[0].shape == (6, 8)


class _Disagrees(Leaky):
    """A cell whose reference step is not its forward step (the layer's trial refuses it)."""

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        return (torch.sigmoid(gi + state[0] @ w_hh.t()),)


class _Raises(Leaky):
    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        raise ZeroDivisionError("a bug of the cell's own")


def test_the_command_line_says_a_users_cell_is_at_fault(tmp_path, capsys):
    """A cell the trial refuses is a one-line error, exit 2; an exception in a cell's own code
    names its file, line and method, not 'internal error ... please report it'."""
    from lm_fixtures import write_corpus
    from rnnkit.cells.validate import raised_at
    from rnnkit.cli.main import main
    registry.register("test-disagrees", _Disagrees)
    flags = ["train", "lm", "--data", str(write_corpus(tmp_path)), "--layers", "1", "--hidden",
             "8", "--seq-len", "5", "--batch", "4", "--max-steps", "2", "--quiet"]
    assert main([*flags, "--out", str(tmp_path / "a"), "--cell", "test-disagrees"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "disagree" in err and "internal error" not in err
    try:
        _Raises().forward_step(None, None, None, None, None, None, None, None)
    except ZeroDivisionError as e:
        where, raised = raised_at(e, in_cell=True), e
    assert where.startswith(__file__ + ":") and where.endswith("in _Raises.forward_step")
    import os
    import sysconfig
    paths = {**sysconfig.get_paths(), "purelib": os.path.dirname(__file__)}
    with pytest.MonkeyPatch.context() as mp:   # the cell installed as a package: still its own
        mp.setattr(sysconfig, "get_paths", lambda: paths)
        assert raised_at(raised, in_cell=True) == where
        mp.setattr(_Raises, "__module__", "rnnkit_extra")   # a plug-in named after rnnkit
        assert raised_at(raised, in_cell=True) == where
    try:
        rnnkit.LSTM(2, 3)(torch.randn(2, 3, 5))          # rnnkit's own refusal: not the user's
    except Exception as e:
        assert raised_at(e, in_cell=True) is None
