"""rnnkit.export: to_torch, and trained language-model runs as ONNX (run in onnxruntime) and
torch.export programs, checked against rnnkit at two sequence lengths (the time axis is dynamic);
what each format refuses."""
import re

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.cli.main import main
from rnnkit.export import ExportError, to_torch

from helpers import onnxruntime_or_skip
from tests.lm_fixtures import write_corpus

TINY = ["--seq-len", "8", "--batch", "4", "--layers", "2", "--hidden", "8", "--embed", "6",
        "--eval-every", "2", "--warmup-steps", "0", "--max-steps", "2", "--quiet"]
LENGTHS = ((1, 3), (2, 11))          # (batch, time): two lengths, two batch sizes


@pytest.mark.parametrize("make", [
    lambda: rnnkit.LSTM(4, 5, 2, bidirectional=True),
    lambda: rnnkit.GRU(4, 5, 1, batch_first=True),
    lambda: rnnkit.RNN(4, 5, 2, nonlinearity="relu", bias=False),
    lambda: rnnkit.LSTM(4, 5, 1, proj_size=3),
    lambda: rnnkit.Recurrent("gru", 4, 5, 1),
], ids=["lstm-bi", "gru", "rnn-relu", "lstm-proj", "recurrent-gru"])
def test_to_torch_is_the_same_layer(make):
    layer = make()
    ref = to_torch(layer)
    assert type(ref).__module__.startswith("torch.nn")
    x = torch.randn(3, 2, 4)
    (o1, s1), (o2, s2) = layer(x), ref(x)
    torch.testing.assert_close(o1, o2)
    for a, b in zip(s1 if isinstance(s1, tuple) else (s1,), s2 if isinstance(s2, tuple) else (s2,)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kwargs,what", [
    (dict(layer_norm=True), "layer_norm=True"),
    (dict(zoneout=0.1), "zoneout=(0.1, 0.1)"),
    (dict(learn_init=True), "learn_init=True"),
    (dict(recurrent_dropout=0.2), "recurrent_dropout=0.2"),
])
def test_to_torch_refuses_options_torch_nn_lacks(kwargs, what):
    with pytest.raises(ExportError, match=re.escape(f"LSTM with {what} has no torch.nn equivalent")):
        to_torch(rnnkit.LSTM(4, 5, 1, **kwargs))


def test_to_torch_refuses_other_cells_and_takes_training_only_options_for_inference():
    with pytest.raises(ExportError, match="GRU with reset_after=False"):
        to_torch(rnnkit.GRU(4, 5, reset_after=False))
    with pytest.raises(ExportError, match="Recurrent with cell indrnn"):
        to_torch(rnnkit.Recurrent("indrnn", 4, 5))
    layer = rnnkit.GRU(4, 5, recurrent_dropout=0.3, weight_dropout=0.2).eval()
    x = torch.randn(3, 2, 4)
    torch.testing.assert_close(to_torch(layer, inference=True)(x)[0], layer(x)[0])


class _UserModel(torch.nn.Module):
    """A user's model: rnnkit layers and cells nested among torch.nn modules."""

    def __init__(self, cell=rnnkit.GRUCell, **lstm):
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh())
        self.rnn = rnnkit.LSTM(6, 5, 2, batch_first=True, **lstm)
        self.heads = torch.nn.ModuleList([cell(6, 5), torch.nn.Linear(5, 3)])

    def forward(self, x):
        e = self.encoder(x)
        out, _ = self.rnn(e)
        return self.heads[1](out[:, -1] + self.heads[0](e[:, 0]))


@pytest.mark.parametrize("cell", [rnnkit.GRUCell, rnnkit.LSTMCell,
                                  lambda i, h: rnnkit.RNNCell(i, h, nonlinearity="relu")],
                         ids=["gru", "lstm", "rnn-relu"])
