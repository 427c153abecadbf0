"""``rnnkit check-cell FILE``: the tutorial's cell passes, a wrong gradient exits 1 and names
itself, a file that does not load or holds a malformed cell is one line, exit 2; the tutorial
(docs/own-cell.md) shows and runs that cell."""
import importlib.util
import textwrap
from pathlib import Path

import pytest
import torch

import rnnkit
from rnnkit.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "my_rnn_cell.py"


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


def test_a_backward_that_leaves_a_part_of_dstate_is_named(tmp_path, capsys):
    """Gradient telemetry reads dstate after each step's backward: a backward that leaves
    there a part of dL/ds_t gives right weight gradients and wrong recorded norms, so its δs_t
    row is wrong and says why; the same backward writing its total back passes."""
    path = tmp_path / "two.py"
    path.write_text(TWO_STATES, encoding="utf-8")
    assert main(["check-cell", str(path)]) == 1
    out = capsys.readouterr().out
    assert "the backward left only a part of dL/ds_t in dstate" in out
    total = TWO_STATES.replace("dc = dstate[1] + dstate[0] * pre[0]",
                               "dc = dstate[1].addcmul_(dstate[0], pre[0])")
    assert total != TWO_STATES
    path.write_text(total, encoding="utf-8")
    assert main(["check-cell", str(path)]) == 0
    assert "every gradient agrees" in capsys.readouterr().out


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


def test_a_helper_base_class_of_the_files_cells_is_not_checked_as_a_cell(tmp_path, capsys):
    """A base class holding some of the methods (shared by the file's cells) is no cell of its
    own: the file's cell is checked, where the base was refused as malformed (exit 2)."""
    source = TWO_STATES.replace("class TwoState(rnnkit.Cell):", "class Base(rnnkit.Cell):\n"
                                "    STATES = ('h', 'c')\n\n\nclass TwoState(Base):")
    source = source.replace("dc = dstate[1] + dstate[0] * pre[0]",
                            "dc = dstate[1].addcmul_(dstate[0], pre[0])")
    path = tmp_path / "based.py"
    path.write_text(source, encoding="utf-8")
    assert main(["check-cell", str(path)]) == 0
    out = capsys.readouterr().out
    assert "TwoState" in out and "Base:" not in out and "every gradient agrees" in out
