"""Tagger tokens (words, characters, B-/I- character tags from words), own validation/test files
and evaluate_file."""
import pytest
import torch

from rnnkit.cli.main import main
from rnnkit.data import DataError
from rnnkit.data.tagged import char_sentences, resolve_tag_tokens
from rnnkit.models.tagger import TaggerConfig
from rnnkit.tasks.common import train
from rnnkit.tasks.tag import TagData, build_tag_task
from rnnkit.tasks.tag_trained import Tagger, evaluate_file
from rnnkit.train import TrainConfig

WORDS = ["我们/r 喜欢/v 新/a 世纪/n", "他/r 喜欢/v 世纪/n", "新/a 年/n 好/a"]
SEG = ["迈/b 向/e 新/s 世/b 纪/e", "充/b 满/e 希/b 望/e", "的/s 新/s 年/s"]


def write(tmp_path, name, lines, n=8):
    path = tmp_path / name
    path.write_text("\n".join(lines * n) + "\n", encoding="utf-8")
    return path


def task(tmp_path, lines, **data):
    d = TagData(data=str(write(tmp_path, "t.txt", lines)), batch=8, min_count=1, **data)
    cfg = TaggerConfig(hidden=8, embed=8, char_embed=0, dropout=0.0)
    return build_tag_task(d, cfg, log=lambda *a: None)


def test_auto_tokens():
    seg = [(list("迈向"), ["b", "e"])]
    assert resolve_tag_tokens("auto", seg) == "char"
    assert resolve_tag_tokens("auto", [(["我们"], ["r"])]) == "word"
    with pytest.raises(ValueError, match="tokens must be one of"):
        resolve_tag_tokens("bytes", seg)


def test_char_sentences_tag_each_character():
    assert char_sentences([(["我们", "好"], ["r", "a"])]) == \
        [(["我", "们", "好"], ["B-r", "I-r", "B-a"])]


def test_char_model_from_words_tags_raw_text_and_joins_words(tmp_path, capsys):
    t = task(tmp_path, WORDS, tokens="char")
    assert t.tokens == "char" and "B-v" in t.tags
    out = tmp_path / "run"
    train(t, TrainConfig(max_steps=60, eval_every=20, lr=0.03, warmup_steps=0), out, quiet=True,
          log=lambda *a: None)
    tagger = Tagger.load(out)
    assert tagger.char_tokens and tagger.split("我们 喜欢") == list("我们喜欢")
    assert tagger.words(list("我们好"), ["B-r", "I-r", "B-a"]) == [("我们", "r"), ("好", "a")]
    capsys.readouterr()
    assert main(["tag", str(out), "我们喜欢新世纪"]) == 0
    assert capsys.readouterr().out.strip() == "我们/r  喜欢/v  新/a  世纪/n"


def test_segmentation_reads_characters_and_word_models_warn_on_raw_text(tmp_path, capsys):
    seg = task(tmp_path, SEG)
    assert seg.tokens == "char"
    words = task(tmp_path, WORDS)
    assert words.tokens == "word"
    out = tmp_path / "run"
    train(words, TrainConfig(max_steps=4, eval_every=2), out, quiet=True, log=lambda *a: None)
    assert main(["tag", str(out), "我们喜欢新世纪"]) == 0
    assert "segment the text first" in capsys.readouterr().err


def test_own_files_and_evaluate_file(tmp_path):
    val = write(tmp_path, "val.txt", SEG[:1], 2)
    test = write(tmp_path, "test.txt", SEG[1:], 2)
    t = task(tmp_path, SEG, val_data=str(val), test_data=str(test))
    assert (len(t.train), len(t.val), len(t.test)) == (24, 2, 4)
    out = tmp_path / "run"
    train(t, TrainConfig(max_steps=10, eval_every=5), out, quiet=True, log=lambda *a: None)
    m = evaluate_file(out, test)
    assert m["kind"] == "tag" and m["size"] == 2 * (4 + 3) and 0 <= m["accuracy"] <= 1
    assert 0 <= m["word_f1"] <= 1 and m["unseen_tags"] == 0
    with pytest.raises(DataError, match=r"bad.txt:1: expected 'word/tag'"):
        evaluate_file(out, write(tmp_path, "bad.txt", ["迈 向"], 1))


