"""Word-exact tokens that keep their combining marks (vocabulary form 2): a seq2seq run made
when they split the marks off (form 1) resumes on its own vocabulary, and a vocabulary that the
data no longer gives is refused rather than trained under weights of other tokens."""
from collections import Counter

import pytest

from rnnkit.cli.main import main
from rnnkit.data.pairs import SPECIALS, build_vocab
from rnnkit.data.text import DataError
from rnnkit.data.vocab import Vocab, tokenize
from rnnkit.models.seq2seq import Seq2SeqConfig
from rnnkit.tasks.seq2seq import Seq2SeqData, build_seq2seq_task
from rnnkit.train.checkpoint import load_checkpoint, save_checkpoint

HINDI = ["फिल्म अच्छी थी", "किताब बुरी थी", "फिल्म बुरी थी", "किताब अच्छी थी"]


def form1_vocab(texts, max_size):
    """The vocabulary an rnnkit of form 1 built: the vowel signs split off the words."""
    counts = Counter(t for s in texts for t in tokenize(s, "word", 1))
    return Vocab(SPECIALS + [t for t, _ in counts.most_common()][:max_size - len(SPECIALS)],
                 "word", form=1)


def test_build_vocab_splits_as_the_stored_vocabulary_did():
    old = form1_vocab(HINDI, 100).to_dict()
    del old["form"]                                            # stored before forms were
    again = build_vocab(HINDI, "word", stored=old)
    assert again.form == 1 and "ि" in again.stoi and "फिल्म" not in again.stoi
    assert "फिल्म" in build_vocab(HINDI, "word").stoi          # a new run: whole words
    with pytest.raises(DataError, match="another vocabulary of word tokens than the one"):
        build_vocab(HINDI, "word", stored={**old, "tokens": old["tokens"][:-1]})


def rewrite(path, **changes):
    ckpt = load_checkpoint(path)
    save_checkpoint(path, {**{k: v for k, v in ckpt.items()
                              if k not in ("format", "version", "digest")}, **changes})


def test_seq2seq_run_of_the_older_form_resumes_on_its_own_vocabulary(tmp_path, capsys):
    pairs = tmp_path / "pairs.tsv"
    sentences = [f"{n} {a} {b} {v}" for n in ("फिल्म", "किताब", "कहानी", "गीत", "नाटक")
                 for a in ("बहुत", "काफ़ी", "थोड़ी") for b in ("अच्छी", "बुरी", "लंबी", "छोटी")
                 for v in ("थी", "है")]
    pairs.write_text("".join(f"{s}\t{s.split()[0]}\n" for s in sentences), encoding="utf-8")
    out = tmp_path / "run"
    flags = ["--data", str(pairs), "--src-tokens", "word", "--max-vocab", "8", "--hidden", "8",
             "--embed", "8", "--batch", "8", "--eval-every", "2", "--warmup-steps", "0",
             "--quiet"]
    assert main(["train", "seq2seq", "--out", str(out), "--max-steps", "2", *flags]) == 0
    ckpt = load_checkpoint(out / "last.pt", kind="seq2seq")
    task = build_seq2seq_task(Seq2SeqData(**ckpt["data_config"]),
                              Seq2SeqConfig(**ckpt["model_config"]), log=lambda *a: None)
    # the run as an older rnnkit made it: the same 8 source ids for other tokens
    old = form1_vocab([s for s, _ in task.splits["train"]], 8)
    assert len(old) == len(ckpt["src_vocab"]["tokens"]) and old.itos != ckpt["src_vocab"]["tokens"]
    rewrite(out / "last.pt", src_vocab={"kind": "word", "tokens": old.itos})
    capsys.readouterr()
    assert main(["train", "seq2seq", "--out", str(out), "--resume", "--max-steps", "4",
                 *flags]) == 0, capsys.readouterr().err
    assert load_checkpoint(out / "last.pt")["src_vocab"] == old.to_dict()
    # a stored vocabulary that the data does not give: refused, not trained under other tokens
    rewrite(out / "last.pt", src_vocab={"kind": "word", "tokens": SPECIALS + list("wxyz")})
    assert main(["train", "seq2seq", "--out", str(out), "--resume", "--max-steps", "6",
                 *flags]) == 2
    err = capsys.readouterr().err
    assert "--resume: the training pairs, read now, give another vocabulary" in err
    assert "Traceback" not in err


def test_a_resumed_checkpoint_of_an_unknown_form_is_refused_in_one_line(tmp_path, capsys):
    """A form from a newer rnnkit ended --resume as an internal error (the builder read it)."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("फिल्म अच्छी थी. the cat sat.\n" * 200, encoding="utf-8")
    out = tmp_path / "run"
    flags = ["--hidden", "8", "--quiet"]
    assert main(["train", "lm", "--data", str(corpus), "--tokens", "word-exact", "--out",
                 str(out), "--max-steps", "2", *flags]) == 0
    ckpt = load_checkpoint(out / "last.pt")
    rewrite(out / "last.pt", vocab={**ckpt["vocab"], "form": 7})
    capsys.readouterr()
    assert main(["train", "lm", "--out", str(out), "--resume", "--max-steps", "4", *flags]) == 2
    err = capsys.readouterr().err
    assert "last.pt: its settings are not usable: vocabulary form must be 1 to 2, got 7" in err
    assert "internal error" not in err
