"""rnnkit export for the recogniser (CTC), image-to-text and cond runs: the files run in
onnxruntime and ``rnnkit.export.load(...).module()`` against rnnkit to 1e-5 at batch 1 and 3,
and greedy decoding driven by the exported programs gives rnnkit's own greedy output."""
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.cli.main import main
from rnnkit.export import ExportError

from helpers import onnxruntime_or_skip
from tests.recognize_fixtures import write_captchas
from tests.seq2seq_fixtures import write_names

BOS, EOS, OFFSET = 1, 2, 3


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny runs (two training steps) of the three kinds, each exported in both formats."""
    root = tmp_path_factory.mktemp("export-tasks")
    folder = write_captchas(root / "caps")
    common = ["--quiet", "--max-steps", "2", "--batch", "4", "--warmup-steps", "0"]
    split = ["--test-fraction", "0.25", "--val-fraction", "0.25"]
    assert main(["train", "recognize", "--data", str(folder), "--out", str(root / "recognize"),
                 "--height", "16", "--channels", "4", "--hidden", "6", "--layers", "1",
                 "--cell", "lstm", "--time-stride", "2", *split, *common]) == 0
    assert main(["train", "image-to-text", "--data", str(folder), "--out",
                 str(root / "image-to-text"), "--height", "16", "--conv-layers", "2",
                 "--channels", "4", "--vector", "8", "--hidden", "8", "--cell", "gru",
                 "--layers", "2", "--max-len", "6", *split, *common]) == 0
    assert main(["train", "cond", "--data", str(write_names(root, 4)), "--out",
                 str(root / "cond"), "--hidden", "8", "--embed", "4", "--cond-size", "4",
                 "--layers", "1", "--max-len", "8", *common]) == 0
    files = {}
    for kind in ("recognize", "image-to-text", "cond"):
        for fmt in ("onnx", "pt2"):
            out = root / f"{kind}.{fmt}"
            if fmt == "onnx" and importlib_missing():
                continue
            assert main(["export", str(root / kind), "--format", fmt, "--out", str(out)]) == 0
            files[kind, fmt] = out
    return root, files


def importlib_missing():
    import importlib.util
    return any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxscript", "onnxruntime"))


def _programs(files, kind):
    """{"onnx": (encoder, decoder) or program as callables on torch tensors, "pt2": ...}."""
    ort = onnxruntime_or_skip()
    out = {}
    for fmt in ("onnx", "pt2"):
        parts = []
        for name in (("-encoder", "-decoder") if kind != "recognize" else ("",)):
            path = files[kind, fmt].with_name(f"{kind}{name}.{fmt}")
            if fmt == "pt2":
                parts.append(torch.no_grad()(rnnkit.export.load(path).module()))
            else:
                parts.append(_onnx_callable(ort.InferenceSession(str(path))))
        out[fmt] = parts
    return out


def _onnx_callable(sess):
    """A session called like the pt2 module (positional torch tensors, tensors back); inputs
    the graph dropped (unread) are skipped by name."""
    names = [i.name for i in sess.get_inputs()]

    def call(*args):
        feed = dict(zip(call.inputs, args))
        got = sess.run(None, {n: feed[n].numpy() for n in names})
        return tuple(torch.from_numpy(g) for g in got)
    call.inputs = None
    return call


def _check(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.detach().numpy(), w.numpy(), rtol=1e-5, atol=1e-5)


def test_recognizer_onnx_and_pt2_equal_rnnkit_at_batch_1_and_3(runs):
    from rnnkit.decode.ctc import greedy_decode
    from rnnkit.tasks.recognize import Recognizer
    root, files = runs
    model = Recognizer.load(root / "recognize").model
    programs = _programs(files, "recognize")
    programs["onnx"][0].inputs = ["features", "lengths"]
    g = torch.Generator().manual_seed(0)
    for B, T in ((1, 5), (3, 21), (1, 30), (3, 8)):
        x = torch.randn(B, 16, T, generator=g)
        lengths = torch.randint(4, T + 1, (B,), generator=g)
        lengths[0] = T
        with torch.no_grad():
            want = model(x, lengths)
        for fmt in ("onnx", "pt2"):
            got = programs[fmt][0](x, lengths)
            _check(got, want)
            assert greedy_decode(got[0], got[1]) == greedy_decode(*want)


def _greedy(encoder, decoder, cond, max_len):
    """Token ids (B, n) chosen greedily by the exported encoder and decoder step (every row
    continues until all have given </s>, as rnnkit's sampling loop does)."""
    state = encoder(cond)
    B = len(cond)
    y, done, out = torch.full((B,), BOS), torch.zeros(B, dtype=torch.bool), []
    for _ in range(max_len):
        logits, *rnn = decoder(y, state[0], *state[1:])
        state = (state[0], *rnn)
        y = logits.argmax(-1)
        out.append(y)
        done |= y == EOS
        if done.all():
            break
    return torch.stack(out, 1)


def _labels(ids):
    """Token ids per row -> the labels before </s> (image-to-text's reading)."""
    rows = []
    for row in ids.tolist():
        row = row[:row.index(EOS)] if EOS in row else row
        rows.append([t - OFFSET + 1 for t in row if t >= OFFSET])
    return rows


def _generator_checks(programs, model, generator, cond, states):
    """The encoder's state and two decoder steps against rnnkit's condition and step."""
    names = ["y_prev", "z", *states]
    programs["onnx"][1].inputs = names
    with torch.no_grad():
        state = model.condition(cond)
        rnn = state["rnn"] if isinstance(state["rnn"], tuple) else (state["rnn"],)
        y = torch.arange(len(cond)) % 4 + OFFSET
        logits, nxt = model.step(y, state)
        logits2, nxt2 = model.step(logits.argmax(-1), nxt)
    for fmt in ("onnx", "pt2"):
        encoder, decoder = programs[fmt]
        start = encoder(cond)
        _check(start, (state["z"], *rnn))
        out = decoder(y, *start)
        _check(out, (logits, *(nxt["rnn"] if len(rnn) > 1 else (nxt["rnn"],))))
        out2 = decoder(logits.argmax(-1), start[0], *out[1:])
        _check(out2, (logits2, *(nxt2["rnn"] if len(rnn) > 1 else (nxt2["rnn"],))))


def test_image_to_text_encoder_and_step_equal_rnnkit_and_decode_greedily(runs):
    from rnnkit.tasks.image_to_text import ImageReader, greedy_read
    root, files = runs
    model = ImageReader.load(root / "image-to-text").model
    programs = _programs(files, "image-to-text")
    programs["onnx"][0].inputs = ["images"]
    c = model.config
    g = torch.Generator().manual_seed(1)
    for B in (1, 3):
        images = torch.randn(B, c.height, c.width, generator=g)
        _generator_checks(programs, model, model.generator, images, ["h"])
        want = [labels for labels, _ in greedy_read(model, images)]
        for fmt in ("onnx", "pt2"):
            assert _labels(_greedy(*programs[fmt], images, c.max_len)) == want


def test_cond_encoder_and_step_equal_rnnkit_and_decode_greedily(runs):
    from rnnkit.decode.sampling import sample
    from rnnkit.tasks.cond import load_cond
    root, files = runs
    model = load_cond(root / "cond")[0]
    programs = _programs(files, "cond")
    programs["onnx"][0].inputs = ["labels"]
    for labels in (torch.tensor([1]), torch.tensor([0, 1, 0])):
        _generator_checks(programs, model, model, labels, ["h", "c"])
        bos = torch.full((len(labels), 1), BOS)
        want = torch.stack(list(sample(model, bos, model.config.max_len, temperature=0,
                                       stop_id=EOS, state=model.condition(labels))), 1)
        for fmt in ("onnx", "pt2"):
            torch.testing.assert_close(_greedy(*programs[fmt], labels, model.config.max_len),
                                       want)


def test_onnx_refuses_a_generator_cell_it_has_no_operator_for(tmp_path):
    from rnnkit.export.tasks import generator_programs
    from rnnkit.export.writers import write_onnx
    from rnnkit.models.conditional import CondConfig, ConditionalGenerator
    onnxruntime_or_skip()
    model = ConditionalGenerator(CondConfig(vocab_size=6, n_classes=2, cell="indrnn", hidden=4,
                                            embed=3, cond_size=2)).eval()
    with pytest.raises(ExportError, match="rnn is a Recurrent with cell indrnn, which the onnx "
                                          "format cannot express; export it with --format pt2"):
        write_onnx(generator_programs(model, "cond")[1], tmp_path / "c.onnx")


# ----------------------------------------------------------------- bad input
def _one_error(capsys):
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_export_refuses_an_unknown_kind_a_damaged_file_and_a_missing_folder(runs, tmp_path,
                                                                            capsys):
    from rnnkit.train.checkpoint import save_checkpoint
    save_checkpoint(tmp_path / "c.pt", {"kind": "tokenize", "model": {}})
    assert main(["export", str(tmp_path / "c.pt"), "--format", "pt2", "--out",
                 str(tmp_path / "x.pt2")]) == 2
    assert "runs of kind 'tokenize' cannot be exported (lm, " in _one_error(capsys)
    (tmp_path / "bad.pt").write_bytes(b"\x80not a checkpoint")
    assert main(["export", str(tmp_path / "bad.pt"), "--format", "pt2", "--out",
                 str(tmp_path / "x.pt2")]) == 2
    assert "bad.pt: not a readable rnnkit checkpoint" in _one_error(capsys)
    root, _ = runs
    assert main(["export", str(root / "cond"), "--format", "pt2", "--out",
                 str(tmp_path / "no" / "c.pt2")]) == 2
    assert f"the folder {tmp_path / 'no'} does not exist" in _one_error(capsys)
    assert not (tmp_path / "x.pt2").exists()


@pytest.mark.parametrize("conditioning", ["init", "input"])
def test_feature_conditioned_generator_onnx_and_pt2(conditioning, tmp_path):
    """A generator conditioned on a feature vector, through its initial state only (the step
    does not read z: ONNX dropped that input, which the signature names) or through every step
    only (h_0 = 0)."""
    onnxruntime_or_skip()
    from rnnkit.export.writers import write_onnx, write_pt2
    from rnnkit.export.tasks import generator_programs
    from rnnkit.models.conditional import CondConfig, ConditionalGenerator
    torch.manual_seed(0)
    model = ConditionalGenerator(CondConfig(vocab_size=7, features=3, cell="gru", layers=2,
                                            hidden=5, embed=3, cond_size=4,
                                            conditioning=conditioning)).eval()
    programs = {"onnx": [], "pt2": []}
    for p in generator_programs(model, "cond"):
        write_onnx(p, tmp_path / f"{p.name}.onnx")
        write_pt2(p, tmp_path / f"{p.name}.pt2")
        programs["pt2"].append(torch.no_grad()(rnnkit.export.load(tmp_path / f"{p.name}.pt2")
                                               .module()))
        session = onnxruntime_or_skip().InferenceSession(str(tmp_path / f"{p.name}.onnx"))
        assert [i.name for i in session.get_inputs()] == list(p.inputs)
        call = _onnx_callable(session)
        call.inputs = p.inputs
        programs["onnx"].append(call)
    for B in (1, 3):
        features = torch.randn(B, 3)
        _generator_checks(programs, model, model, features, ["h"])
        want = torch.stack(list(_sample_greedy(model, features)), 1)
        for fmt in ("onnx", "pt2"):
            torch.testing.assert_close(_greedy(*programs[fmt], features, 8), want)


def _sample_greedy(model, cond, n=8):
    from rnnkit.decode.sampling import sample
    bos = torch.full((len(cond), 1), BOS)
    return sample(model, bos, n, temperature=0, stop_id=EOS, state=model.condition(cond))


def test_an_export_cut_short_leaves_the_earlier_files_whole(runs, tmp_path, monkeypatch):
    """Programs are written beside their place and moved there once all are written: an export
    that fails (or is interrupted) after its encoder leaves the earlier pair as it was."""
    from rnnkit.export import writers
    root, _ = runs
    out = tmp_path / "gen.pt2"
    assert main(["export", str(root / "image-to-text"), "--format", "pt2", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == ["gen-decoder.pt2", "gen-encoder.pt2"]
    calls = []
    real = writers.write_pt2

    def interrupted(program, file, where="model"):
        calls.append(file)
        if len(calls) == 2:                     # the decoder, half written
            Path(file).write_bytes(b"PK half a program")
            raise KeyboardInterrupt
        real(program, file, where)
    monkeypatch.setattr(writers, "write_pt2", interrupted)
    with pytest.raises(KeyboardInterrupt):
        writers.export_run(root / "image-to-text", "pt2", out)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before   # no temporaries
