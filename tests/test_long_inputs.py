"""A long file given to ``predict`` or ``tag`` is printed a chunk at a time as it is done (its
lines came at its end, every text encoded in memory at once), and an empty text is said before
any line is printed, at its line of the file."""

from rnnkit.cli import predict as predict_cli
from rnnkit.cli import tag as tag_cli
from rnnkit.cli.main import main
from rnnkit.tasks.common import train
from rnnkit.train import TrainConfig

from test_classify_tokens import zh_task


def spy(monkeypatch, capsys, cls, method):
    """The (size, lines printed before it) of each call of cls.method."""
    calls, printed, real = [], [], getattr(cls, method)

    def called(self, items, *a, **k):
        printed.append(capsys.readouterr().out)
        calls.append((len(items), "".join(printed).count("\n")))
        return real(self, items, *a, **k)
    monkeypatch.setattr(cls, method, called)
    return calls, printed


def test_predict_prints_a_long_file_a_chunk_at_a_time(tmp_path, monkeypatch, capsys):
    task = zh_task(tmp_path)
    out = tmp_path / "run"
    train(task, TrainConfig(max_steps=2, eval_every=2), out, quiet=True, log=lambda *a: None)
    lines = tmp_path / "lines.txt"
    lines.write_text("好书\n\n差\n好\n书\n差书\n", encoding="utf-8")
    monkeypatch.setattr(predict_cli, "CHUNK", 2, raising=False)
    calls, printed = spy(monkeypatch, capsys, predict_cli.Classifier, "predict")
    capsys.readouterr()
    assert main(["predict", str(out), "--file", str(lines)]) == 0
    assert calls == [(2, 0), (2, 2), (1, 4)]
    shown = ("".join(printed) + capsys.readouterr().out).splitlines()
    assert [s.split("\t")[-1] for s in shown] == ["好书", "差", "好", "书", "差书"]
    assert main(["predict", str(out), "好书", "\u2060"]) == 2   # no token: said before any line
    said = capsys.readouterr()
    assert said.out == "" and "argument:2: empty text" in said.err


def test_tag_prints_a_long_file_a_chunk_at_a_time(tmp_path, monkeypatch, capsys):
    data = tmp_path / "t.txt"
    data.write_text("the/D dog/N ran/V\na/D cat/N sat/V\n" * 8)
    out = tmp_path / "run"
    assert main(["train", "tag", "--data", str(data), "--out", str(out), "--max-steps", "2",
                 "--eval-every", "2", "--min-count", "1", "--quiet"]) == 0
    lines = tmp_path / "lines.txt"
    lines.write_text("the dog\n\na cat\nthe cat\ndog ran\n")
    monkeypatch.setattr(tag_cli, "CHUNK", 2, raising=False)
    calls, printed = spy(monkeypatch, capsys, tag_cli.Tagger, "tag")
    capsys.readouterr()
    assert main(["tag", str(out), "--file", str(lines)]) == 0
    assert calls == [(2, 0), (2, 3)]                          # (the blank line printed too)
    shown = ("".join(printed) + capsys.readouterr().out).splitlines()
    assert [" ".join(w.split("/")[0] for w in s.split()) for s in shown] == \
        ["the dog", "", "a cat", "the cat", "dog ran"]
