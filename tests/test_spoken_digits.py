"""Spoken-digit utterances (tiny stand-in voices of tones, written by the tests): resampling,
trimming, seeded utterances, the held-out voice, the cached feature sets, and the task with its
second test part of the training voices."""
import numpy as np
import pytest
import torch

from rnnkit.cli.main import main
from rnnkit.config import ConfigError
from rnnkit.data import spoken_digits as sd
from rnnkit.models.recognizer import RecognizerConfig
from rnnkit.tasks.common import train
from rnnkit.tasks.recognize import build_recognize_task
from rnnkit.tasks.recognize_data import RecognizeData
from rnnkit.train import TrainConfig

from recognize_fixtures import TINY_MODEL, tone_digits

QUIET = lambda *a: None


def stand_in_voices(names):
    """Ten 0.15 s tones per voice, each voice its own noise."""
    return {v: [torch.from_numpy(tone_digits(d, seed=i)[:1200]).float() for d in sd.DIGITS]
            for i, v in enumerate(names)}


def test_resample_keeps_a_tone_band_limited():
    t = torch.arange(2205) / 22050.0
    x = torch.sin(2 * torch.pi * 440 * t)                   # 0.1 s at 22,050 Hz
    y = sd.resample(x, 22050 / 8000)                        # to 8 kHz
    assert len(y) == 800
    peak = int(torch.fft.rfft(y).abs().argmax()) * 8000 / 800
    assert peak == pytest.approx(440, abs=10)
    assert float(y.abs().max()) == pytest.approx(1.0, abs=0.05)


def test_utterances_are_seeded_and_trimmed_clips_concatenated():
    clips = {v: [sd.trim(torch.cat([torch.zeros(800), torch.from_numpy(
        tone_digits(d, seed=i)).float(), torch.zeros(800)])) for d in sd.DIGITS]
        for i, v in enumerate(["a", "b"])}
    assert all(len(c) < 0.25 * 8000 for c in clips["a"])    # the 0.1 s silences trimmed
    x1, d1, v1 = sd.make(clips, ["a", "b"], 7, 3)
    x2, d2, v2 = sd.make(clips, ["a", "b"], 7, 3)
    assert d1 == d2 and v1 == v2 and torch.equal(x1, x2) and 3 <= len(d1) <= 8
    assert float(x1.abs().max()) <= 1.0
    x3, d3, _ = sd.make(clips, ["a", "b"], 7, 4)            # the next utterance differs
    assert not (d3 == d1 and torch.equal(x3, x1))


def test_voice_split_holds_the_test_voice_out():
    voices = {"allison": 0, "captcha": 0, "espeak-a": 0, "espeak-b": 0}
    assert sd.split_voices(voices, "captcha") == (["allison", "espeak-a"], ["espeak-b"],
                                                  "captcha")
    assert sd.split_voices({"allison": 0, "captcha": 0}, "allison") == (["captcha"], ["captcha"],
                                                                        "allison")