def test_unseen_tag_in_a_test_file_is_scored_as_an_error(tmp_path, capsys):
    """An unseen tag counts as an error, with a warning; a file with none of the model's tags
    (one for another model) is refused; a file mostly of unknown words is warned about."""
    t = task(tmp_path, WORDS)
    out = tmp_path / "run"
    train(t, TrainConfig(max_steps=4, eval_every=2), out, quiet=True, log=lambda *a: None)
    capsys.readouterr()
    m = evaluate_file(out, write(tmp_path, "x.txt", ["他/r 跑/zz"], 1))
    assert m["unseen_tags"] == 1 and m["accuracy"] <= 0.5
    assert "x.txt: 1 of 2 tokens carry tags the model never saw (zz)" in capsys.readouterr().err
    with pytest.raises(DataError, match=r"y.txt: none of its tags is one the model was trained "
                                         r"with \(the file's: NN, VB; the model's: a, n, r, v\)"):
        evaluate_file(out, write(tmp_path, "y.txt", ["he/NN runs/VB"], 1))
    evaluate_file(out, write(tmp_path, "z.txt", ["he/r runs/v"], 1))
    assert "z.txt: the model's vocabulary holds 0% of the file's tokens" in capsys.readouterr().err


def test_a_held_out_file_with_none_of_the_training_tags_is_refused(tmp_path):
    """Another tag column in --test-data was trained and scored as accuracy 0.0, with a
    warning; rnnkit eval refuses such a file."""
    other = write(tmp_path, "other.txt", ["he/NN runs/VB"], 2)
    with pytest.raises(DataError, match=r"other.txt \(--test-data\): none of its tags occurs in "
                                         r"training \(its: NN, VB; training's: a, n, r, v\)"):
        task(tmp_path, WORDS, test_data=str(other))
    mixed = write(tmp_path, "mixed.txt", ["he/r runs/VB"], 2)      # one rare tag: still taken
    assert len(task(tmp_path, WORDS, val_data=str(mixed)).val) == 2


def test_training_sentences_of_one_tag_are_refused(tmp_path):
    """Every token tagged N trained a model that learned nothing, and scored accuracy 1.0."""
    with pytest.raises(DataError, match=r"need at least 2 distinct tags in the training "
                                        r"sentences, got \['N'\]"):
        task(tmp_path, ["he/N runs/N", "the/N dog/N runs/N"])


def test_window_grams_hash_each_side_apart():
    from rnnkit.tasks.tag_features import window_grams
    g = window_grams(list("abc"), 3, 1_000_003)
    assert [len(row) for row in g] == [4, 4, 4]            # 2-, 3-grams ending, then starting
    assert all(1 <= b <= 1_000_003 for row in g for b in row)
    assert g[1][0] != g[0][2]        # "ab" ending at b, "ab" starting at a: their own rows
    assert g == window_grams(list("abc"), 3, 1_000_003)     # the same in every call
    assert window_grams(list("abx"), 3, 1_000_003)[0][:1] == g[0][:1]   # "<s>a" only sees a
    assert window_grams(["a"], 1, 7) == [[]]


def test_window_features_key_each_template_by_offset():
    from rnnkit.models.tagger import window_slots
    from rnnkit.tasks.tag_features import window_features
    f = window_features(list("abcd"), 2, 2, 1_000_003)
    assert [len(row) for row in f] == [9] * 4 == [window_slots(2, 2)] * 4
    # b is c0 of b, c+1 of a, c-1 of c: three templates, three keys; c0 of b is c0 anywhere
    assert len({f[1][2], f[0][3], f[2][1]}) == 3
    assert window_features(list("xb"), 2, 2, 1_000_003)[1][2] == f[1][2]
    assert window_features(list("abcd"), 2, 2, 1_000_003) == f and window_slots(1, 3) == 6


