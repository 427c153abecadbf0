"""``rnnkit train classify | tag | forecast`` and ``predict``, ``tag``, ``forecast`` end to end;
and, for a classifier and a seq2seq model alike, a used run folder refused and a run resumed."""
import io
import json
import warnings

import pytest

from rnnkit.cli.main import main

from seq2seq_fixtures import write_pairs
from task_fixtures import write_labelled, write_series, write_tagged

FAST = ["--max-steps", "6", "--eval-every", "3", "--warmup-steps", "0", "--quiet"]


def test_classify_then_predict(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert main(["train", "classify", "--data", str(write_labelled(tmp_path)), "--out", str(out),
                 "--hidden", "8", "--embed", "8", "--batch", "8", *FAST]) == 0
    assert {"test_accuracy", "test_macro_f1"} <= set(json.loads((out / "metrics.json").read_text()))
    assert (out / "report.txt").read_text().startswith("label")
    capsys.readouterr()
    assert main(["predict", str(out), "a good film", "bad acting"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].split("\t")[0] in ("positive", "negative")
    assert "negative=" in lines[0] and lines[0].endswith("a good film")
    monkeypatch.setattr("sys.stdin", io.StringIO("warm story\n"))
    assert main(["predict", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "warm story"
    texts = tmp_path / "texts.txt"
    texts.write_text("fine\n\n", encoding="utf-8")          # a blank line is passed over
    assert main(["predict", str(out), "--file", str(texts)]) == 0
    assert capsys.readouterr().out.strip().endswith("\tfine")
    assert main(["predict", str(out), " "]) == 2
    assert "argument:1: empty text" in capsys.readouterr().err
    labelled = tmp_path / "eval.tsv"
    labelled.write_text("positive\tgood\nneutral\tok film\n", encoding="utf-8")
    assert main(["predict", str(out), "--eval", str(labelled)]) == 2
    assert f"{labelled}:2: unknown label 'neutral'" in capsys.readouterr().err


def test_tag_cli(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "tag", "--data", str(write_tagged(tmp_path)), "--out", str(out),
                 "--hidden", "8", "--embed", "8", "--char-embed", "4", "--char-hidden", "4",
                 "--min-count", "1", *FAST]) == 0
    capsys.readouterr()
    assert main(["tag", str(out), "the cat sat", "a zebra ran"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [len(l.split()) for l in lines] == [3, 3] and lines[0].startswith("the/")
    assert "warning" not in capsys.readouterr().err
    assert main(["tag", str(out), "QQQ zzz"]) == 0      # words it never read: tagged, and said
    assert "argument: the model's vocabulary holds 0% of the arguments' tokens" \
        in capsys.readouterr().err
    lines = tmp_path / "lines.txt"   # a line of a zero-width space: tagged as an empty
    lines.write_text("the cat\n\n\u200b\na zebra\n", encoding="utf-8")   # sentence, and
    assert main(["tag", str(out), "--file", str(lines)]) == 0            # the file refused at
    tagged = capsys.readouterr().out.split("\n")                           # "line 2"
    assert tagged[1:3] == ["", ""] and tagged[0].startswith("the/") and tagged[3].startswith("a/")
    assert main(["predict", str(out), "x"]) == 2      # a tagger is not a classifier
    assert "expected a 'classify' checkpoint, got kind 'tag'" in capsys.readouterr().err
    from rnnkit.train import CheckpointError, load_checkpoint
    with pytest.raises(CheckpointError, match="expected an 'image-to-text' checkpoint"):
        load_checkpoint(out / "best.pt", kind="image-to-text")     # (it said "a 'image...")


def test_forecast_cli_writes_plot(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "forecast", "--data", str(write_series(tmp_path)), "--out", str(out),
                 "--window", "24", "--horizon", "6", "--season", "12", "--layers", "1",
                 "--hidden", "8", *FAST]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert {"test_mase", "test_naive_mae", "test_seasonal_naive_rmse"} <= set(m)
    capsys.readouterr()
    assert main(["forecast", str(out), "--steps", "20"]) == 0
    printed = capsys.readouterr()
    text = printed.out
    assert text.startswith("step\tvalue_forecast\tvalue_lo80\tvalue_hi80\tvalue_lo95\t"
                           "value_hi95\tvalue_truth\n")
    assert len(text.splitlines()) == 21, text              # the header and 20 steps
    assert printed.err.startswith("plot: ")
    assert (out / "forecast.png").stat().st_size > 1000
    assert main(["forecast", str(out), "--steps", "3", "--from-end", "--png",
                 str(tmp_path / "f.png")]) == 0
    assert "\n162\t" in capsys.readouterr().out   # the step numbers 0-159 go on


# task -> (flags of a tiny fresh run on a fixture written to tmp_path, a key of its metrics.json)
RESUMABLE = {
    "classify": (lambda t: ["--data", str(write_labelled(t)), "--hidden", "8", "--embed", "8",
                            "--batch", "8"], "test_accuracy"),
    "seq2seq": (lambda t: ["--data", str(write_pairs(t, 120)), "--batch", "8", "--embed", "8",
                           "--enc-hidden", "8", "--hidden", "16", "--test-pairs", "4",
                           "--beam-size", "2"], "bleu_beam"),
}


@pytest.mark.parametrize("task", sorted(RESUMABLE))
def test_refuse_a_used_folder_resume_and_check_the_kind(task, tmp_path, capsys):
    data_flags, key = RESUMABLE[task]
    out = tmp_path / "run"
    fresh = ["train", task, *data_flags(tmp_path), "--out", str(out), "--max-steps", "3",
             "--eval-every", "3", "--quiet"]
    assert main(fresh) == 0
    capsys.readouterr()
    assert main(fresh) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    assert main(["train", task, "--out", str(out), "--resume", "--max-steps", "6", "--quiet"]) == 0
    assert f"resuming {out} at step 3" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 6 and key in metrics
    assert main(["train", "cond", "--out", str(out), "--resume", "--quiet"]) == 2
    assert f"expected a 'cond' checkpoint, got kind '{task}'" in capsys.readouterr().err


def test_input_lines_end_only_at_line_ends_and_stdin_drops_its_mark(tmp_path, monkeypatch):
    """predict/tag/translate gave an output line for each of str.splitlines' lines (form feed,
    U+2028, NEL too), so their output had more lines than their input; stdin kept its BOM."""
    from rnnkit.cli.options import input_lines
    text = "one\x0cstill one\u2028and\x85one\r\ntwo\rthree\n"
    f = tmp_path / "in.txt"
    f.write_text(text, encoding="utf-8", newline="")
    want = ["one\x0cstill one\u2028and\x85one", "two", "three"]
    assert input_lines([], f)[0] == want
    monkeypatch.setattr("sys.stdin", io.StringIO("\ufeff" + text))
    assert input_lines([], None) == (want, "<stdin>", False)


def test_predict_lists_numbered_labels_in_their_order():
    """Probabilities came in string order: class0 class1 class10 class100 class2 ..."""
    from rnnkit.cli.predict import natural
    labels = ["class10", "class2", "class1", "class100", "9", "10"]
    assert sorted(labels, key=natural) == ["9", "10", "class1", "class2", "class10", "class100"]


def test_a_forecast_running_away_past_the_horizon_is_noted():
    """A sine between 7 and 14 forecast 10,000 steps ahead reached 7.7e7, printed as figures
    like any other: the steps past the horizon read the model's own forecasts."""
    from types import SimpleNamespace

    import numpy as np

    from rnnkit.cli.forecast import runaway, runaway_note
    y = (10.5 + 3.5 * np.sin(np.arange(200) / 3)).astype(np.float32)[:, None]
    f = SimpleNamespace(y=y, names=["value"],
                        model=SimpleNamespace(config=SimpleNamespace(horizon=12)))
    calm = np.full((100, 1), 12.0)
    assert runaway(f, 200, calm, [0]) is None
    wild = calm.copy()
    wild[5] = 400.0                                  # within the horizon: not the feedback's
    wild[20:] = 40.0                                 # 4 ranges out: growth a history may show
    assert runaway(f, 200, wild, [0]) is None
    wild[30:] = 400.0
    far = runaway(f, 200, wild, [0])
    assert far[:2] == (30, 0) and runaway_note(f, wild, far, "2031-07").startswith(
        "note: at 2031-07 (forecast step 31) the forecast of value (400) lies more than 10 "
        "times the history's range")
    growth = (100 * 1.04 ** np.arange(120)).astype(np.float32)[:, None]   # 4% a step, and
    f.y = growth                                                       # 36 steps more of it
    assert runaway(f, 120, (100 * 1.04 ** np.arange(120, 156))[:, None], [0]) is None
    f.y = (3e38 + 1e37 * np.sin(np.arange(200))).astype(np.float32)[:, None]   # float32's
    with warnings.catch_warnings():   # largest: "overflow encountered in cast", and no note
        warnings.simplefilter("error")
        assert runaway(f, 200, f.y[:100], [0]) is None
        assert runaway(f, 200, -f.y[:100], [0])[:2] == (12, 0)
