"""The language model off its showcase: large vocabularies (tied embeddings, adaptive softmax,
unigram start), the PTB word mode, own validation/test files, ``evaluate_file``, and a resume
that keeps the run's vocabulary."""
import json
import math

import pytest
import torch

from rnnkit.cli.main import main
from rnnkit.data import DataError, Vocab
from rnnkit.decode import sample
from rnnkit.models import LanguageModel, LMConfig
from rnnkit.models.language_model import adaptive_cutoffs, saved_lm_config
from rnnkit.tasks.lm import LMData, build_lm_task, evaluate_file, load_lm, read_corpus

from lm_fixtures import CHINESE, ENGLISH, write_corpus

TINY = ["--seq-len", "16", "--batch", "4", "--layers", "1", "--hidden", "32",
        "--eval-every", "10", "--warmup-steps", "0", "--lr", "0.01", "--quiet"]


def test_auto_settings_follow_the_vocabulary():
    small = LMConfig(hidden=32).for_vocab(80)
    assert (small.tie, small.softmax, small.embed) == ("no", "full", 64)
    chinese = LMConfig(hidden=32).for_vocab(4700)
    assert (chinese.tie, chinese.softmax, chinese.embed) == ("no", "adaptive", 32)
    tied = LMConfig(hidden=32, tie="yes").for_vocab(4700)
    assert (tied.softmax, tied.embed) == ("full", 32)
    with pytest.raises(ValueError, match="embed == hidden"):
        LMConfig(hidden=32, embed=16, tie="yes")
    with pytest.raises(ValueError, match="full softmax"):
        LMConfig(hidden=32, tie="yes", softmax="adaptive")
    assert adaptive_cutoffs(4700) == [587, 2348]
    assert saved_lm_config({"vocab_size": 9, "embed": 64})["tie"] == "no"   # older checkpoints


@pytest.mark.parametrize("tie,softmax", [("yes", "full"), ("no", "adaptive")])
def test_large_vocabulary_heads_step_like_the_forward_and_learn(tie, softmax):
    torch.manual_seed(0)
    V = 300
    model = LanguageModel(LMConfig(vocab_size=V, hidden=16, tie=tie, softmax=softmax)).eval()
    if tie == "yes":
        assert model.head.weight is model.embed.weight
    x = torch.randint(0, V, (2, 6))
    logits, _ = model(x)                                             # (B, T, V)
    assert logits.shape == (2, 6, V)
    if softmax == "adaptive":   # log-probabilities: they normalise
        torch.testing.assert_close(logits.exp().sum(-1), torch.ones(2, 6))
    state = model.init_state(2)
    for t in range(6):
        step_logits, state = model.step(x[:, t], state)
        torch.testing.assert_close(step_logits, logits[:, t], rtol=1e-5, atol=1e-5)
    y = torch.randint(0, V, (2, 6))
    loss, _ = model.train().loss(x, y)
    assert torch.isclose(loss, torch.nn.functional.cross_entropy(
        model.eval()(x)[0].flatten(0, 1), y.flatten()), atol=1e-5)


@pytest.mark.parametrize("softmax", ["full", "adaptive"])
def test_training_starts_near_the_unigram_entropy(tmp_path, softmax):
    data = LMData(data=str(write_corpus(tmp_path)), seq_len=16, batch=4)
    task = build_lm_task(data, LMConfig(layers=1, hidden=16, softmax=softmax), log=lambda *a: None)
    counts = torch.bincount(task.train.x.flatten(), minlength=len(task.vocab)).double()
    p = counts[counts > 0] / counts.sum()
    unigram = float(-(p * p.log()).sum())
    loss = task.evaluate()["val_loss"]
    slack = 0.25 if softmax == "full" else 0.6   # adaptive: uniform within each cluster
    assert abs(loss - unigram) < slack and loss < math.log(len(task.vocab)) - 0.25