@pytest.mark.parametrize("extra", [dict(ngrams=2, buckets=50),
                                   dict(ngrams=2, buckets=50, window=2, window_buckets=60),
                                   dict(window=1, window_buckets=60, crf=True)])
def test_ngram_tagger_trains_saves_and_tags_the_same(tmp_path, extra, capsys):
    d = TagData(data=str(write(tmp_path, "t.txt", SEG)), batch=8, min_count=1)
    cfg = TaggerConfig(hidden=8, embed=8, char_embed=0, dropout=0.0, **extra)
    t = build_tag_task(d, cfg, log=lambda *a: None)
    assert t.train_batch(0)[-1].shape[-1] == cfg.input_grams
    out = tmp_path / "run"
    train(t, TrainConfig(max_steps=40, eval_every=20, lr=0.03, warmup_steps=0), out, quiet=True,
          log=lambda *a: None)
    tagger = Tagger.load(out)
    assert tagger.model.config == t.model.config
    sents = [list("迈向新世纪"), list("充满希望")]
    assert tagger.tag(sents) == Tagger.from_task(t).tag(sents)
    assert evaluate_file(out, write(tmp_path, "test.txt", SEG, 1))["word_f1"] > 0.9
    if extra.get("crf"):   # a segmenter prints words; --char-tags each character's tag
        capsys.readouterr()
        assert main(["tag", str(out), "迈向新世纪", "充满 希望"]) == 0
        assert capsys.readouterr().out.splitlines() == ["迈向 新 世纪", "充满 希望"]
        assert main(["tag", "--char-tags", str(out), "的新年"]) == 0
        assert capsys.readouterr().out.strip() == "的/s  新/s  年/s"


def test_tagger_checkpoint_from_before_the_ngram_features_loads(tmp_path):
    """A checkpoint whose model config has neither ngrams nor window is a tagger without them."""
    from rnnkit.train.checkpoint import load_checkpoint, save_checkpoint
    d = TagData(data=str(write(tmp_path, "t.txt", SEG)), batch=8, min_count=1)
    cfg = TaggerConfig(hidden=8, embed=8, char_embed=0, dropout=0.0, ngrams=1, window=0)
    t = build_tag_task(d, cfg, log=lambda *a: None)
    out = tmp_path / "run"
    train(t, TrainConfig(max_steps=20, eval_every=20, lr=0.03, warmup_steps=0), out, quiet=True,
          log=lambda *a: None)
    ckpt = load_checkpoint(out / "best.pt")
    for key in ("ngrams", "buckets", "window", "window_buckets"):
        del ckpt["model_config"][key]
    save_checkpoint(tmp_path / "old.pt", ckpt)
    old = Tagger.load(tmp_path / "old.pt")
    assert old.model.grams is None and old.model.window is None
    assert old.tag([list("迈向新世纪")]) == Tagger.load(out).tag([list("迈向新世纪")])


def test_encoder_keeps_sentence_grams_within_its_cache(monkeypatch):
    import rnnkit.tasks.tag_features as tag
    monkeypatch.setattr(tag, "GRAM_CACHE", 2)
    enc = tag.Encoder(None, None, 4, ngrams=2, buckets=50,
                      window=1, window_buckets=60)
    rows = [enc.sentence_grams(tuple(s)) for s in ("ab", "ba", "aa", "ab")]
    assert len(enc._gram_cache) == 2
    assert rows[0].tolist() == rows[3].tolist() == enc.grams(tuple("ab"))


def test_word_ends_and_shape():
    from rnnkit.tasks.tag_features import word_ends, word_shape
    assert word_ends("international", 8) == "inteonal" and word_ends("runs", 4) == "runs"
    assert word_ends("running", 4) == "rung" and word_ends("abc", 1) == "a"
    assert [word_shape(w) for w in ("International", "U.S.", "1961", "well-known", "中国")] \
        == ["Xx", "X.X.", "d", "x-x", "x"]


