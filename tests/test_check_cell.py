"""check_cell: every rnnkit cell passes; a planted wrong derivative is caught and named (which
gradient, how much, where); a malformed cell is one line naming cell, method, expected and got."""
import pytest
import torch

import rnnkit
from rnnkit.cells import LN_CELLS, registry
from rnnkit.cells.check import check_cell
from rnnkit.cells.gru import GRUMath
from rnnkit.cells.gru_reset_before import GRUResetBeforeMath
from rnnkit.cells.lstm import LSTMMath
from rnnkit.cells.lstm_ln import LayerNormLSTMMath
from rnnkit.cells.lstm_proj import ProjectedLSTMMath
from rnnkit.cells.peephole_lstm import PeepholeLSTM
from rnnkit.cells.rnn import VanillaMath

CellError = rnnkit.CellError
# every cell rnnkit ships: the registered ones, the layer options' variants, the LN variants
BUILTIN = {**{n: registry.get(n) for n in registry.BUILTIN if n != "rnn"},
           "gru-reset-before": GRUResetBeforeMath(),
           "lstm-proj": ProjectedLSTMMath(proj_size=3),          # h (3) narrower than c (4)
           **{f"ln-{k.lower()}": c for k, c in LN_CELLS.items()}}


@pytest.mark.parametrize("name", list(BUILTIN))
def test_every_rnnkit_cell_passes(name):
    report = check_cell(BUILTIN[name])
    assert report.ok, str(report)
    assert "every gradient agrees" in str(report)


# ---- planted mistakes ------------------------------------------------------------------------

class TanhCell(VanillaMath):
    def __init__(self):
        super().__init__("tanh")


class WrongDhPrev(TanhCell):
    """δh_{t-1} off by 10%."""

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        torch.mul(dstate[0], pre[0], out=dgi)
        dhrec.addmm_(dgi, w_hh, alpha=1.1)


class WrongWhh(TanhCell):
    """δW_hh twice what it is."""

    def weight_grad_hh(self, dgh, hrec, cache, pre):
        return 2 * (dgh.t() @ hrec)


class WrongForgetGate(LSTMMath):
    """δa^f without the sigmoid's derivative f(1 - f)."""

    def prepare_backward(self, cache, states, prev, params):
        M, K, f = super().prepare_backward(cache, states, prev, params)
        M[:, 1] = prev[1] * f                                   # should be c_{t-1} f (1 - f)
        return M, K, f


class WrongCellPath(LSTMMath):
    """δc_{t-1} = 0.9 δc_t f_t."""

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        dc_prev = dprev[1].clone()
        super().backward_step(dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params)
        dprev[1].sub_(dc_prev).mul_(0.9).add_(dc_prev)


class WrongUpdateGate(GRUMath):
    """δâ^z with the sign of ∂h_t/∂z_t flipped."""

    def prepare_backward(self, cache, states, prev, params):
        A, Ah, z = super().prepare_backward(cache, states, prev, params)
        A[:, 1].neg_()
        Ah[:, 1].neg_()
        return A, Ah, z


class WrongForward(TanhCell):
    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        return (torch.sigmoid(gi + state[0] @ w_hh.t() + (0 if b_hh is None else b_hh)),)


def test_wrong_dh_prev_is_named_in_one_step():
    r = check_cell(WrongDhPrev)
    assert not r.ok
    assert r.failed("one step") == ["δh_{t-1}"]            # one step isolates it
    e = r.entry("one step", "δh_{t-1}")
    assert e.rel == pytest.approx(0.1 / 1.1, rel=0.3)       # 10% off
    assert e.where.startswith("b=") and "unit" in e.where
    seq = r.failed("sequence")                              # over T steps it spreads
    assert {"δh_0", "δh_t", "δW_hh", "δx"} <= set(seq) and "h_t" not in seq
    # the last step's δh_T comes from the loss alone: the first wrong one is T-2
    assert "first wrong at t=3, going back" in r.entry("sequence", "δh_t").note
    assert r.failed("gradcheck")
    text = str(r)
    assert "wrong in one step: δh_{t-1}" in text and "WRONG" in text


