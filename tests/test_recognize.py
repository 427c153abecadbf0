"""The CTC recogniser: model shapes and padding, features, seeded captchas, the task on tiny
folders, TSVs and WAV files, the command line, and every bad input as one line naming its file."""
import json
import re
import secrets

import numpy as np
import pytest
import torch
from PIL import Image

from rnnkit.cli.main import main
from rnnkit.config import ConfigError
from rnnkit.data import DataError
from rnnkit.data.media import log_mel, mel_filterbank, read_listing, read_wav
from rnnkit.models.recognizer import RecognizerConfig, SequenceRecognizer
from rnnkit.tasks.common import train
from rnnkit.tasks.recognize import Recognizer, build_recognize_task, error_rates
from rnnkit.tasks.recognize_data import RecognizeData
from rnnkit.train import TrainConfig

from recognize_fixtures import (TEXTS, TINY_MODEL, recognize_task, tone_digits, write_captchas,
                                write_tsv, write_wav)

pytest.importorskip("captcha")
QUIET = lambda *a: None


# ----------------------------------------------------------------- model
def test_model_shapes_and_padding_never_leak():
    model = SequenceRecognizer(RecognizerConfig(num_classes=5, features=16, **TINY_MODEL)).eval()
    x = torch.randn(3, 16, 40)
    lengths = torch.tensor([40, 25, 9])
    log_probs, frames = model(x, lengths)
    assert log_probs.shape == (3, 20, 5) and frames.tolist() == [20, 12, 4]
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(3, 20), atol=1e-5)
    alone, _ = model(x[1:2, :, :25], lengths[1:2])       # the same sequence without padding
    assert torch.allclose(alone[0], log_probs[1, :12], atol=1e-5)


def test_config_ranges():
    with pytest.raises(ConfigError, match="time_stride must be at most 2\\^conv_layers = 2"):
        RecognizerConfig(conv_layers=1, time_stride=4)
    with pytest.raises(ConfigError, match="time_stride must be one of"):
        RecognizerConfig(time_stride=3)
    with pytest.raises(ConfigError, match="at least 4"):
        RecognizerConfig(conv_layers=2, features=3)
    with pytest.raises(ConfigError, match="min_chars must be at most max_chars"):
        RecognizeData(min_chars=7, max_chars=6)
    with pytest.raises(ConfigError, match="repeat"):
        RecognizeData(alphabet="ABA")


# ----------------------------------------------------------------- features and data
def test_mel_filterbank_and_log_mel():
    fb = mel_filterbank(20, 256, 8000)
    assert fb.shape == (20, 129) and float(fb.max()) <= 1.0 + 1e-6
    assert (fb.sum(1) > 0).all()                       # no empty filter
    feats = log_mel(torch.from_numpy(tone_digits("12", seed=1)).float(), 8000, 20)
    assert feats.shape[0] == 20 and feats.shape[1] == 1 + 0.4 * 8000 // 80
    assert torch.allclose(feats.mean(1), torch.zeros(20), atol=1e-4)


def test_captcha_rendering_is_seeded_and_restores_secrets(tmp_path):
    from rnnkit.data.captchas import ALPHABET, captcha_set
    import captcha.image
    a = captcha_set(3, ALPHABET, 4, 6, 20, seed=5, cache=tmp_path)
    b = captcha_set(3, ALPHABET, 4, 6, 20, seed=5)     # rendered again, not read from the cache
    assert a[0] == b[0] and all((x == y).all() for x, y in zip(a[1], b[1]))
    assert all(4 <= len(t) <= 6 and set(t) <= set(ALPHABET) for t in a[0])
    assert captcha.image.secrets is secrets
    cached, = tmp_path.glob("*.npz")
    cached.write_bytes(cached.read_bytes()[:40])        # a cut-off cache file is rendered again
    c = captcha_set(3, ALPHABET, 4, 6, 20, seed=5, cache=tmp_path)
    assert c[0] == a[0] and all((x == y).all() for x, y in zip(a[1], c[1]))
    import numpy as np                                  # one that loads, of the wrong rows or
    for pixels, widths in ((np.zeros((3, 30), np.uint8), [10, 10, 10]),       # widths: too
                           (np.zeros((20, 30), np.uint8), [10, 10, 5])):     # (an internal
        np.savez(cached, pixels=pixels, widths=np.array(widths))             # error later)
        d = captcha_set(3, ALPHABET, 4, 6, 20, seed=5, cache=tmp_path)
        assert all((x == y).all() for x, y in zip(a[1], d[1]))