def test_affix_features_fill_the_affix_slots():
    from rnnkit.models.tagger import affix_slots
    from rnnkit.tasks.tag_features import affix_features
    f = affix_features(["The", "cats", "ran"], 3, 1_000_003)
    assert [len(row) for row in f] == [affix_slots(3)] * 3 == [7] * 3
    assert f[1][4] != f[2][4] and f[0][5] == f[2][5]   # "ats" / "ran"; both 3 long
    assert affix_features(["a"], 0, 7) == [[]] and affix_slots(0) == 0


def test_word_tagger_reads_affixes_saves_and_tags_the_same(tmp_path):
    d = TagData(data=str(write(tmp_path, "t.txt", WORDS)), batch=8, min_count=1,
                max_word_chars=2)
    cfg = TaggerConfig(hidden=8, embed=8, char_embed=4, dropout=0.0, window=1,
                       window_buckets=60)
    t = build_tag_task(d, cfg, log=lambda *a: None)
    assert t.model.config.affixes == 3 and t.encoder.word_chars == "ends"
    assert t.train_batch(0)[-1].shape[-1] == t.model.config.input_grams == 5 + 7
    assert t.encoder.char_ids("我们喜") == t.encoder.char_ids("我喜")   # first and last
    out = tmp_path / "run"
    train(t, TrainConfig(max_steps=20, eval_every=20, lr=0.03, warmup_steps=0), out, quiet=True,
          log=lambda *a: None)
    tagger = Tagger.load(out)
    assert tagger.model.config == t.model.config and tagger.encoder.word_chars == "ends"
    sents = [["我们", "喜欢", "新", "世纪"], ["新", "年"]]
    assert tagger.tag(sents) == Tagger.from_task(t).tag(sents)


def test_word_tagger_checkpoint_from_before_affixes_and_word_ends_loads(tmp_path):
    """A checkpoint without ``affixes`` and ``word_chars`` reads no affixes and a word's first
    characters, as the version that saved it did."""
    from rnnkit.tasks.tag_trained import upgrade
    from rnnkit.train.checkpoint import load_checkpoint, save_checkpoint
    d = TagData(data=str(write(tmp_path, "t.txt", WORDS)), batch=8, min_count=1,
                max_word_chars=1, word_chars="first")
    cfg = TaggerConfig(hidden=8, embed=8, char_embed=4, dropout=0.0, window=1,
                       window_buckets=60, affixes=0)
    t = build_tag_task(d, cfg, log=lambda *a: None)
    out = tmp_path / "run"
    train(t, TrainConfig(max_steps=20, eval_every=20, lr=0.03, warmup_steps=0), out, quiet=True,
          log=lambda *a: None)
    ckpt = load_checkpoint(out / "best.pt")
    del ckpt["model_config"]["affixes"], ckpt["model_config"]["crf_tags"]
    del ckpt["data_config"]["word_chars"]
    save_checkpoint(tmp_path / "old.pt", ckpt)
    old = Tagger.load(tmp_path / "old.pt")
    assert old.model.config.affixes == 0 and old.encoder.word_chars == "first"
    sents = [["我们", "喜欢", "世纪"]]
    assert old.tag(sents) == Tagger.load(out).tag(sents)
    assert TagData(**upgrade(ckpt)["data_config"]).word_chars == "first"