def test_to_torch_of_a_model_swaps_every_layer_and_cell(cell):
    model = _UserModel(lambda i, h: _CellOut(cell(i, h)))
    ref = to_torch(model)
    kinds = {type(m) for m in ref.modules()}
    assert not any(type(m).__module__.startswith("rnnkit") for m in ref.modules()
                   if not isinstance(m, (_UserModel, _CellOut))), kinds
    assert torch.nn.LSTM in kinds
    assert type(model.rnn) is rnnkit.LSTM                      # the model itself is left alone
    x = torch.randn(3, 7, 4, requires_grad=True)
    torch.testing.assert_close(ref(x), model(x))
    # what the swap is for: a gradient of a gradient (a penalty on the input's gradient)
    g, = torch.autograd.grad(ref(x).sum(), x, create_graph=True)
    g.pow(2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_jit_script_names_to_torch_and_scripts_what_it_gives():
    """TorchScript cannot compile rnnkit's time loop; torch's parser error showed a lambda of
    rnnkit's source. Now one line says what to script, and that works."""
    for module in (rnnkit.GRU(4, 5), rnnkit.LSTMCell(4, 5), _UserModel()):
        with pytest.raises(TypeError, match=r"cannot compile rnnkit's (GRU|LSTMCell|LSTM): "
                                            r"script rnnkit.to_torch\(model\)"):
            torch.jit.script(module)
    model = _UserModel().eval()
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(torch.jit.script(to_torch(model))(x), model(x))


class _CellOut(torch.nn.Module):
    """A cell whose output is its hidden state (an LSTMCell gives (h, c))."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x):
        out = self.cell(x)
        return out[0] if isinstance(out, tuple) else out


def test_to_torch_of_a_model_names_the_layer_torch_nn_cannot_express():
    with pytest.raises(ExportError, match=re.escape("rnn is a LSTM with layer_norm=True")):
        to_torch(_UserModel(layer_norm=True))
    model = _UserModel(recurrent_dropout=0.2).eval()
    with pytest.raises(ExportError, match="rnn is a LSTM with recurrent_dropout=0.2"):
        to_torch(model)
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(to_torch(model, inference=True)(x), model(x))


def test_to_torch_of_a_cell_is_torch_nn_cell():
    cell = rnnkit.LSTMCell(4, 5, bias=False).double()
    ref = to_torch(cell)
    assert type(ref) is torch.nn.LSTMCell and ref.weight_ih.dtype == torch.float64
    x = torch.randn(2, 4, dtype=torch.float64)
    for a, b in zip(ref(x), cell(x)):
        torch.testing.assert_close(a, b)


@pytest.fixture(scope="module")
def lm_runs(tmp_path_factory):
    """Tiny LM runs of torch's cells (two steps of training each) and one of a cell ONNX lacks."""
    root = tmp_path_factory.mktemp("export")
    corpus = write_corpus(root)
    runs = {}
    for cell in ("lstm", "gru", "indrnn"):
        runs[cell] = root / cell
        assert main(["train", "lm", "--data", str(corpus), "--out", str(runs[cell]),
                     "--cell", cell, *TINY]) == 0
    return runs


def _lm_reference(run, tokens, state):
    from rnnkit.tasks.lm import load_lm
    model, _ = load_lm(run)
    with torch.no_grad():
        logits, out = model(tokens, state if len(state) > 1 else state[0])
    return [logits, *(out if isinstance(out, tuple) else (out,))]


def _inputs(run, B, T, n_states):
    from rnnkit.tasks.lm import load_lm
    model, vocab = load_lm(run)
    g = torch.Generator().manual_seed(B * 100 + T)
    tokens = torch.randint(0, len(vocab), (B, T), generator=g)
    state = tuple(torch.randn(2, B, 8, generator=g) * 0.5 for _ in range(n_states))
    return tokens, state


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_lm_onnx_in_onnxruntime_equals_rnnkit(lm_runs, tmp_path, cell, capsys):
    ort = onnxruntime_or_skip()
    import onnx
    out = tmp_path / "lm.onnx"
    assert main(["export", str(lm_runs[cell]), "--format", "onnx", "--out", str(out)]) == 0
    assert "language model: tokens (B, T)" in capsys.readouterr().out
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert cell.upper() in ops                     # the layer as ONNX's own operator
    sess = ort.InferenceSession(str(out))
    n_states = 2 if cell == "lstm" else 1
    names = [i.name for i in sess.get_inputs()]
    assert names == ["tokens", "h", "c"][:1 + n_states]
    for B, T in LENGTHS:
        tokens, state = _inputs(lm_runs[cell], B, T, n_states)
        got = sess.run(None, {"tokens": tokens.numpy(),
                              **{n: s.numpy() for n, s in zip(names[1:], state)}})
        want = _lm_reference(lm_runs[cell], tokens, state)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w.numpy(), rtol=1e-5, atol=1e-5)