def test_error_rates():
    m = error_rates(["AB", "CD", ""], ["AB", "CE", "F"], "x")
    assert m["x_sequence_accuracy"] == pytest.approx(1 / 3)
    assert m["x_cer"] == pytest.approx(2 / 5) and m["x_wer"] == pytest.approx(2 / 3)


# ----------------------------------------------------------------- training and prediction
def test_task_trains_saves_and_reloads(tmp_path):
    task = recognize_task(tmp_path)
    config = TrainConfig(max_steps=3, eval_every=3, warmup_steps=0)
    metrics = train(task, config, tmp_path / "run", quiet=True, log=QUIET)
    for key in ("test_sequence_accuracy", "test_cer", "test_wer", "test_beam8_cer"):
        assert 0 <= metrics[key] <= 10
    files = sorted((tmp_path / "captchas").glob("*.png"))[:2]
    loaded = Recognizer.load(tmp_path / "run")
    assert loaded.recognize(files) == Recognizer.from_task(task).recognize(files)


def test_wav_listing_trains(tmp_path):
    rows = []
    for i, digits in enumerate(["12", "21", "1", "2", "112", "221", "12", "2"]):
        write_wav(tmp_path / f"u{i}.wav", tone_digits(digits, seed=i))
        rows.append((f"u{i}.wav", digits))
    data = RecognizeData(data=str(write_tsv(tmp_path / "list.tsv", rows)), batch=2, n_mels=16,
                         test_fraction=0.25, val_fraction=0.25)
    task = build_recognize_task(data, RecognizerConfig(**TINY_MODEL), log=QUIET)
    assert task.parts.kind == "audio" and task.alphabet == "12"
    assert task.model.config.features == 16
    train(task, TrainConfig(max_steps=2, eval_every=2, warmup_steps=0), tmp_path / "run",
          quiet=True, log=QUIET)
    reader = Recognizer.load(tmp_path / "run")
    text, score = reader.recognize([tmp_path / "u0.wav"])[0]
    assert set(text) <= {"1", "2"} and score <= 0
    # the score is the text's log-probability over all its alignments, greedy or beam (the beam
    # gave the sum over the alignments it kept, the greedy path its own probability)
    from rnnkit.decode.ctc import label_logprob
    lp, _ = reader.log_probs(tmp_path / "u0.wav")
    for beam in (0, 3):
        text, score = reader.recognize([tmp_path / "u0.wav"], beam)[0]
        assert score == label_logprob(lp, [task.alphabet.index(c) + 1 for c in text])