def test_word_and_feature_dropout_act_in_training_only(tmp_path):
    """--word-dropout turns training words into <unk> (seeded by the step, so a resumed run sees
    the same batch); --feature-dropout drops linear-term features in training mode only, and a
    checkpoint from before either field trains without them."""
    from rnnkit.tasks.tag_trained import upgrade
    d = TagData(data=str(write(tmp_path, "t.txt", WORDS, n=40)), batch=64, min_count=1,
                word_dropout=0.5)
    cfg = TaggerConfig(hidden=8, embed=8, char_embed=4, dropout=0.0, window=1,
                       window_buckets=60, feature_dropout=0.5)
    t = build_tag_task(d, cfg, log=lambda *a: None)
    unk = t.encoder.vocab.unk
    x = t.train_batch(3)[0]
    plain = t.make_batch([t.train[i] for i in t.batches(3)])[0]
    real = plain > 0
    dropped = (x == unk) & (plain != unk)
    assert 0.3 < dropped[real].float().mean() < 0.7         # about half of the words
    assert torch.equal(x[~dropped], plain[~dropped])        # the others (and padding) kept
    assert torch.equal(t.train_batch(3)[0], x)              # the same batch again
    x, lengths, _, chars, char_lengths, grams = t.make_batch(t.val or t.train[:4])
    t.model.eval()
    assert torch.equal(t.model(x, lengths, chars, char_lengths, grams),
                       t.model(x, lengths, chars, char_lengths, grams))
    with torch.no_grad():
        t.model.window.weight.normal_()
    t.model.train()
    assert not torch.equal(t.model(x, lengths, chars, char_lengths, grams),
                           t.model(x, lengths, chars, char_lengths, grams))
    old = upgrade({"model_config": {}, "data_config": {}})
    assert old["model_config"]["feature_dropout"] == 0 == old["data_config"]["word_dropout"]


def test_no_crf_means_no_crf_layer_and_contradictions_are_refused(tmp_path, capsys):
    """``--no-crf`` on a new run leaves out the CRF layer that --crf-tags and the linear start
    would otherwise add; with either of those asked for, it is a one-line error."""
    from rnnkit.train.checkpoint import load_checkpoint
    data = str(write(tmp_path, "t.txt", SEG))
    small = ["--hidden", "4", "--embed", "4", "--max-steps", "2", "--eval-every", "2", "--quiet"]
    assert main(["train", "tag", "--data", data, "--out", str(tmp_path / "a"), *small]) == 0
    cfg = load_checkpoint(tmp_path / "a" / "best.pt")["model_config"]
    assert cfg["crf"] and cfg["linear_start"]          # 4 tags: a CRF layer and the linear start
    assert main(["train", "tag", "--data", data, "--out", str(tmp_path / "b"), "--no-crf",
                 *small]) == 0
    cfg = load_checkpoint(tmp_path / "b" / "best.pt")["model_config"]
    assert not cfg["crf"] and not cfg["linear_start"] and cfg["crf_tags"] == 0
    capsys.readouterr()
    for extra in (["--crf-tags", "10"], ["--linear-start"]):
        assert main(["train", "tag", "--data", data, "--out", str(tmp_path / "c"), "--no-crf",
                     *extra, *small]) != 0
        err = capsys.readouterr().err
        assert "--no-crf with " + extra[0] in err and "Traceback" not in err
    assert not (tmp_path / "c").exists()
    resume = ["train", "tag", "--out", str(tmp_path / "a"), "--resume", "--max-steps", "3"]
    assert main([*resume, "--no-crf", "--quiet"]) == 2   # was taken, and the CRF trained on
    assert "--no-crf: this run's tagger has a CRF layer" in capsys.readouterr().err
    assert main(["train", "tag", "--out", str(tmp_path / "b"), "--resume", "--max-steps", "3",
                 "--no-crf", "--quiet"]) == 0             # the run's own flag restated


def test_a_tag_run_stops_when_validation_stops_improving(tmp_path, monkeypatch):
    """``rnnkit train tag`` defaults to --patience 1000 and one --lr-drops drop (1,000 steps
    after its best validation the run goes back to it at a tenth of the rate, and ends 1,000
    steps after the next best; the trainer's tests check both); --patience 0 trains to the
    limit."""
    from rnnkit.cli.main import build_parser
    from rnnkit.cli.tag import RUN
    data = str(write(tmp_path, "t.txt", WORDS))
    flags = ["train", "tag", "--data", data, "--out", str(tmp_path / "a")]
    config = RUN.configs(build_parser().parse_args(flags))[2]
    assert (config.patience, config.lr_drops, config.drop_factor) == (1000, 1, 0.1)
    assert RUN.configs(build_parser().parse_args(flags + ["--lr-drops", "0"]))[2].lr_drops == 0
    # --patience 0 turns the drop off too (train() does, before the configs), unless it is given
    import types

    from rnnkit.cli import tag as tag_cli
    seen = []
    monkeypatch.setattr(tag_cli, "RUN", types.SimpleNamespace(
        run=lambda args: seen.append(RUN.configs(args)[2]) or 0))
    for extra, drops in ((["--patience", "0"], 0), (["--patience", "0", "--lr-drops", "2"], 2)):
        tag_cli.train(build_parser().parse_args(flags + extra))
        assert (seen[-1].patience, seen[-1].lr_drops) == (0, drops)