# ----------------------------------------------------------------- cached feature sets
def test_utterance_set_is_built_once_then_read_from_the_cache(tmp_path, monkeypatch):
    voices = stand_in_voices(["a", "b"])
    built = sd.utterance_set(voices, ["a", "b"], 7, 6, 16, tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1 and not list(tmp_path.glob("*.tmp"))
    for i, (x, digits, voice) in enumerate(built):          # utterance i of the stream, as made
        samples, want_digits, want_voice = sd.make(voices, ["a", "b"], 7, i)
        assert (digits, voice) == (want_digits, want_voice)
        assert x.dtype == torch.float16 and x.shape[0] == 16
        assert x.shape[1] == 1 + len(samples) // 80     # one frame every 10 ms

    def no_building(*args):
        raise AssertionError("built again")
    monkeypatch.setattr(sd, "make", no_building)
    again = sd.utterance_set(voices, ["a", "b"], 7, 6, 16, tmp_path)
    assert [(d, v) for _, d, v in again] == [(d, v) for _, d, v in built]
    assert all(torch.equal(x, y) for (x, _, _), (y, _, _) in zip(again, built))


@pytest.mark.parametrize("change", ["seed", "n", "n_mels", "voices", "clips"])
def test_utterance_set_cache_key_covers_what_makes_the_set(tmp_path, change):
    voices = stand_in_voices(["a", "b"])
    args = {"all_voices": voices, "names": ["a", "b"], "seed": 7, "n": 3, "n_mels": 16}
    sd.utterance_set(**args, cache=tmp_path)
    other = dict(args)
    if change == "seed":
        other["seed"] = 8
    elif change in ("n", "n_mels"):
        other[change] += 1
    elif change == "voices":
        other["names"] = ["a"]
    else:                                                   # the same names, other samples
        other["all_voices"] = {**voices, "a": [c * 0.5 for c in voices["a"]]}
    sd.utterance_set(**other, cache=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_a_damaged_cache_file_is_built_again(tmp_path):
    voices = stand_in_voices(["a"])
    built = sd.utterance_set(voices, ["a"], 7, 4, 16, tmp_path)
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(path.read_bytes()[:100])               # a cut-off file
    again = sd.utterance_set(voices, ["a"], 7, 4, 16, tmp_path)
    assert all(torch.equal(x, y) for (x, _, _), (y, _, _) in zip(again, built))
    with np.load(path) as z:                                # and written whole again
        assert len(z["widths"]) == 4


# ----------------------------------------------------------------- the task
def test_spoken_digits_task_on_stand_in_voices(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "cache"))
    fake = stand_in_voices(["allison", "captcha", "espeak-a", "espeak-b"])
    monkeypatch.setattr(sd, "voices", lambda log=print: fake)
    data = RecognizeData(data="spoken-digits", train_size=40, val_size=4, test_size=6, batch=4,
                         n_mels=16)
    task = build_recognize_task(data, RecognizerConfig(**TINY_MODEL), log=QUIET)
    parts = task.parts
    assert task.alphabet == "0123456789" and parts.words == "char"
    voice = lambda where: where.rsplit("(", 1)[1].rstrip(")")
    assert {voice(w) for _, _, w in parts.train} == {"allison", "espeak-a"}   # never captcha
    assert {voice(w) for _, _, w in parts.val} == {"espeak-b"}
    assert {voice(w) for _, _, w in parts.test} == {"captcha"}
    assert {voice(w) for _, _, w in parts.extra["seen_voices"]} <= {"allison", "espeak-a"}
    assert list((tmp_path / "cache" / "spoken-digits" / "features").glob("*.npz"))
    metrics = train(task, TrainConfig(max_steps=2, eval_every=2, warmup_steps=0),
                    tmp_path / "run", quiet=True, log=QUIET)
    assert metrics["test_size"] == 6 and metrics["test_wer"] == metrics["test_cer"]
    assert metrics["seen_voices_size"] == 6 and 0 <= metrics["seen_voices_wer"] <= 10
    with pytest.raises(ConfigError, match="8000 Hz"):
        RecognizeData(data="spoken-digits", sample_rate=16000)


@pytest.mark.parametrize("flags, expected", [
    (["--val-data", "."], "spoken-digits makes its own parts"),
    (["--tempo", "0.5"], "tempo must be in [1, 4], got 0.5 (--tempo)"),
    (["--freq-mask", "-1"], "freq_mask must be in [0, 256], got -1 (--freq-mask)"),
])
def test_spoken_digits_bad_flags_are_one_line(tmp_path, capsys, flags, expected):
    assert main(["train", "recognize", "--data", "spoken-digits", *flags,
                 "--out", str(tmp_path / "run"), "--quiet", "--max-steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err


# ----------------------------------------------------------------- augmentation
def test_augment_tempo_and_masks():
    from rnnkit.tasks.recognize_data import augment
    x = torch.randn(16, 200).half()
    d = RecognizeData(tempo=1.5, freq_mask=4, time_mask=10)
    lengths = set()
    for seed in range(20):
        y = augment(x, [1, 2, 3], d, 4, torch.Generator().manual_seed(seed))
        assert y.dtype == torch.float32 and y.shape[0] == 16
        assert 200 / 1.5 - 1 <= y.shape[1] <= 200 * 1.5 + 1
        lengths.add(y.shape[1])
        assert int((y == 0).all(1).sum()) <= 8 and int((y == 0).all(0).sum()) <= 20
        again = augment(x, [1, 2, 3], d, 4, torch.Generator().manual_seed(seed))
        assert torch.equal(y, again)                          # the same for the same seed
    assert len(lengths) > 10                                  # the tempo varies
    off = augment(x, [1], RecognizeData(), 4, torch.Generator().manual_seed(0))
    assert torch.equal(off, x.float())


def test_augment_keeps_an_example_ctc_can_still_read():
    from rnnkit.tasks.recognize_data import augment
    x = torch.randn(8, 12)
    d = RecognizeData(tempo=4.0)
    for seed in range(20):         # 1 1 needs 3 frames at stride 4: 12 columns and no fewer
        y = augment(x, [1, 1], d, 4, torch.Generator().manual_seed(seed))
        assert y.shape[1] >= 12


def test_train_batches_are_augmented_the_same_on_a_resume(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "cache"))
    fake = stand_in_voices(["allison", "captcha"])
    monkeypatch.setattr(sd, "voices", lambda log=print: fake)
    make = lambda **flags: build_recognize_task(RecognizeData(
        data="spoken-digits", train_size=16, val_size=2, test_size=2, batch=4, n_mels=16,
        **flags), RecognizerConfig(**TINY_MODEL), log=QUIET)
    plain, augmented = make(), make(tempo=1.5, time_mask=5)
    a, b = augmented.train_batch(3), make(tempo=1.5, time_mask=5).train_batch(3)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], plain.train_batch(3)[0])
    assert not torch.equal(augmented.train_batch(4)[0], a[0])