def test_cli_train_and_recognize(tmp_path, capsys):
    folder = write_captchas(tmp_path / "caps")
    run = tmp_path / "run"
    assert main(["train", "recognize", "--data", str(folder), "--out", str(run), "--quiet",
                 "--max-steps", "3", "--height", "16", "--channels", "4", "--hidden", "8",
                 "--layers", "1", "--time-stride", "2", "--batch", "4",
                 "--test-fraction", "0.25", "--val-fraction", "0.25"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 3 and "test_sequence_accuracy" in metrics
    image = sorted(folder.glob("*.png"))[0]
    capsys.readouterr()
    assert main(["recognize", str(run), str(image), "--beam", "3",
                 "--plot", str(tmp_path / "a.png")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{image}\t") and (tmp_path / "a.png").is_file()
    assert all("\t" in line for line in out.splitlines())   # "plot: ..." goes to stderr


# ----------------------------------------------------------------- bad input
def train_on(data, tmp_path, **flags):
    return main(["train", "recognize", "--data", str(data), "--out", str(tmp_path / "run"),
                 "--quiet", "--max-steps", "1", "--height", "16", "--channels", "4",
                 "--hidden", "8", "--layers", "1", "--time-stride", "2", "--batch", "2",
                 *[str(a) for kv in flags.items() for a in kv]])


def one_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rnnkit: error: "), err
    return err[0]


@pytest.mark.parametrize("content, expected", [
    ("{img}\tAB\nmissing.png\tAB\n", r"list.tsv:2: no such file 'missing.png'"),
    ("{img}\tAB\n{img}\t  \n", r"list.tsv:2: an empty transcript"),
    ("{img}\tAB\nnotes.txt\tAB\n", r"list.tsv:2: 'notes.txt' is neither an image"),
    ("{img}\tAB\n{img} AB\n", r"list.tsv:2: expected path<TAB>transcript"),
    ("{img}\tAB\nbroken.png\tAB\n", r"list.tsv:2: .*broken.png: not a readable image"),
    ("{img}\tAB\nempty.png\tAB\n", r"list.tsv:2: .*empty.png: not a readable image"),
    ("{img}\tAB\nclip.wav\t12\n", r"list.tsv: mixes images and sounds"),
])
def test_bad_listing_lines_are_named(tmp_path, capsys, content, expected):
    img = sorted(write_captchas(tmp_path, TEXTS[:2]).glob("*.png"))[0].name
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    write_wav(tmp_path / "clip.wav", tone_digits("1"))
    listing = tmp_path / "list.tsv"
    listing.write_text(content.format(img=img))
    assert train_on(listing, tmp_path) == 2
    line = one_error(capsys)
    assert re.search(expected, line), line


def test_bad_wav_files(tmp_path):
    write_wav(tmp_path / "fast.wav", tone_digits("1"), rate=16000)
    with pytest.raises(DataError, match="sample rate 16000 Hz, expected 8000 Hz"):
        read_wav(tmp_path / "fast.wav", 8000, "list.tsv:3")
    write_wav(tmp_path / "silent.wav", [])
    with pytest.raises(DataError, match="list.tsv:4: .*silent.wav: no samples"):
        read_wav(tmp_path / "silent.wav", 8000, "list.tsv:4")
    (tmp_path / "junk.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(DataError, match="not a readable WAV file"):
        read_wav(tmp_path / "junk.wav", 8000)
    samples = read_wav(write_wav(tmp_path / "ok.wav", [0.5, -0.5], width=4), 8000)
    assert samples.tolist() == pytest.approx([0.5, -0.5], abs=1e-6)
    whole = write_wav(tmp_path / "cut.wav", tone_digits("12")).read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[:44 + (len(whole) - 44) // 4])   # read silently
    with pytest.raises(DataError, match=r"cut.wav: truncated: its header says [\d,]+ frames, "
                                        r"the file holds [\d,]+"):
        read_wav(tmp_path / "cut.wav", 8000)
    streamed = bytearray(whole)             # a streaming writer's unknown size: read as it is
    streamed[40:44] = (0xFFFFFFFF).to_bytes(4, "little")
    (tmp_path / "streamed.wav").write_bytes(bytes(streamed))
    assert len(read_wav(tmp_path / "streamed.wav", 8000)) == (len(whole) - 44) // 2
    streamed[40:44] = (0x7FFFF000).to_bytes(4, "little")   # SoX's, writing to a pipe
    (tmp_path / "sox.wav").write_bytes(bytes(streamed))
    assert len(read_wav(tmp_path / "sox.wav", 8000)) == (len(whole) - 44) // 2


def test_extensible_pcm_wav_reads_as_plain_pcm(tmp_path):
    """WAVE_FORMAT_EXTENSIBLE with PCM samples (ffmpeg's and sox's 24/32-bit or multichannel
    header), which Python's wave module reads only from 3.12."""
    import struct
    x = (np.asarray(tone_digits("12")) * (2 ** 31 - 1)).astype("<i4")
    data = np.repeat(x, 3).tobytes()                                   # 3 channels
    guid = struct.pack("<IHH", 1, 0, 0x10) + bytes([0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71])
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 3, 8000, 8000 * 12, 12, 32, 22, 32, 7) + guid
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"LIST" + \
        struct.pack("<I", 3) + b"abc\0" + b"data" + struct.pack("<I", len(data)) + data
    (tmp_path / "ext.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    got = read_wav(tmp_path / "ext.wav", 8000)
    want = read_wav(write_wav(tmp_path / "plain.wav", tone_digits("12"), width=4), 8000)
    torch.testing.assert_close(got, want)
    float_fmt = fmt[:24] + struct.pack("<I", 3) + fmt[28:]            # sub-format: IEEE float
    (tmp_path / "float.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + b"WAVE" +
                                         b"fmt " + struct.pack("<I", len(fmt)) + float_fmt)
    with pytest.raises(DataError, match="not a readable WAV file"):   # (no data chunk)
        read_wav(tmp_path / "float.wav", 8000)


def test_folder_names_read_in_one_unicode_form_and_an_empty_name_is_refused(tmp_path):
    import unicodedata
    folder = tmp_path / "names"
    folder.mkdir()
    decomposed = unicodedata.normalize("NFD", "café")
    for name in (f"{decomposed}.png", "abc_1.png"):
        (folder / name).write_bytes(b"")
    assert sorted(t for _, t, _ in read_listing(folder)) == ["abc", "café"]
    (folder / "_scan1.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"_scan1.png: its name gives an empty transcript"):
        read_listing(folder)
    listing = write_tsv(tmp_path / "l.tsv", [("names/abc_1.png", decomposed)])
    assert read_listing(listing)[0][1] == "café" and len("café") == 4
    (folder / "_scan1.png").unlink()
    (folder / "abc (1) (2).png").write_bytes(b"")         # a copy of a copy: was "abc (1)"
    assert sorted(t for _, t, _ in read_listing(folder)) == ["abc", "abc", "café"]
    (folder / "  .png").write_bytes(b"")                 # blanks: refused, as in a TSV
    with pytest.raises(DataError, match=r"  .png: its name gives an empty transcript"):
        read_listing(folder)
    (folder / "  .png").unlink()
    import os
    (folder / os.fsdecode(b"\xffB_1.png")).write_bytes(b"")   # Latin-1 bytes, not UTF-8
    with pytest.raises(DataError, match=r"the file name b'\\xffB_1.png' is not UTF-8"):
        read_listing(folder)


def test_an_image_past_pillows_size_limit_is_a_data_error(tmp_path):
    import struct
    import zlib
    from rnnkit.data.media import read_image

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    (tmp_path / "AB.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 10000, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    with pytest.raises(DataError, match=r"AB.png: not a readable image \(DecompressionBombError"):
        read_image(tmp_path / "AB.png", 16)


def test_test_transcript_outside_the_alphabet(tmp_path, capsys):
    folder = write_captchas(tmp_path / "train")
    other = write_captchas(tmp_path / "test", ["AB", "AZ"])
    listing = write_tsv(tmp_path / "test.tsv", [(f"test/{p.name}", p.stem.split("_")[0])
                                                for p in sorted(other.glob("*.png"))])
    assert train_on(folder, tmp_path, **{"--test-data": listing}) == 2
    assert "test.tsv:2: transcript 'AZ' has 'Z', which is not in the alphabet '12AB'" in \
        one_error(capsys)


def test_too_short_utterances_are_skipped_with_a_warning(tmp_path, capsys):
    folder = write_captchas(tmp_path / "caps", TEXTS + ["ABABABABABABABABABABAB"])
    data = RecognizeData(data=str(folder), height=16, batch=4, split_seed=1)
    task = build_recognize_task(data, RecognizerConfig(**{**TINY_MODEL, "conv_layers": 3,
                                                          "time_stride": 8}), log=QUIET)
    err = capsys.readouterr().err
    assert "left out: too short for their transcripts under CTC at time stride 8" in err
    assert "ABABABABABABABABABABAB_12.png" in err
    kept = task.parts.train + task.parts.val + task.parts.test
    assert len(kept) == len(TEXTS)
    assert "a lower --time-stride keeps them" in err
    p = task.parts
    assert p.source.endswith(f"; kept (long enough under CTC): train {len(p.train)}, validation "
                             f"{len(p.val)} (the test part is scored whole)")


def test_recognize_refuses_the_other_kind_and_unreadable_files(tmp_path, capsys):
    task = recognize_task(tmp_path)
    train(task, TrainConfig(max_steps=1, eval_every=1, warmup_steps=0), tmp_path / "run",
          quiet=True, log=QUIET)
    write_wav(tmp_path / "x.wav", tone_digits("1"))
    assert main(["recognize", str(tmp_path / "run"), str(tmp_path / "x.wav")]) == 2
    assert "this model reads image files" in one_error(capsys)
    assert main(["recognize", str(tmp_path / "run"), str(tmp_path / "nothing.png")]) == 2
    assert one_error(capsys).endswith("nothing.png: no such file")
    # several files: each readable one is read, each bad one named, then the exit says so
    caps = sorted((tmp_path / "captchas").glob("*.png"))
    assert main(["recognize", str(tmp_path / "run"), str(caps[0]), str(tmp_path / "x.wav"),
                 str(caps[1])]) == 2
    out, err = capsys.readouterr()
    assert [line.split("\t")[0] for line in out.splitlines()] == [str(caps[0]), str(caps[1])]
    assert err.splitlines()[0].startswith("rnnkit: error: ") and "x.wav" in err.splitlines()[0]
    assert err.splitlines()[1] == "rnnkit: 1 of 3 inputs could not be read"
    # a folder: its files of the model's kind
    assert main(["recognize", str(tmp_path / "run"), str(tmp_path / "captchas")]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == \
        [str(p) for p in caps]
    import os
    import shutil
    latin = tmp_path / os.fsdecode(b"caf\xe9.png")            # a name whose bytes are not UTF-8:
    shutil.copy(caps[0], latin)                               # printed as a UTF-8 stream takes it
    assert main(["recognize", str(tmp_path / "run"), str(latin)]) == 0
    assert capsys.readouterr().out.split("\t")[0] == f"{tmp_path}/caf\\xe9.png"
    (tmp_path / "sounds").mkdir()
    assert main(["recognize", str(tmp_path / "run"), str(tmp_path / "sounds")]) == 2
    assert "sounds: a folder without a file this model reads" in one_error(capsys)


# ----------------------------------------------------------------- text from one image (1→N)
def test_image_to_text_cli_and_reader(tmp_path, capsys):
    folder = write_captchas(tmp_path / "caps")
    run = tmp_path / "run"
    assert main(["train", "image-to-text", "--data", str(folder), "--out", str(run), "--quiet",
                 "--max-steps", "2", "--height", "16", "--conv-layers", "2", "--channels", "4",
                 "--vector", "8", "--hidden", "8", "--batch", "4", "--max-len", "6",
                 "--test-fraction", "0.25", "--val-fraction", "0.25"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 2 and 0 <= metrics["test_sequence_accuracy"] <= 1
    image = sorted(folder.glob("*.png"))[0]
    capsys.readouterr()
    assert main(["recognize", str(run), str(image)]) == 0
    path, text, score = capsys.readouterr().out.rstrip("\n").split("\t")
    assert path == str(image) and len(text) <= 5 and set(text) <= set("12AB") and float(score) <= 0
    assert 0 <= metrics["test_beam8_sequence_accuracy"] <= 1
    assert main(["recognize", str(run), str(image), "--beam", "3"]) == 0
    path, beam_text, beam_score = capsys.readouterr().out.rstrip("\n").split("\t")
    assert set(beam_text) <= set("12AB") and float(beam_score) <= 0
    assert main(["recognize", str(run), str(image), "--plot", str(tmp_path / "a.png")]) == 2
    assert "--plot draws a CTC alignment" in one_error(capsys)


def test_image_to_text_warns_of_what_it_cannot_read_whole(tmp_path, capsys):
    from rnnkit.tasks.image_to_text import ImageReader
    folder = write_captchas(tmp_path / "caps")
    run = tmp_path / "run"
    assert main(["train", "image-to-text", "--data", str(folder), "--out", str(run), "--quiet",
                 "--max-steps", "1", "--height", "16", "--conv-layers", "2", "--channels", "4",
                 "--vector", "8", "--hidden", "8", "--batch", "4", "--max-len", "3",
                 "--test-fraction", "0.25", "--val-fraction", "0.25"]) == 0
    err = capsys.readouterr().err
    assert "transcript(s) longer than --max-len 3 (the longest 4)" in err
    reader = ImageReader.load(run)
    wide = tmp_path / "wide.png"
    image = Image.open(sorted(folder.glob("*.png"))[0])
    Image.fromarray(np.hstack([np.asarray(image.convert("L"))] * 3)).save(wide)
    reader.recognize([wide, wide])
    err = capsys.readouterr().err
    assert err.count("wider than the widest training image") == 1
    assert f"the model reads its first {reader.model.config.width} columns" in err
    # one very wide training image sizes the whole model (6000 columns: 70× the parameters)
    names = sorted(folder.glob("*.png"))
    Image.fromarray(np.hstack([np.asarray(Image.open(names[0]).convert("L"))] * 6)).save(
        names[0])
    assert main(["train", "image-to-text", "--data", str(folder), "--out", str(tmp_path / "r2"),
                 "--quiet", "--max-steps", "1", "--height", "16", "--conv-layers", "2",
                 "--channels", "4", "--vector", "8", "--hidden", "8", "--batch", "4"]) == 0
    assert f"{names[0].name}: an image " in capsys.readouterr().err


def test_image_to_text_refuses_sounds(tmp_path, capsys):
    for i in range(4):
        write_wav(tmp_path / f"12_{i}.wav", tone_digits("12", seed=i))
    assert main(["train", "image-to-text", "--data", str(tmp_path), "--out",
                 str(tmp_path / "run"), "--max-steps", "1", "--quiet", "--test-fraction", "0.3",
                 "--val-fraction", "0.3"]) == 2
    assert "image-to-text reads images, this data holds sounds" in one_error(capsys)


def test_copies_of_a_file_are_left_out_of_the_split(tmp_path, capsys):
    """A copy split into another part than its original would score the model on what it
    trained on: byte-identical inputs are kept once."""
    import shutil
    folder = write_captchas(tmp_path / "caps")
    first = sorted(folder.glob("*.png"))[0]
    for i in range(3):
        shutil.copy(first, folder / f"{first.stem.split('_')[0]} ({i + 1}).png")
    data = RecognizeData(data=str(folder), height=16, batch=4)
    task = build_recognize_task(data, RecognizerConfig(**TINY_MODEL), log=QUIET)
    err = capsys.readouterr().err
    assert "3 file(s) left out as copies of another (the same pixels; e.g." in err
    parts = task.parts.train + task.parts.val + task.parts.test
    assert len(parts) == len(TEXTS)