def test_wrong_dw_hh_is_named_alone():
    r = check_cell(WrongWhh, steps=4)
    assert r.failed("one step") == ["δW_hh"] and r.failed("sequence") == ["δW_hh"]
    assert r.entry("sequence", "δW_hh").rel == pytest.approx(1.0)       # twice: off by 100%
    assert all("W_hh" in e.note for e in r.entries if e.section == "gradcheck")


def test_wrong_gate_derivative_points_at_the_gate():
    r = check_cell(WrongForgetGate)
    one = r.failed("one step")
    assert "δc_{t-1}" not in one                          # δc_{t-1} = δc_t f_t is untouched
    assert {"δW_ih", "δW_hh", "δb_ih"} <= set(one)
    for name in ("δW_ih", "δW_hh", "δb_ih"):             # the f rows: H..2H, gate 1 of i f g o
        assert r.entry("one step", name).where.startswith("gate 1 ")
    assert "largest in gate 1's rows" in str(r).splitlines()[-1]


class WrongPeephole(PeepholeLSTM):
    def param_grads(self, cache, pre, dG, dGh, dS, params):
        p_i, p_f, p_o = super().param_grads(cache, pre, dG, dGh, dS, params)
        return 2 * p_i, p_f, p_o


def test_a_cells_own_parameter_is_located_by_unit_not_gate():
    """A peephole vector (H,) has no gates; its row 2 was said as "gate 0 unit 2"."""
    r = check_cell(WrongPeephole)
    assert r.failed("one step") == ["δweight_ci"]
    assert r.entry("one step", "δweight_ci").where.startswith("unit ")


class WrongLayerNormGain(LayerNormLSTMMath):
    def param_grads(self, cache, pre, dG, dGh, dS, params):
        g, b, gc, bc = super().param_grads(cache, pre, dG, dGh, dS, params)
        H = g.shape[0] // 4
        g = g.clone()
        g[2 * H:3 * H] *= 3                       # wrong in gate 2's rows only
        return g, b, gc, bc


def test_a_cells_own_parameter_of_gate_rows_is_located_by_gate():
    """A layer norm's gains over the G·H gate rows are gated: said as "unit 8" at first."""
    r = check_cell(WrongLayerNormGain)
    assert r.entry("one step", "δln_hh_weight").where.startswith("gate 2 unit ")


def test_wrong_cell_state_path_is_named():
    r = check_cell(WrongCellPath)
    assert r.failed("one step") == ["δc_{t-1}"]
    assert "δc_t" in r.failed("sequence")


def test_wrong_gru_gate_is_caught():
    r = check_cell(WrongUpdateGate)
    assert not r.ok and "δW_hh" in r.failed("one step")
    assert r.entry("one step", "δb_ih").where.startswith("gate 1 ")      # r z n: z


def test_forward_mismatch_is_said_first():
    r = check_cell(WrongForward)
    assert "h_t" in r.failed("one step")
    assert "the forward differs from reference_step" in str(r)


def test_same_seed_same_report_and_global_generator_untouched():
    torch.manual_seed(7)
    want = torch.rand(3)
    torch.manual_seed(7)
    a = str(check_cell(WrongDhPrev, steps=3))
    assert torch.equal(torch.rand(3), want)
    assert str(check_cell(WrongDhPrev, steps=3)) == a
    assert str(check_cell(WrongDhPrev, steps=3, seed=1)) != a


def test_report_is_data():
    r = check_cell(TanhCell(), hidden_size=3, steps=2, batch=1)
    assert r.ok and r.sizes["hidden"] == 3
    assert {e.section for e in r.entries} == {"one step", "sequence", "gradcheck"}
    assert all(e.max_abs < 1e-12 for e in r.entries)


