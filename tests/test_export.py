"""rnnkit.export: to_torch, and trained runs as ONNX (run in onnxruntime) and torch.export
programs, checked against rnnkit at two sequence lengths (the time axis is dynamic)."""
import os
import re

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.cli.main import main
from rnnkit.export import ExportError, to_torch
from tests.lm_fixtures import write_corpus

TINY = ["--seq-len", "8", "--batch", "4", "--layers", "2", "--hidden", "8", "--embed", "6",
        "--eval-every", "2", "--warmup-steps", "0", "--max-steps", "2", "--quiet"]
LENGTHS = ((1, 3), (2, 11))          # (batch, time): two lengths, two batch sizes


def _ort():
    pytest.importorskip("onnx", reason="the export extra is not installed (pip install "
                                       "'rnnkit[export]')")
    pytest.importorskip("onnxscript", reason="the export extra is not installed")
    return pytest.importorskip("onnxruntime", reason="the export extra is not installed")


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
    ort = _ort()
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


def test_onnx_refuses_a_cell_it_has_no_operator_for(lm_runs, tmp_path, capsys):
    _ort()
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


def test_export_refuses_runs_of_an_unknown_kind(tmp_path, capsys):
    from rnnkit.train.checkpoint import save_checkpoint
    save_checkpoint(tmp_path / "c.pt", {"kind": "segment", "model": {}})
    assert main(["export", str(tmp_path / "c.pt"), "--format", "pt2", "--out",
                 str(tmp_path / "x.pt2")]) == 2
    assert "runs of kind 'segment' cannot be exported (lm, forecast" in capsys.readouterr().err


