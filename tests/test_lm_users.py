"""The language model on users' corpora and flags: a corpus without line breaks samples by
default, an unknown word is found on its own line, --max-vocab always gives <unk>, --last wants
a run folder, flags a given file makes unused and a data set name shadowing a file are said,
Windows-1252 text gets its own iconv, and the summary names the best step."""
import warnings

import pytest

from rnnkit.cli.main import main
from rnnkit.data import DataError, Vocab

TINY = ["--seq-len", "16", "--batch", "4", "--layers", "1", "--hidden", "16", "--embed", "8",
        "--eval-every", "5", "--warmup-steps", "0", "--lr", "0.01", "--quiet"]


def test_a_corpus_without_line_breaks_samples_with_the_default_prime(tmp_path, capsys):
    """The default prime is a newline: 'ab' * 3000 said --prime '\\n' is not in the vocabulary."""
    (tmp_path / "ab.txt").write_text("ab" * 3000)
    out = tmp_path / "run"
    assert main(["train", "lm", "--data", str(tmp_path / "ab.txt"), "--out", str(out),
                 "--max-steps", "5", *TINY[:-1]]) == 0
    said = capsys.readouterr()
    assert "best validation loss" in said.out + said.err
    assert "at step 5 of 5 steps" in said.out + said.err
    assert main(["sample", str(out), "--length", "20", "--seed", "1"]) == 0
    text = capsys.readouterr().out.removesuffix("\n")
    assert len(text) == 21 and set(text) <= {"a", "b"}   # the prime, a letter, and 20 more
    assert main(["sample", str(out / "best.pt"), "--last"]) == 2
    assert "--last takes last.pt from a run folder" in capsys.readouterr().err


def test_an_unknown_word_is_found_on_its_own_line(tmp_path):
    """'he' on line 3 was reported on line 1, inside 'the'."""
    from rnnkit.tasks.lm import encode_file
    vocab = Vocab.build("the cat sat .\nthe dog ate .\n", "ptb")
    with pytest.raises(DataError, match=r"^wl.txt:3: token 'he' is not in the model's vocabulary "
                                        r"of \d+ tokens \(--tokens word; it has no <unk>\)"):
        encode_file(vocab, "the cat sat .\nthe dog ate .\nhe sat .\n", "wl.txt")


def test_max_vocab_gives_unk_even_where_every_token_fits():
    """--max-vocab 1000 on 33 characters added no <unk>, and the message for an unseen
    character then said to train with --max-vocab."""
    vocab = Vocab.build("abcab", "char", max_size=1000)
    assert vocab.itos[0] == "<unk>" and len(vocab) == 4
    assert vocab.encode("abz") == [vocab.stoi["a"], vocab.stoi["b"], vocab.unk]
    assert Vocab.build("aaabbc", "char", max_size=3).itos == ["<unk>", "a", "b"]
    assert "<unk>" not in Vocab.build("abc", "char").itos


def test_unused_fractions_and_shadowed_files_are_said(tmp_path, capsys, monkeypatch):
    (tmp_path / "a.txt").write_text("the cat sat on the mat\n" * 80)
    (tmp_path / "v.txt").write_text("the cat sat\n" * 20)
    assert main(["train", "lm", "--data", str(tmp_path / "a.txt"), "--val-data",
                 str(tmp_path / "v.txt"), "--val-fraction", "0.3", "--out", str(tmp_path / "r"),
                 "--max-steps", "1", *TINY]) == 0
    err = capsys.readouterr().err
    assert err.count(f"--val-fraction 0.3 is not used: --val-data {tmp_path / 'v.txt'} is the "
                     f"validation part") == 1, err                 # it was said twice
    from rnnkit.cli import task_runs
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shakespeare").write_text("x")
    config = type("D", (), {"data": "shakespeare", "val_data": "", "test_data": ""})()
    monkeypatch.setattr(task_runs.dataclasses, "fields", lambda cfg: [])
    task_runs.warn_unread(config)
    assert "--data shakespeare reads the data set of that name, not the file " \
           "shakespeare here: give ./shakespeare to read it" in capsys.readouterr().err


def test_windows_1252_text_is_told_its_own_iconv(tmp_path):
    from rnnkit.data.text import read_text
    (tmp_path / "cp.txt").write_bytes("“quoted” – €\n".encode("cp1252"))
    (tmp_path / "l1.txt").write_bytes("café\n".encode("latin-1"))
    with pytest.raises(DataError, match="iconv -f CP1252 .* \\(if it is Windows-1252\\)"):
        read_text(tmp_path / "cp.txt")
    with pytest.raises(DataError, match="iconv -f LATIN1 .* \\(if it is Latin-1\\)"):
        read_text(tmp_path / "l1.txt")


def test_a_prime_the_vocabulary_lacks_is_said(tmp_path, capsys):
    """A model with <unk> took any prime without a word: 'Ελλ' became three <unk>; a prime of
    bytes that are not UTF-8 was echoed as they were, where predict and tag refuse them."""
    (tmp_path / "c.txt").write_text("the cat sat on the mat. " * 300)
    out = tmp_path / "run"
    assert main(["train", "lm", "--data", str(tmp_path / "c.txt"), "--out", str(out),
                 "--max-steps", "2", "--max-vocab", "8", *TINY]) == 0
    capsys.readouterr()
    with pytest.warns(UserWarning, match=r"--prime: 3 of its 3 tokens are not in the model's "
                                         r"vocabulary and are read as <unk>"):
        assert main(["sample", str(out), "--prime", "Ελλ", "--length", "3"]) == 0
    assert main(["sample", str(out), "--prime", "ab\udcff", "--length", "3"]) == 2
    assert "text that is not valid UTF-8" in capsys.readouterr().err


def test_a_prime_typing_unk_or_eos_is_read_and_shown_as_the_model_reads_it(tmp_path, capsys):
    """An <unk> typed in the prime of a capped word model was warned of as a word the model
    lacks; an <eos> typed in a PTB model's prime was printed as it was typed, the next word
    glued to it ("<eos>a")."""
    (tmp_path / "c.txt").write_text("the cat sat on the mat .\nthe dog ate a bone .\n" * 200)
    out = tmp_path / "run"
    assert main(["train", "lm", "--data", str(tmp_path / "c.txt"), "--out", str(out),
                 "--tokens", "word", "--max-steps", "2", "--max-vocab", "6", *TINY]) == 0
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["sample", str(out), "--prime", "the <unk> <eos>", "--length", "3"]) == 0
    assert capsys.readouterr().out.startswith("the <unk>\n")
    with pytest.warns(UserWarning, match=r"--prime: 1 of its 3 tokens are not in the model's"):
        assert main(["sample", str(out), "--prime", "the <unk> zebra", "--length", "3"]) == 0
