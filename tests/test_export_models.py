"""rnnkit.export for the task models (forecaster, classifier, tagger, seq2seq): each model's
programs run in onnxruntime and ``rnnkit.export.load(...).module()`` against the model itself
at two lengths and batch sizes, padded batches with their lengths included."""
import os

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.cli.main import main

from helpers import onnxruntime_or_skip

LENGTHS = ((1, 3), (2, 11))          # (batch, time): two lengths, two batch sizes


def test_autoregressive_forecaster_onnx_and_pt2(tmp_path):
    ort = onnxruntime_or_skip()
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
    ort = onnxruntime_or_skip()
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


def test_forecaster_with_history_but_no_share_exports_to_pt2(tmp_path):
    """A run whose history smoothing took no share (--baseline last or seasonal) checked the
    share's values in forward, which torch.export cannot trace: an internal error."""
    from rnnkit.export.programs import forecast_programs
    from rnnkit.export.writers import write_pt2
    from rnnkit.models.forecaster import Forecaster, ForecasterConfig
    torch.manual_seed(0)
    model = Forecaster(ForecasterConfig(features=1, hidden=5, layers=1, horizon=3,
                                        window=6)).eval()
    assert model.config.history and not model.uses_history()
    program = forecast_programs(model, 6)[0]
    write_pt2(program, tmp_path / "f.pt2")
    z = torch.randn(2, 6, 1)
    with torch.no_grad():
        torch.testing.assert_close(rnnkit.export.load(tmp_path / "f.pt2").module()(z), model(z))


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
    ort = onnxruntime_or_skip()
    from rnnkit.export import programs, writers
    model = make().eval()
    program = (programs.classify_programs if kind == "classify" else programs.tag_programs)(model)[0]
    writers.write_onnx(program, tmp_path / "m.onnx")
    writers.write_pt2(program, tmp_path / "m.pt2")
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"))
    loaded = rnnkit.export.load(tmp_path / "m.pt2").module()
    g = torch.Generator().manual_seed(0)
    for B, T in ((1, 3), (3, 8), (3, 1), (1, 1)):   # one-word sentences too
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
    ort = onnxruntime_or_skip()
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


def test_a_pt2_holding_other_pickles_than_tensors_is_refused_and_runs_nothing(tmp_path):
    """torch reads a pt2's sample inputs with weights_only=False: a crafted file ran its code."""
    import io
    import zipfile
    from rnnkit.export.programs import forecast_programs
    from rnnkit.export.writers import write_pt2
    from rnnkit.models.forecaster import Forecaster, ForecasterConfig
    from rnnkit.train import CheckpointError
    model = Forecaster(ForecasterConfig(features=2, hidden=5, layers=1, mode="autoregressive",
                                        horizon=3)).eval()
    write_pt2(forecast_programs(model, 6)[0], tmp_path / "f.pt2")
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    blob = io.BytesIO()
    torch.save({"x": Payload()}, blob)
    with zipfile.ZipFile(tmp_path / "f.pt2") as good, \
            zipfile.ZipFile(tmp_path / "evil.pt2", "w") as evil:
        for item in good.infolist():
            evil.writestr(item, blob.getvalue() if item.filename.endswith("sample_inputs/model.pt")
                          else good.read(item.filename))
    with pytest.raises(CheckpointError, match="evil.pt2: holds pickled objects other than "
                                              "tensors.*GLOBAL posix.system"):
        rnnkit.export.load(tmp_path / "evil.pt2")
    assert not marker.exists() and "TORCH_FORCE_WEIGHTS_ONLY_LOAD" not in os.environ
    assert rnnkit.export.load(tmp_path / "f.pt2").module() is not None
