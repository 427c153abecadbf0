"""check_cell and ``rnnkit check-cell``: every rnnkit cell passes; a planted wrong derivative is
caught and named (which gradient, how much, where); a malformed cell is one line, exit 2."""
import importlib.util
import textwrap
from pathlib import Path

import pytest
import torch

import rnnkit
from rnnkit.cells import LN_CELLS, registry
from rnnkit.cells.check import check_cell
from rnnkit.cells.gru import GRUMath
from rnnkit.cells.gru_reset_before import GRUResetBeforeMath
from rnnkit.cells.lstm import LSTMMath
from rnnkit.cells.lstm_proj import ProjectedLSTMMath
from rnnkit.cells.rnn import VanillaMath
from rnnkit.cli.main import main

CellError = rnnkit.CellError
EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "my_rnn_cell.py"
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


class WrongWhhShape(TanhCell):
    def weight_grad_hh(self, dgh, hrec, cache, pre):
        return dgh


LNCell = type(LN_CELLS["RNN_TANH"])


class TooFewParamGrads(LNCell):
    def __init__(self):
        super().__init__("tanh")

    def param_grads(self, cache, pre, dG, dGh, dS, params):
        return super().param_grads(cache, pre, dG, dGh, dS, params)[:1]


@pytest.mark.parametrize("cell,words", [
    (NoBackward, ["NoBackward", "backward_step"]),
    (VanillaMath, ["VanillaMath()", "without arguments"]),
    (TooManyStates, ["TooManyStates.reference_step", "1 state", "(2, 4)"]),
    (WideState, ["WideState.reference_step", "(2, 4)", "(2, 8)"]),
    (BadShapes, ["BadShapes.backward_step", "RuntimeError"]),
    (ForgetsDgi, ["ForgetsDgi.backward_step", "dgi"]),
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


# ---- the command line --------------------------------------------------------------------

GOOD = EXAMPLE.read_text()
WRONG = GOOD.replace("dhrec.addmm_(dgi, w_hh)", "dhrec.addmm_(dgi, w_hh, alpha=0.5)")


def check(tmp_path, capsys, source, *flags, name="mycell.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    code = main(["check-cell", str(path), *flags])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_passes_the_tutorial_cell(capsys):
    code = main(["check-cell", str(EXAMPLE), "--steps", "3", "--hidden", "5"])
    out = capsys.readouterr().out
    assert code == 0 and "every gradient agrees" in out and "H=5" in out


def test_cli_names_a_wrong_gradient(tmp_path, capsys):
    assert WRONG != GOOD
    code, out, err = check(tmp_path, capsys, WRONG)
    assert code == 1 and err == ""
    line = next(l for l in out.splitlines() if l.strip().startswith("δh_{t-1}"))
    assert "WRONG" in line


@pytest.mark.parametrize("source,flags,words", [
    ("def broken(:\n", (), ["mycell.py:1", "does not load", "SyntaxError"]),
    ("import no_such_module_here\n", (), ["does not load", "ModuleNotFoundError"]),
    ("raise RuntimeError('boom')\n", (), ["mycell.py:1", "RuntimeError: boom"]),
    ("x = 1\n", (), ["no cell class"]),
    (GOOD, ("--class", "Nope"), ["no 'Nope'", "MyRNNCell"]),
    (GOOD.replace("def backward_step", "def backward_stp"), (), ["backward_step"]),
])
def test_cli_malformed_exits_2(tmp_path, capsys, source, flags, words):
    code, out, err = check(tmp_path, capsys, source, *flags)
    assert code == 2 and out == ""
    assert err.startswith("rnnkit: error: ") and err.count("\n") == 1
    assert all(w in err for w in words), err


def test_an_exception_in_the_cells_code_names_its_file_and_line(tmp_path, capsys):
    boom = GOOD.replace("        torch.tanh(torch.addmm(gi, hrec, w_hh_t), out=out[0])",
                        "        raise ValueError('boom')")
    assert boom != GOOD
    code, out, err = check(tmp_path, capsys, boom)
    line = 1 + next(i for i, text in enumerate(boom.splitlines()) if "raise ValueError" in text)
    assert code == 2 and f"raised ValueError: boom (at {tmp_path / 'mycell.py'}:{line})" in err


def test_cli_class_picks_one(tmp_path, capsys):
    code, out, _ = check(tmp_path, capsys, GOOD + "\nclass Other(MyRNNCell):\n    pass\n",
                         "--class", "Other", "--steps", "2")
    assert code == 0 and "check-cell Other" in out


def test_cli_checks_every_cell_of_a_file(tmp_path, capsys):
    wrong = WRONG.replace("class MyRNNCell", "class WrongCell")
    code, out, _ = check(tmp_path, capsys, GOOD + "\nclass Other(MyRNNCell):\n    pass\n",
                         "--steps", "2")
    assert code == 0 and "== MyRNNCell (1 of 2 cells in" in out and "== Other (2 of 2" in out
    assert out.count("every gradient agrees") == 2
    code, out, _ = check(tmp_path, capsys, GOOD + "\n" + wrong.split("import torch", 1)[1],
                         "--steps", "2")
    assert code == 1 and "== WrongCell (2 of 2" in out and "WRONG" in out.split("== WrongCell")[1]
    assert "WRONG" not in out.split("== WrongCell")[0]


def test_cli_checks_a_files_instances_where_its_class_takes_arguments(capsys):
    from rnnkit.cells import rnn
    code = main(["check-cell", rnn.__file__, "--steps", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "== RNN_TANH (1 of 2" in out and "== RNN_RELU (2 of 2" in out


def test_cli_file_imports_its_neighbours(tmp_path, capsys):
    """A cell file that imports a module beside it loads as under `python FILE`."""
    (tmp_path / "helpers_beside.py").write_text("SCALE = 1.0\n")
    code, out, _ = check(tmp_path, capsys, "import helpers_beside\n" + GOOD, "--steps", "2")
    assert code == 0 and "every gradient agrees" in out


def test_cli_a_class_that_takes_arguments_asks_for_an_instance(tmp_path, capsys):
    code, out, err = check(tmp_path, capsys, GOOD + "\nclass Scaled(MyRNNCell):\n"
                           "    def __init__(self, scale):\n        self.scale = scale\n",
                           "--class", "Scaled")
    assert code == 2 and "define an instance in the file (CELL = Scaled(...))" in err


def test_cli_missing_file(tmp_path, capsys):
    assert main(["check-cell", str(tmp_path / "none.py")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["check-cell", str(tmp_path)]) == 2
    assert "a folder; FILE is the Python file" in capsys.readouterr().err


# ---- the tutorial (docs/own-cell.md) -------------------------------------------------------

DOC = EXAMPLE.parents[1] / "own-cell.md"


def test_tutorial_shows_the_example_file_as_it_is():
    blocks = DOC.read_text().split("```python\n")
    assert any(b.split("```")[0] == GOOD for b in blocks), "docs/own-cell.md: the cell differs"
    assert len(GOOD.splitlines()) <= 60


def test_tutorial_layer_snippet_runs(monkeypatch):
    snippet = next(b.split("```")[0] for b in DOC.read_text().split("```python\n")
                   if "rnnkit.Recurrent(MyRNNCell" in b)
    monkeypatch.syspath_prepend(str(EXAMPLE.parent))
    scope = {}
    exec(snippet, scope)
    assert scope["out"].shape == (20, 8, 32) and scope["h_n"].shape == (1, 8, 32)


def test_tutorial_breaks_the_cell_the_way_the_test_does():
    assert "s/dhrec.addmm_(dgi, w_hh)/dhrec.addmm_(dgi, w_hh, alpha=0.5)/" in DOC.read_text()


def load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tutorial_training_learns(capsys):
    module = load(EXAMPLE.parent / "train_my_rnn.py")
    losses = module.train(steps=40, log_every=20)
    assert losses[-1] < 0.3 * losses[0]                    # 1.0 -> well under it in 40 steps
    assert "step   40" in capsys.readouterr().out


def test_tutorial_cell_as_a_layer_is_torch_rnn():
    """The tutorial's claim: torch.nn.RNN's state_dict loads into Recurrent(MyRNNCell) and
    gives the same outputs and gradients."""
    module = load(EXAMPLE)
    ref = torch.nn.RNN(2, 5, num_layers=2, bidirectional=True)
    mine = rnnkit.Recurrent(module.MyRNNCell, 2, 5, num_layers=2, bidirectional=True)
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(6, 3, 2, requires_grad=True)
    (a, ha), (b, hb) = mine(x), ref(x)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(ha, hb)
    ga = torch.autograd.grad(a.sum(), [x, *mine.parameters()])
    gb = torch.autograd.grad(b.sum(), [x, *ref.parameters()])
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v)


# ---------------------------------------------------------------- recurrent dropout, dstate
EXAMPLE = Path(__file__).resolve().parents[1] / "docs/examples/my_rnn_cell.py"


def cell_file(tmp_path, name, old, new):
    """The example cell with one line changed, written to ``tmp_path/name``."""
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


@pytest.mark.parametrize("old, new", [
    ("dhrec.addmm_(dgi, w_hh)", "dprev[0].addmm_(dgi, w_hh)"),      # δh^r added to δh_{t-1}
    ("torch.addmm(gi, hrec, w_hh_t)", "torch.addmm(gi, prev[0], w_hh_t)")])   # h for h^r
def test_a_slip_between_h_and_its_dropped_out_copy_is_found(tmp_path, capsys, old, new):
    """Without recurrent dropout h^r is h_{t-1} and dδh^r is δh_{t-1}: only a case with a mask
    tells them apart."""
    assert main(["check-cell", str(cell_file(tmp_path, "slip.py", old, new))]) == 1
    assert "wrong: rec. dropout" in capsys.readouterr().out


TWO_STATES = '''import torch
import rnnkit


class TwoState(rnnkit.Cell):
    STATES = ("h", "c")

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        torch.add(torch.addmm(gi, hrec, w_hh_t), prev[1], alpha=0.5, out=out[1])
        torch.tanh(out[1], out=out[0])

    def prepare_backward(self, cache, states, prev, params):
        return (1 - states[0] ** 2,)

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        dc = dstate[1] + dstate[0] * pre[0]        # the total δc_t, not written back
        dgi.copy_(dc)
        dprev[1].add_(dc, alpha=0.5)
        dhrec.addmm_(dgi, w_hh)

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        h = state[0] if hrec is None else hrec
        c = 0.5 * state[1] + gi + h @ w_hh.t() + (0 if b_hh is None else b_hh)
        return (torch.tanh(c), c)
'''


def test_a_backward_that_leaves_dstate_as_it_came_passes(tmp_path, capsys):
    """dstate may be updated in place, or not: a right backward that does not is right."""
    path = tmp_path / "two.py"
    path.write_text(TWO_STATES, encoding="utf-8")
    assert main(["check-cell", str(path)]) == 0
    out = capsys.readouterr().out
    assert "every gradient agrees" in out and "need not leave holding dL/ds_t" in out


def test_a_reference_step_cut_off_from_autograd_is_malformed(tmp_path, capsys):
    path = cell_file(tmp_path, "detached.py", "return (torch.tanh(a),)",
                     "return (torch.tanh(a).detach(),)")
    assert main(["check-cell", str(path)]) == 2
    assert "reference_step must return states computed from its inputs by autograd" in \
        capsys.readouterr().err


def test_a_reference_of_nan_or_inf_is_wrong(tmp_path, capsys):
    """Comparisons with NaN are all false: a reference_step giving NaN (or inf) had every row
    'ok' and the verdict 'every gradient agrees'."""
    for bad in ("torch.tanh(a) * float('nan')", "torch.tanh(a) * float('inf')"):
        source = GOOD.replace("return (torch.tanh(a),)", f"return ({bad},)")
        assert source != GOOD
        code, out, err = check(tmp_path, capsys, source)
        assert code == 1 and "NaN or inf values" in out and "every gradient agrees" not in out


def test_large_sizes_keep_the_gradcheck_tame_and_any_suffix_loads(tmp_path, capsys):
    """A right cell at the largest sizes check-cell takes: the gradcheck runs on a short
    sequence (over 64 steps with a dropout mask the state turned chaotic, finite differences
    called the right cell WRONG and gradcheck's explanation grew past 16 GB); a cell file
    without the .py suffix loads."""
    code, out, err = check(tmp_path, capsys, GOOD, "--batch", "1", "--steps", "64",
                           "--hidden", "64", name="mycell.txt")
    assert code == 0 and "every gradient agrees" in out, out + err