def test_autoregressive_forecaster_onnx_and_pt2(tmp_path):
    ort = _ort()
    from rnnkit.export.programs import forecast_programs
    from rnnkit.export.writers import write_onnx, write_pt2
    from rnnkit.models.forecaster import Forecaster, ForecasterConfig
    model = Forecaster(ForecasterConfig(features=2, hidden=5, layers=1, mode="autoregressive",
                                        horizon=3)).eval()
    program = forecast_programs(model, 6)[0]
    write_onnx(program, tmp_path / "f.onnx")
    write_pt2(program, tmp_path / "f.pt2")
    sess = ort.InferenceSession(str(tmp_path / "f.onnx"))
    loaded = rnnkit.export.load(tmp_path / "f.pt2").module()
    for B, T in LENGTHS:
        z = torch.randn(B, T, 2)
        with torch.no_grad():
            want = model(z)
        np.testing.assert_allclose(sess.run(None, {"window": z.numpy()})[0], want.numpy(),
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(loaded(z), want)


@pytest.mark.parametrize("per_column", [False, True])
def test_forecaster_with_history_smoothing_takes_its_forecast_as_an_input(tmp_path, per_column):
    """A direct forecaster whose forecast uses the smoothing over the whole history exports
    with that smoothing's forecast as a second input, and computes what the model does (with
    one smoothing, or one a variable, each with its share)."""
    ort = _ort()
    from rnnkit.export.programs import forecast_programs
    from rnnkit.export.writers import write_onnx, write_pt2
    from rnnkit.models.forecaster import Forecaster, ForecasterConfig
    torch.manual_seed(0)
    model = Forecaster(ForecasterConfig(features=2, hidden=5, layers=1, horizon=3,
                                        window=6, per_column=per_column)).eval()
    if per_column:
        model.set_smoothing([[0.5, 0.1, 0.0, 0.9, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]],
                            share=[0.4, 0.0])
    else:
        model.set_smoothing([0.5, 0.1, 0.0, 0.9, 0.0], share=0.4)
    assert model.uses_history()
    program = forecast_programs(model, 6)[0]
    assert program.inputs == ["window", "smoothing"]
    write_onnx(program, tmp_path / "f.onnx")
    write_pt2(program, tmp_path / "f.pt2")
    sess = ort.InferenceSession(str(tmp_path / "f.onnx"))
    loaded = rnnkit.export.load(tmp_path / "f.pt2").module()
    for B in (1, 3):
        z, hist = torch.randn(B, 6, 2), torch.randn(B, 3, 2)
        with torch.no_grad():
            want = model(z, hist)
            assert not torch.allclose(want, model(z, hist + 1))     # the input is used
        np.testing.assert_allclose(sess.run(None, {"window": z.numpy(),
                                                   "smoothing": hist.numpy()})[0],
                                   want.numpy(), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(loaded(z, hist), want)


def _classifier():
    from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
    return SequenceClassifier(ClassifierConfig(vocab_size=9, num_classes=3, cell="lstm",
                                               layers=1, hidden=5, embed=4, bidirectional=True,
                                               pooling="last"))


def _bag_classifier(**config):
    """A classifier with a trained bag (zero at the start): tokens and n-grams that score."""
    from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
    model = SequenceClassifier(ClassifierConfig(vocab_size=9, num_classes=3, hidden=5, embed=4,
                                                bag="on", bag_buckets=5, **config))
    with torch.no_grad():
        model.bag.tokens.weight[1:].normal_()
        model.bag.grams.weight[1:].normal_()
    return model


def _gram_classifier():   # n-grams that repeat, each counted once
    return _bag_classifier(cell="gru", layers=2, pooling="attention", ngrams=2,
                           bag_counts="once")


def _char_gram_classifier():   # words' character 2-grams in the bag, scaled apart ("log")
    return _bag_classifier(cell="gru", ngrams=2, char_grams=2)


def _bag_order_classifier():   # 2-3-grams embedded, the bag reads the 2-grams alone ("log")
    return _bag_classifier(cell="lstm", ngrams=3, bag_ngrams=2)


def _reading_classifier():   # the recurrent part reads the first 5 steps, the bag all
    from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
    model = SequenceClassifier(ClassifierConfig(vocab_size=9, num_classes=3, cell="lstm",
                                                hidden=5, embed=4, ngrams=2, bag="on",
                                                bag_buckets=5, rnn_len=5))
    with torch.no_grad():
        model.bag.tokens.weight[1:].normal_()
    return model


def _tagger():
    from rnnkit.models.tagger import SequenceTagger, TaggerConfig
    return SequenceTagger(TaggerConfig(vocab_size=9, num_tags=4, cell="lstm", layers=1, hidden=5,
                                       embed=4))


def _char_tagger():
    from rnnkit.models.tagger import SequenceTagger, TaggerConfig
    return SequenceTagger(TaggerConfig(vocab_size=9, num_tags=4, cell="gru", layers=1, hidden=5,
                                       embed=4, char_vocab_size=7, char_embed=3, char_hidden=4))


def _gram_tagger():   # characters, the n-grams around each token and the linear window term
    from rnnkit.models.tagger import SequenceTagger, TaggerConfig
    model = SequenceTagger(TaggerConfig(vocab_size=9, num_tags=4, cell="lstm", layers=1, hidden=5,
                                        embed=4, char_vocab_size=7, char_embed=3, char_hidden=4,
                                        ngrams=3, buckets=5, window=1, window_buckets=5, crf=True))
    with torch.no_grad():
        model.window.weight[1:].normal_()
    return model


@pytest.mark.parametrize("make,kind", [
    pytest.param(_char_tagger, "tag", id="char-tagger"),
    pytest.param(_gram_tagger, "tag", id="gram-tagger"),
    pytest.param(_classifier, "classify", id="bilstm-last"),
    pytest.param(_gram_classifier, "classify", id="gru-grams", marks=pytest.mark.slow),
    pytest.param(_reading_classifier, "classify", id="rnn-reads-5-of-8"),
    pytest.param(_char_gram_classifier, "classify", id="word-character-grams"),
    pytest.param(_bag_order_classifier, "classify", id="bag-reads-2-of-3-grams"),
    pytest.param(_tagger, "tag", id="tagger")])
def test_variable_length_models_onnx_and_pt2(make, kind, tmp_path):
    """Padded batches with their lengths: packing in ONNX (sequence_lens), held states in pt2."""
    ort = _ort()
    from rnnkit.export import programs, writers
    model = make().eval()
    program = (programs.classify_programs if kind == "classify" else programs.tag_programs)(model)[0]
    writers.write_onnx(program, tmp_path / "m.onnx")
    writers.write_pt2(program, tmp_path / "m.pt2")
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"))
    loaded = rnnkit.export.load(tmp_path / "m.pt2").module()
    g = torch.Generator().manual_seed(0)
    for B, T in ((1, 3), (3, 8)):
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        lengths[0] = T
        named = {"tokens": torch.randint(1, 9, (B, T), generator=g), "lengths": lengths}
        if "grams" in program.inputs:
            G = program.args[program.inputs.index("grams")].shape[2]
            named["grams"] = torch.randint(0, 5, (B, T, G), generator=g)
        if "chars" in program.inputs:                    # words of 1..4 characters, 0 at padding
            W = 4
            char_lengths = torch.randint(1, W + 1, (B, T), generator=g)
            char_lengths[torch.arange(T)[None] >= lengths[:, None]] = 0
            chars = torch.randint(1, 7, (B, T, W), generator=g)
            chars[torch.arange(W)[None, None] >= char_lengths[..., None]] = 0
            named.update(chars=chars, char_lengths=char_lengths)
        args = tuple(named[n] for n in program.inputs)
        with torch.no_grad():
            want = model(*args) if kind == "classify" else model(        # the sparse char path
                *(named.get(n) for n in ("tokens", "lengths", "chars", "char_lengths", "grams")))
        got = sess.run(None, {n: a.numpy() for n, a in zip(program.inputs, args)})[0]
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(loaded(*args), want)


@pytest.mark.parametrize("cell,attention", [
    ("lstm", "general"), pytest.param("gru", "none", marks=pytest.mark.slow)])
def test_seq2seq_encoder_and_decoder_step_onnx_and_pt2(cell, attention, tmp_path):
    """The encoder's state out, one decoder step with that state in and the next state out,
    at two source lengths; both formats' decoders take the same inputs (the ONNX exporter
    drops an input nothing reads: the program reads every one)."""
    ort = _ort()
    from rnnkit.export.programs import seq2seq_programs
    from rnnkit.export.writers import write_onnx, write_pt2
    from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
    model = Seq2Seq(Seq2SeqConfig(src_vocab=9, tgt_vocab=7, cell=cell, embed=4, enc_hidden=5,
                                  hidden=6, enc_layers=1, dec_layers=2, bidirectional=True,
                                  attention=attention)).eval()
    enc, dec = seq2seq_programs(model)
    run = {}
    for p in (enc, dec):
        write_onnx(p, tmp_path / f"{p.name}.onnx")
        write_pt2(p, tmp_path / f"{p.name}.pt2")
        run[p.name] = (ort.InferenceSession(str(tmp_path / f"{p.name}.onnx")),
                       rnnkit.export.load(tmp_path / f"{p.name}.pt2").module())
    g = torch.Generator().manual_seed(0)
    for B, S in ((1, 3), (3, 7)):
        src = torch.randint(1, 9, (B, S), generator=g)
        lengths = torch.randint(1, S + 1, (B,), generator=g)
        lengths[0] = S
        y = torch.randint(1, 7, (B,), generator=g)
        with torch.no_grad():
            state = model.encode(src, lengths)
            logits, nxt = model.step(y, state)
        rnn = nxt["rnn"] if isinstance(nxt["rnn"], tuple) else (nxt["rnn"],)
        want = [logits, nxt["feed"], *rnn] + ([nxt["attn"]] if attention != "none" else [])
        onnx_enc, pt2_enc = run["encoder"]
        got_enc = onnx_enc.run(None, {"src": src.numpy(), "lengths": lengths.numpy()})
        np.testing.assert_allclose(got_enc[0], state["memory"].numpy(), rtol=1e-5, atol=1e-5)
        onnx_dec, pt2_dec = run["decoder"]
        assert [i.name for i in onnx_dec.get_inputs()] == dec.inputs
        feed = dict(zip(enc.outputs, got_enc))
        got = onnx_dec.run(None, {"y_prev": y.numpy(), **feed})
        got2 = pt2_dec(y, *pt2_enc(src, lengths))
        assert len(got) == len(got2) == len(want)
        for a, b, w in zip(got, got2, want):
            np.testing.assert_allclose(a, w.numpy(), rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(b, w)


@pytest.mark.slow
def test_seq2seq_run_exports_an_encoder_and_a_decoder(tmp_path, capsys):
    from tests.seq2seq_fixtures import train_run
    run = train_run(tmp_path, "seq2seq", 2)
    capsys.readouterr()
    assert main(["export", str(run), "--format", "pt2", "--out", str(tmp_path / "t.pt2")]) == 0
    out = capsys.readouterr().out
    assert "t-encoder.pt2: seq2seq encoder" in out and "t-decoder.pt2: seq2seq decoder step" in out
    encoder = rnnkit.export.load(tmp_path / "t-encoder.pt2").module()
    decoder = rnnkit.export.load(tmp_path / "t-decoder.pt2").module()
    src, lengths = torch.tensor([[4, 5, 6], [7, 8, 0]]), torch.tensor([3, 2])
    logits = decoder(torch.tensor([1, 1]), *encoder(src, lengths))[0]
    assert logits.shape[0] == 2 and torch.isfinite(logits).all()


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


def test_onnx_export_keeps_stderr_free_of_packed_sequence_notices(tmp_path, capfd):
    """The TorchScript exporter prints a C++ shape notice for every packed sequence; the files
    come out right (above), so rnnkit drops those lines and passes every other one through."""
    from rnnkit.export import programs, writers
    writers.write_onnx(programs.tag_programs(_tagger().eval())[0], tmp_path / "m.onnx")
    assert "prim::PackPadded" not in capfd.readouterr().err
    with writers._without_shape_notices():
        os.write(2, b"[W] Warning: The shape inference of prim::PadPacked type is missing, so\n"
                    b"another notice\n")
    assert capfd.readouterr().err == "another notice\n"