# ---- malformed cells: one line, naming cell, method, expected and got ---------------------

class NoBackward(VanillaMath):
    backward_step = None

    def __init__(self):
        super().__init__("tanh")


class TooManyStates(TanhCell):
    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        return super().reference_step(gi, state, w_hh, b_hh) * 2


class WideState(TanhCell):
    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        return (torch.cat([state[0], state[0]], 1),)


class BadShapes(TanhCell):
    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        torch.mul(dstate[0], pre[0][:, :2], out=dgi)


class ForgetsDgi(TanhCell):
    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        dhrec.addmm_(dstate[0] * pre[0], w_hh)


class WritesPrev(TanhCell):
    """Halves h_{t-1} after reading it: gradcheck stopped on autograd's in-place error."""

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        super().forward_step(gi, prev, hrec, w_hh_t, b_hh, cache, out, params)
        prev[0].mul_(0.5)


class WrongWhhShape(TanhCell):
    def weight_grad_hh(self, dgh, hrec, cache, pre):
        return dgh


LNCell = type(LN_CELLS["RNN_TANH"])


class TooFewParamGrads(LNCell):
    def __init__(self):
        super().__init__("tanh")

    def param_grads(self, cache, pre, dG, dGh, dS, params):
        return super().param_grads(cache, pre, dG, dGh, dS, params)[:1]


class Float32Cache(TanhCell):
    """A cache made by torch.empty: float32 in the float64 check, every gradient called wrong
    at 1e-7; a float32 δW_hh passed as ok."""

    def alloc_cache(self, n, sizes, like, gi):
        return (torch.empty(n, sizes[0]),)


class Float32Whh(TanhCell):
    def weight_grad_hh(self, dgh, hrec, cache, pre):
        return super().weight_grad_hh(dgh, hrec, cache, pre).float()


@pytest.mark.parametrize("cell,words", [
    (Float32Cache, ["Float32Cache.alloc_cache must return buffers of the layer's dtype "
                    "torch.float64", "got torch.float32"]),
    (Float32Whh, ["Float32Whh.weight_grad_hh must return δW_hh of the layer's dtype",
                  "got torch.float32"]),
    (NoBackward, ["NoBackward", "backward_step"]),
    (VanillaMath, ["VanillaMath()", "without arguments"]),
    (TooManyStates, ["TooManyStates.reference_step", "1 state", "(2, 4)"]),
    (WideState, ["WideState.reference_step", "(2, 4)", "(2, 8)"]),
    (BadShapes, ["BadShapes.backward_step", "RuntimeError"]),
    (ForgetsDgi, ["ForgetsDgi.backward_step", "dgi"]),
    (WritesPrev, ["WritesPrev.forward_step must not write into prev[0]"]),
    (WrongWhhShape, ["WrongWhhShape.weight_grad_hh", "(4, 4)", "(2, 4)"]),
    (TooFewParamGrads, ["TooFewParamGrads.param_grads", "ln_hh_bias", "got [(4,)]"]),
    (object(), ["rnnkit.Cell", "object"]),
])
def test_malformed_cell_is_one_line(cell, words):
    with pytest.raises(CellError) as e:
        check_cell(cell)
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="hidden_size"):
        check_cell(TanhCell, hidden_size=0)


def test_a_float64_layer_refuses_a_cell_whose_buffers_are_float32():
    """The layer ran it at float32 precision without a word."""
    registry.register("test-f32-cache", Float32Cache)
    with pytest.raises(CellError, match="alloc_cache must return buffers of the layer's dtype "
                                        "torch.float64"):
        rnnkit.Recurrent("test-f32-cache", 3, 4, dtype=torch.float64)
    rnnkit.Recurrent("test-f32-cache", 3, 4)                  # float32 buffers of a float32 layer
    rnnkit.Recurrent("test-f32-cache", 3, 4, dtype=torch.bfloat16)   # ... of a bf16 one: finer