def test_ptb_word_mode_counts_words_and_line_ends(tmp_path):
    text = "the cat sat on the mat\nthe dog sat\n" * 40
    vocab = Vocab.build(text, "ptb")
    assert vocab.decode(vocab.encode("the cat sat\n")) == "the cat sat\n"
    corpus = write_corpus(tmp_path, text)
    out = tmp_path / "run"
    assert main(["train", "lm", "--data", str(corpus), "--tokens", "word", "--out", str(out),
                 "--max-steps", "20", "--test-data", str(corpus), *TINY]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["unit"] == "word" and m["test_ppl"] == pytest.approx(math.exp(m["test_loss"]))
    got = evaluate_file(out, corpus)
    assert got["size"] == len(text.split()) + text.count("\n") - 1
    assert got["loss"] == pytest.approx(m["test_loss"], rel=1e-5)


def test_own_validation_file_and_evaluate_file_agree(tmp_path, capsys):
    train_file = write_corpus(tmp_path, ENGLISH, "train.txt")
    val_file = write_corpus(tmp_path, ENGLISH[:400], "val.txt")
    out = tmp_path / "run"
    assert main(["train", "lm", "--data", str(train_file), "--val-data", str(val_file),
                 "--out", str(out), "--max-steps", "20", *TINY]) == 0
    best = json.loads((out / "metrics.json").read_text())["best_val_loss"]
    got = evaluate_file(out, val_file)
    assert got["loss"] == pytest.approx(best, rel=1e-5) and got["unit"] == "char"
    capsys.readouterr()
    assert main(["eval", str(out), str(val_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bits"] == pytest.approx(best / math.log(2), rel=1e-5)
    unseen = write_corpus(tmp_path, "ROMEO.\nZebra!\n", "unseen.txt")
    with pytest.raises(DataError, match=r"unseen.txt:2: token 'Z' is not in the model's vocabulary"):
        evaluate_file(out, unseen)


def test_resume_keeps_the_vocabulary_of_the_run(tmp_path, capsys):
    corpus = write_corpus(tmp_path, CHINESE)
    out = tmp_path / "run"
    assert main(["train", "lm", "--data", str(corpus), "--out", str(out), "--max-steps", "10",
                 *TINY]) == 0
    before = load_lm(out / "last.pt")[1]
    corpus.write_text("月光照九州。\n" + CHINESE, encoding="utf-8")   # new characters, ids reordered
    resume = ["train", "lm", "--out", str(out), "--resume", "--max-steps", "20", "--quiet"]
    assert main(resume) == 2
    assert "the --data file changed since this run started" in capsys.readouterr().err
    assert main([*resume, "--allow-data-change"]) == 2
    assert "corpus.txt:1: token '照' is not in the model's vocabulary" in capsys.readouterr().err
    corpus.write_text(CHINESE + "明月光。\n" * 50, encoding="utf-8")   # known characters, new counts
    assert main([*resume, "--allow-data-change"]) == 0
    assert load_lm(out / "last.pt")[1] == before


def test_chinese_corpus_trains_with_the_auto_head(tmp_path):
    """A vocabulary past the adaptive-softmax threshold; sampling works after loading."""
    import random
    rng = random.Random(0)
    chars = [chr(0x4E00 + i) for i in range(2500)]
    text = "".join(rng.choice(chars[:50]) + rng.choice(chars) for _ in range(8000))
    out = tmp_path / "run"
    assert main(["train", "lm", "--data", str(write_corpus(tmp_path, text)), "--out", str(out),
                 "--max-steps", "5", *[a for a in TINY if a != "--quiet"], "--quiet"]) == 0
    model, vocab = load_lm(out)
    assert model.config.softmax == "adaptive" and model.config.embed == 32 and len(vocab) > 2000
    ids = list(sample(model, vocab.encode(text[:2]), 10, 1.0, seed=1))
    assert len(torch.cat(ids)) == 10


@pytest.mark.parametrize("flags,message", [
    (["--tie", "yes", "--embed", "16"], "embed == hidden"),
    (["--tie", "yes", "--softmax", "adaptive"], "full softmax"),
    (["--max-vocab", "1"], "LMData.max_vocab must be 0 or in [2, 1e7], got 1"),
])
def test_contradictory_lm_flags_are_one_line_errors(tmp_path, capsys, flags, message):
    assert main(["train", "lm", "--data", str(write_corpus(tmp_path)), "--out", str(tmp_path / "r"),
                 *TINY, *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1


def test_a_folder_of_text_files_is_their_corpus(tmp_path):
    """--data FOLDER: its .txt files under it, in path order, each ending with a newline, are
    the corpus (the same tokens as the joined file); other files are not read; a folder without
    .txt files is a one-line error."""
    first, second = ENGLISH[:301], ENGLISH[301:]          # the first ends mid-line
    books = tmp_path / "books"
    (books / "b").mkdir(parents=True)
    (books / "a.txt").write_text(first, encoding="utf-8")
    (books / "b" / "c.txt").write_text(second, encoding="utf-8")
    (books / "notes.md").write_text("# not a book\n", encoding="utf-8")
    assert read_corpus(str(books)) == (books, first + "\n" + second)

    def task(data):
        return build_lm_task(LMData(data=str(data), seq_len=16, batch=4),
                             LMConfig(cell="lstm", layers=1, hidden=8), log=lambda *a: None)
    joined = write_corpus(tmp_path, first + "\n" + second)
    assert task(books).vocab.to_dict() == task(joined).vocab.to_dict()
    own = build_lm_task(LMData(data=str(joined), val_data=str(books), seq_len=16, batch=4),
                        LMConfig(cell="lstm", layers=1, hidden=8), log=lambda *a: None)
    assert own.evaluate()["val_loss"] > 0      # the folder is the validation text
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="is a folder without .txt files"):
        task(tmp_path / "empty")


def test_a_corpus_too_short_for_the_batch_is_named(tmp_path, capsys):
    from rnnkit.cli.main import main
    path = tmp_path / "ten.txt"
    path.write_text("abcdefghij\n" * 3)
    assert main(["train", "lm", "--data", str(path), "--out", str(tmp_path / "run"), "--hidden",
                 "8", "--layers", "1", "--max-steps", "3", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: its training part: " in err and "too few for 64 streams" in err


def test_the_parts_files_add_no_line_break_to_the_vocabulary(tmp_path):
    """--val-data and --test-data were joined to the corpus with a line break: a corpus and
    files without one got a '\\n' the model never trained on, and sample primed with it."""
    corpus, val = tmp_path / "c.txt", tmp_path / "v.txt"
    corpus.write_text("hello world " * 300)
    val.write_text("hello world hello")
    task = build_lm_task(LMData(data=str(corpus), val_data=str(val), test_data=str(val),
                                batch=4, seq_len=8), LMConfig(hidden=8, layers=1),
                         log=lambda *a: None)
    assert "\n" not in task.vocab.itos
    assert Vocab.build(["ab", "c"]).itos == Vocab.build("abc").itos


def test_eval_warns_of_a_text_of_words_the_vocabulary_lacks(tmp_path, capsys):
    """A word model trained on English scored Chinese text (nearly all <unk>) at perplexity 17,
    five times 'better' than its own English validation text, without a word."""
    corpus = write_corpus(tmp_path, ENGLISH, "train.txt")
    out = tmp_path / "run"
    assert main(["train", "lm", "--data", str(corpus), "--out", str(out), "--tokens", "word",
                 "--max-vocab", "50", "--max-steps", "4", *TINY]) == 0
    capsys.readouterr()
    other = write_corpus(tmp_path, "月光 照 九州 。\n" * 30, "other.txt")
    got = evaluate_file(out, other)
    assert got["unknown"] > 0.5 * got["size"]
    assert "are <unk>, words the model's vocabulary lacks" in capsys.readouterr().err
    evaluate_file(out, corpus)
    assert "<unk>" not in capsys.readouterr().err


def test_the_validation_scored_under_eval_tokens_is_said(tmp_path, capsys):
    """--eval-tokens 1000 said 'validation the last 5% (15,000)' and scored 1,000 of them."""
    corpus = write_corpus(tmp_path, ENGLISH * 4, "train.txt")
    assert main(["train", "lm", "--data", str(corpus), "--out", str(tmp_path / "run"),
                 "--eval-tokens", "100", "--max-steps", "2", *TINY]) == 0
    assert ", the first 100 of them scored: --eval-tokens)" in capsys.readouterr().out



def test_a_large_validation_part_scored_whole_is_said(tmp_path, capsys, monkeypatch):
    """A 300 MB corpus validated on its whole 5% (15M characters) at every evaluation, minutes
    each, with nothing said of it or of --eval-tokens."""
    from rnnkit.tasks import lm
    monkeypatch.setattr(lm, "LARGE_VALIDATION", 50)
    corpus = write_corpus(tmp_path, ENGLISH * 4, "train.txt")
    assert main(["train", "lm", "--data", str(corpus), "--out", str(tmp_path / "run"),
                 "--max-steps", "2", *TINY]) == 0
    assert ", all scored at each evaluation: --eval-tokens N scores fewer)" in \
        capsys.readouterr().out
    monkeypatch.setattr(lm, "LARGE_VALIDATION", 10 ** 9)
    assert main(["train", "lm", "--data", str(corpus), "--out", str(tmp_path / "run2"),
                 "--max-steps", "2", *TINY]) == 0
    assert "all scored" not in capsys.readouterr().out
