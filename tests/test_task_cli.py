"""``rnnkit train classify | tag | forecast`` and ``predict``, ``tag``, ``forecast`` end to end."""
import io
import json

from rnnkit.cli.main import main

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
    texts.write_text("fine\n\n", encoding="utf-8")
    assert main(["predict", str(out), "--file", str(texts)]) == 2
    assert f"{texts}:2: empty text" in capsys.readouterr().err
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
    assert main(["predict", str(out), "x"]) == 2      # a tagger is not a classifier
    assert "expected a 'classify' checkpoint, got kind 'tag'" in capsys.readouterr().err


def test_forecast_cli_writes_plot(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "forecast", "--data", str(write_series(tmp_path)), "--out", str(out),
                 "--window", "24", "--horizon", "6", "--season", "12", "--layers", "1",
                 "--hidden", "8", *FAST]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert {"test_mase", "test_naive_mae", "test_seasonal_naive_rmse"} <= set(m)
    capsys.readouterr()
    assert main(["forecast", str(out), "--steps", "20"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("step\tvalue_forecast\tvalue_truth") and len(text.splitlines()) == 22
    assert (out / "forecast.png").stat().st_size > 1000
    assert main(["forecast", str(out), "--steps", "3", "--from-end", "--png",
                 str(tmp_path / "f.png")]) == 0
    assert "+3\t" in capsys.readouterr().out


def test_resume_a_task_run(tmp_path):
    out = tmp_path / "run"
    flags = ["--hidden", "8", "--embed", "8", "--batch", "8", "--eval-every", "3", "--quiet"]
    assert main(["train", "classify", "--data", str(write_labelled(tmp_path)), "--out", str(out),
                 "--max-steps", "3", *flags]) == 0
    assert main(["train", "classify", "--out", str(out), "--resume", "--max-steps", "6",
                 "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text())["steps"] == 6