def test_lm_pt2_equals_rnnkit(lm_runs, tmp_path):
    out = tmp_path / "lm.pt2"
    assert main(["export", str(lm_runs["indrnn"]), "--format", "pt2", "--out", str(out)]) == 0
    program = rnnkit.export.load(out).module()
    for B, T in LENGTHS:
        tokens, state = _inputs(lm_runs["indrnn"], B, T, 1)
        got = program(tokens, *state)
        want = _lm_reference(lm_runs["indrnn"], tokens, state)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w)


def test_pt2_on_a_full_disk_is_an_error_not_an_abort(lm_runs, tmp_path, capsys, monkeypatch):
    """torch's zip writer, given a file name, wrote the archive from C++, where a full disk
    aborted the process (exit 134) in the writer's destructor; the archive is now made in memory
    and written from Python, where the disk's refusal is an OSError like any other write's."""
    import errno
    import io
    from rnnkit.export import writers

    class Full(io.BytesIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    def full_open(file, mode="r", *args, **kwargs):
        return Full() if "w" in mode else open(file, mode, *args, **kwargs)
    monkeypatch.setattr(writers, "open", full_open, raising=False)
    out = tmp_path / "lm.pt2"
    assert main(["export", str(lm_runs["lstm"]), "--format", "pt2", "--out", str(out)]) == 1
    assert "no space left on device" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_onnx_refuses_a_cell_it_has_no_operator_for(lm_runs, tmp_path, capsys):
    onnxruntime_or_skip()
    out = tmp_path / "lm.onnx"
    assert main(["export", str(lm_runs["indrnn"]), "--format", "onnx", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error: ") and "Traceback" not in err
    assert "cell indrnn, which the onnx format cannot express; export it with --format pt2" in err
    assert not out.exists()


def test_onnx_refuses_a_projected_lstm():
    from rnnkit.export import swap_layers
    with pytest.raises(ExportError, match="rnn is a LSTM with proj_size=2, which the onnx format "
                                          "cannot express; export it with --format pt2"):
        swap_layers(_Holder(rnnkit.LSTM(3, 4, proj_size=2)))


class _Holder(torch.nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn


def test_export_refuses_a_missing_output_folder(lm_runs, tmp_path, capsys):
    assert main(["export", str(lm_runs["lstm"]), "--format", "pt2", "--out",
                 str(tmp_path / "no" / "lm.pt2")]) == 2
    assert "the folder" in capsys.readouterr().err
    from rnnkit.export.writers import export_run
    with pytest.raises(ExportError, match="a folder; give a file name"):
        export_run(lm_runs["lstm"], "pt2", tmp_path)    # the command line refuses it earlier
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix) == []   # nothing beside it


def test_export_refuses_an_out_its_format_cannot_be_read_from(lm_runs, tmp_path, capsys):
    """ONNX written to x.pt2 looked like a damaged archive when loaded; pt2 without its suffix
    made torch warn on writing and loading; 'new/' wrote a file named new."""
    for fmt, out, said in (("onnx", "x.pt2", "a onnx program is a .onnx file"),
                           ("pt2", "x.onnx", "name it x.pt2"),
                           ("pt2", "noext", "name it noext.pt2"),
                           ("pt2", "new/", "is a folder, a file was expected")):
        argv = ["export", str(lm_runs["lstm"]), "--format", fmt, "--out",
                f"{tmp_path}/{out}"]
        try:
            code = main(argv)
        except SystemExit as e:   # argparse's own refusal of the flag
            code = e.code
        assert code == 2
        assert said in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_runs_of_an_unknown_kind(tmp_path, capsys):
    from rnnkit.train.checkpoint import save_checkpoint
    save_checkpoint(tmp_path / "c.pt", {"kind": "segment", "model": {}})
    assert main(["export", str(tmp_path / "c.pt"), "--format", "pt2", "--out",
                 str(tmp_path / "x.pt2")]) == 2
    assert "runs of kind 'segment' cannot be exported (lm, forecast" in capsys.readouterr().err


def test_pt2_refuses_a_cell_its_program_could_not_import(tmp_path):
    """A cell class loaded from a file by path: the saved program names its module, which a
    fresh process cannot import; the export says so instead of writing a program that fails
    when it runs."""
    import importlib.util
    from pathlib import Path
    from rnnkit.export import ExportError
    from rnnkit.export.programs import Program, _Forward
    from rnnkit.export.writers import write_pt2
    source = Path(__file__).resolve().parents[1] / "docs/examples/my_rnn_cell.py"
    spec = importlib.util.spec_from_file_location("cell_loaded_by_path", source)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    layer = rnnkit.Recurrent(mod.MyRNNCell, input_size=2, hidden_size=3)
    x = torch.randn(4, 2, 2)
    program = Program("", _Forward(layer), (x,), ["x"], ["y", "h"], {}, "a layer")
    with pytest.raises(ExportError, match=r"its cell MyRNNCell comes from module "
                                          r"'cell_loaded_by_path', which cannot be imported"):
        write_pt2(program, tmp_path / "l.pt2")


def test_plain_export_of_lengths_names_mask_lengths():
    """torch.export of lengths= failed inside torch (a data-dependent guard); mask_lengths'
    copy exports and equals eager."""
    from rnnkit.export import mask_lengths

    class Lengths(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rnnkit.GRU(5, 6, 2, bidirectional=True, batch_first=True)

        def forward(self, x, lengths):
            return self.rnn(x, lengths=lengths)[0]
    m, x, lengths = Lengths().eval(), torch.randn(3, 4, 5), torch.tensor([4, 2, 3])
    dims = ({0: torch.export.Dim("B"), 1: torch.export.Dim("T")}, {0: torch.export.Dim("B")})
    with pytest.raises(ValueError, match=r"GRU: lengths= packs the batch .* export "
                                         r"rnnkit.export.mask_lengths\(model\)"):
        torch.export.export(m, (x, lengths), dynamic_shapes=dims)
    program = torch.export.export(mask_lengths(m), (x, lengths), dynamic_shapes=dims)
    torch.testing.assert_close(program.module()(x, lengths), m(x, lengths))
    layer = m.rnn                          # a bare layer: its copy was returned unchanged
    program = torch.export.export(mask_lengths(layer), (x,), {"lengths": lengths})
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x, lengths=lengths)[0],
                                   layer(x, lengths=lengths)[0])


def test_to_torch_keeps_shared_layers_tied_and_frozen_parameters():
    """A layer under two names was swapped under one of them only; a parameter tied to another
    module was untied; a frozen parameter came back trainable."""
    class Siamese(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.left = self.right = rnnkit.GRU(3, 4, batch_first=True)
            self.head = torch.nn.Linear(4, 4, bias=False)
            self.head.weight = self.left.weight_hh_l0                  # tied
    m = Siamese()
    t = to_torch(m)
    assert t.left is t.right and isinstance(t.left, torch.nn.GRU)
    assert t.head.weight is t.left.weight_hh_l0 and t.head.weight is not m.head.weight
    assert sum(p.numel() for p in t.parameters()) == sum(p.numel() for p in m.parameters())
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(t.left(x)[0], m.left(x)[0])
    frozen = rnnkit.GRU(3, 4, 2)
    frozen.weight_hh_l1.requires_grad_(False)
    assert [n for n, p in to_torch(frozen).named_parameters() if not p.requires_grad] == \
        ["weight_hh_l1"]
    cell = rnnkit.LSTMCell(3, 4).requires_grad_(False)
    assert not any(p.requires_grad for p in to_torch(cell).parameters())
    wrapped = to_torch(torch.nn.Sequential(frozen))
    assert not wrapped[0].weight_hh_l1.requires_grad and wrapped[0].weight_hh_l0.requires_grad