def test_small_data_get_tables_their_features_can_fill(tmp_path):
    """The linear term's and the n-gram embedding's hash tables hold 4 rows a distinct feature of
    the training part where that is fewer than the defaults (a few hundred sentences had 30 M
    parameters); a size the user gives is kept, and large data keep the defaults."""
    from rnnkit.models.tagger import GRAM_BUCKETS, window_buckets
    from rnnkit.tasks.tag_features import distinct_features
    from task_fixtures import tag_task
    task = tag_task(tmp_path, ngrams=2)
    c = task.model.config
    sentences = [w for w, _ in task.train]
    grams, features = distinct_features(sentences, c.ngrams, c.window, c.affixes,
                                        (GRAM_BUCKETS, window_buckets(c.num_tags)))
    assert 0 < grams and 0 < features < 1000
    assert c.buckets == max(1024, 4 * grams) < GRAM_BUCKETS
    assert c.window_buckets == max(1024, 4 * features) < window_buckets(c.num_tags)
    assert task.model.window.num_embeddings == c.window_buckets + 1
    assert distinct_features(sentences, 2, 2, 3, (8, 8)) == (None, None)   # full: not counted
    (tmp_path / "kept").mkdir()
    kept = tag_task(tmp_path / "kept", ngrams=2, buckets=5000, window_buckets=7000).model.config
    assert (kept.buckets, kept.window_buckets) == (5000, 7000)


def test_a_segmentation_of_letters_with_marks_reads_as_characters():
    """Thai's พื่ (a letter and two marks) is one token of a segmentation file: auto read the
    file as words (a whole line a word), and --tokens char made B-B/I-M tags, no segmenter."""
    sents = [(["เ", "พื่", "อ", "น"], ["B", "M", "M", "E"]), (["คุ", "ณ"], ["B", "E"]),
             (["น้ำ"], ["S"])]
    assert resolve_tag_tokens("auto", sents) == "char"
    assert char_sentences(sents) == [
        (["เ", "พ", "ื", "่", "อ", "น"], ["B", "M", "M", "M", "M", "E"]),
        (["ค", "ุ", "ณ"], ["B", "M", "E"]), (["น", "้", "ำ"], ["B", "M", "E"])]
    lower = [(["เ", "พื่"], ["b", "e"])]            # b/m/e/s as a file may write them
    assert char_sentences(lower) == [(["เ", "พ", "ื", "่"], ["b", "m", "m", "e"])]
    words = [(["नमस्ते", "दुनिया"], ["X", "N"])]   # words with marks: still words, B-/I- tags
    assert resolve_tag_tokens("auto", words) == "word"
    assert char_sentences(words)[0][1][:2] == ["B-X", "I-X"]


def test_a_resume_reads_the_file_as_its_run_chose_to(tmp_path, monkeypatch, capsys):
    """--tokens auto chose again on --resume: a file whose choice changed since (a Thai
    segmentation, words before, characters now) was refused as another vocabulary."""
    import rnnkit.tasks.tag as tag_module
    data, out = write(tmp_path, "seg.txt", SEG), tmp_path / "run"
    flags = ["train", "tag", "--data", str(data), "--out", str(out), "--hidden", "8",
             "--embed", "8", "--min-count", "1", "--eval-every", "2", "--quiet"]
    assert main(flags + ["--max-steps", "2"]) == 0
    monkeypatch.setattr(tag_module, "resolve_tag_tokens", lambda kind, sents: "word")
    assert main(flags + ["--max-steps", "4", "--resume"]) == 0, capsys.readouterr().err
    assert torch.load(out / "last.pt", weights_only=True)["tokens"] == "char"
