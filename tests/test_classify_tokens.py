"""Character or word tokens for the classifier: detection, the n-gram encoder, the tokenizer kept
in the checkpoint and own validation/test files (evaluate_file: test_classify_eval.py)."""
import pytest
import torch

from rnnkit.cli.main import main
from rnnkit.data import DataError
from rnnkit.data.text_tokens import (char_gram_slots, chars, detect_tokens, ngram_buckets,
                                     resolve_tokens, unsegmented)
from rnnkit.models.classifier import (ClassifierConfig, SequenceClassifier, embedding_rows,
                                      gram_space, occurrences)
from rnnkit.tasks.classify import ClassifyData, batch, build_classify_task
from rnnkit.tasks.classify_trained import Classifier
from rnnkit.tasks.common import train
from rnnkit.train import TrainConfig

ZH_POS = ["这本书很好看", "质量很好，推荐", "非常满意，值得购买", "服务好，很喜欢", "好书，很喜欢"]
ZH_NEG = ["质量太差了", "很失望，不推荐", "非常糟糕，别买", "服务差，很生气", "差评，太失望"]
EN = ["a good film", "great fun", "awful and dull", "a poor story"]


def write_zh(tmp_path, name="zh.tsv", rows=None):
    rows = rows or [f"positive\t{t}" for t in ZH_POS] + [f"negative\t{t}" for t in ZH_NEG]
    path = tmp_path / name
    path.write_text("\n".join(rows * 3) + "\n", encoding="utf-8")
    return path


def zh_task(tmp_path, tokens="auto", bag="auto", **data):
    d = ClassifyData(data=str(write_zh(tmp_path)), batch=8, min_count=1, tokens=tokens, **data)
    cfg = ClassifierConfig(hidden=8, embed=8, dropout=0.0, buckets=64, bag=bag)
    return build_classify_task(d, cfg, log=lambda *a: None)


def test_auto_detects_unsegmented_scripts():
    assert detect_tokens(ZH_POS + ZH_NEG) == "char"
    assert detect_tokens(EN) == "word"
    assert detect_tokens(["ภาษาไทยง่ายมาก", "日本語のテキストです"]) == "char"
    assert detect_tokens(["한국어 문장입니다", "Привет мир"]) == "word"      # spaces between words
    # mixed: a tenth of Chinese texts is enough, since a Chinese clause is one \w+ word
    assert detect_tokens(EN * 4 + ZH_POS[:2]) == "char"
    assert detect_tokens(EN * 30 + ZH_POS[:1]) == "word"
    assert unsegmented("iPhone 很好用") and not unsegmented("I like 中 food very much")
    assert resolve_tokens("word", ZH_POS) == "word"
    with pytest.raises(ValueError, match="tokens must be one of"):
        resolve_tokens("bytes", EN)


def test_chars_normalise_width_and_case():
    assert chars("很好，ＯＫ! A") == ["很", "好", ",", "o", "k", "!", "a"]


def test_ngram_buckets_are_stable_and_in_range():
    a = ngram_buckets(list("很好吃"), 3, 50)
    assert a == ngram_buckets(list("很好吃"), 3, 50) and len(a) == 3 and len(a[0]) == 2
    assert all(1 <= b <= 50 for row in a for b in row)
    assert ngram_buckets(list("好吃"), 2, 50)[1] == a[2][:1]          # the same bigram 好吃


def test_char_ngram_encoder_shapes_and_padding_never_changes_a_prediction():
    torch.manual_seed(0)
    cfg = ClassifierConfig(vocab_size=20, num_classes=3, hidden=6, embed=5, ngrams=3, buckets=30)
    model = SequenceClassifier(cfg).eval()
    short = ([3, 4, 5], ngram_buckets(["3", "4", "5"], 3, 30))
    long = ([7, 8, 9, 10, 11, 12], ngram_buckets(list("abcdef"), 3, 30))
    x, lengths, grams = batch([short, long])
    assert x.shape == (2, 6) and grams.shape == (2, 6, 2) and grams[0, 3:].eq(0).all()
    both = model(x, lengths, grams)                                           # (2, K)
    alone = model(*batch([short]))
    assert both.shape == (2, 3)
    torch.testing.assert_close(both[0], alone[0])
    grams[0, 3:] = 7                                    # junk at the padded steps: ignored
    x[0, 3:] = 5
    torch.testing.assert_close(model(x, lengths, grams)[0], alone[0])
    with pytest.raises(ValueError, match="pass grams"):
        model(x, lengths)


def test_chinese_trains_on_characters_and_predict_reuses_the_tokenizer(tmp_path):
    task = zh_task(tmp_path)
    assert task.encoder.tokens == "char" and task.model.config.ngrams == 3
    out = tmp_path / "run"
    train(task, TrainConfig(max_steps=30, eval_every=10, lr=0.02, warmup_steps=0), out,
          quiet=True, log=lambda *a: None)
    clf = Classifier.load(out)
    assert clf.tokens == "char" and clf.encoder.max_len == 100_000   # what the bag reads
    assert clf.model.config.rnn_len == 300                           # the recurrent part 300
    texts = ["很好，很喜欢", "太差了，很失望", "没见过的字"]
    for (a, pa), (b, pb) in zip(Classifier.from_task(task).predict(texts), clf.predict(texts)):
        assert a == b and pa == pytest.approx(pb)        # train() leaves best.pt in the task
    assert [l for l, _ in clf.predict(texts[:2])] == ["positive", "negative"]


def test_word_tokens_can_be_forced_and_english_stays_word(tmp_path):
    assert zh_task(tmp_path, tokens="word").encoder.tokens == "word"
    from task_fixtures import classify_task
    task = classify_task(tmp_path)
    assert task.encoder.tokens == "word" and task.model.config.ngrams == 2   # words and bigrams


def test_old_word_checkpoints_still_load(tmp_path):
    from task_fixtures import classify_task
    task = classify_task(tmp_path, average=0.0, ngrams=1, bag="off")   # as old word runs were
    out = tmp_path / "run"
    train(task, TrainConfig(max_steps=4, eval_every=2), out, quiet=True, log=lambda *a: None)
    ckpt = torch.load(out / "best.pt", weights_only=True)
    for key in ("tokens", "max_len"):                    # as written before character tokens
        del ckpt[key]
    for key in ("ngrams", "buckets", "bag", "average", "bag_counts", "rnn_len"):
        del ckpt["model_config"][key]
    ckpt["model"] = {k: v for k, v in ckpt["model"].items() if not k.startswith("average.")}
    ckpt["data_config"]["max_len"] = 100
    for key in ("tokens", "val_data", "test_data"):
        del ckpt["data_config"][key]
    ckpt["version"] = 1                                   # written before checkpoint digests
    del ckpt["digest"]
    torch.save(ckpt, out / "old.pt")
    with pytest.warns(UserWarning, match="no content digest"):
        old = Classifier.load(out / "old.pt")
    assert old.tokens == "word" and old.encoder.max_len == 100
    assert old.predict(["a good film"]) == Classifier.load(out).predict(["a good film"])


def test_own_validation_and_test_files(tmp_path):
    val = write_zh(tmp_path, "val.tsv", [f"positive\t{ZH_POS[0]}", f"negative\t{ZH_NEG[0]}"])
    test = write_zh(tmp_path, "test.tsv", ["positive\t很好", "negative\t很差"])
    task = zh_task(tmp_path, val_data=str(val), test_data=str(test))
    assert len(task.val[0]) == 6 and len(task.test[0]) == 6 and len(task.train[0]) == 30
    bad = write_zh(tmp_path, "bad.tsv", ["positive\t好", "neutral\t一般"])
    with pytest.raises(DataError, match=r"bad.tsv:2: unknown label 'neutral'"):
        zh_task(tmp_path, test_data=str(bad))


def test_bad_token_flag_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "classify", "--data", str(write_zh(tmp_path)), "--tokens", "bytes",
                 "--out", str(tmp_path / "r")]) == 2
    assert "ClassifyData.tokens must be one of {auto, word, char}, got 'bytes'" \
        in capsys.readouterr().err


def test_bag_of_ngrams_term_is_the_scaled_sum_and_ignores_padding():
    torch.manual_seed(0)
    cfg = ClassifierConfig(vocab_size=20, num_classes=3, hidden=6, embed=5, ngrams=2, buckets=30,
                           bag="on", bag_counts="all", dropout=0.0, average=0.0)
    model = SequenceClassifier(cfg).eval()
    short = ([3, 4, 5], ngram_buckets(list("345"), 2, 30))
    long = ([7, 8, 9, 10, 11], ngram_buckets(list("abcde"), 2, 30))
    x, lengths, grams = batch([short, long])
    plain = SequenceClassifier(ClassifierConfig(**{**vars(cfg), "bag": "off"})).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items()
                           if not k.startswith("bag.")})
    torch.testing.assert_close(model(x, lengths, grams), plain(x, lengths, grams))  # zero at start
    with torch.no_grad():
        model.bag.tokens.weight.normal_()
        model.bag.grams.weight.normal_()
    U, G = model.bag.tokens.weight, model.bag.grams.weight
    want = (U[[3, 4, 5]].sum(0) + G[[g for g, in short[1]]].sum(0)) / 3 ** 0.5
    torch.testing.assert_close(model.bag(x, lengths, grams)[0], want)
    alone = model(*batch([short]))
    x[0, 3:], grams[0, 3:] = 5, 7                       # junk at the padded steps: ignored
    torch.testing.assert_close(model(x, lengths, grams)[0], alone[0])


def test_the_bag_counts_each_token_and_ngram_once_a_text():
    torch.manual_seed(0)
    cfg = ClassifierConfig(vocab_size=20, num_classes=2, hidden=6, embed=5, ngrams=2, buckets=30,
                           bag="on", dropout=0.0, average=0.0, bag_counts="once")
    model = SequenceClassifier(cfg).eval()
    every = SequenceClassifier(ClassifierConfig(**{**vars(cfg), "bag_counts": "all"})).eval()
    with torch.no_grad():
        model.bag.tokens.weight.normal_()
        model.bag.grams.weight.normal_()
    every.load_state_dict(model.state_dict())
    U, G = model.bag.tokens.weight, model.bag.grams.weight
    text = list("好好好差")                                  # 好 three times, <s>好 once, 好好 twice
    ids = [3, 3, 3, 4]
    x, lengths, grams = batch([(ids, ngram_buckets(text, 2, 30))])
    g = grams[0, :, 0].tolist()
    once = (U[3] + U[4] + G[g[0]] + G[g[1]] + G[g[3]]) / 2
    torch.testing.assert_close(model.bag(x, lengths, grams)[0], once)
    all_ = (3 * U[3] + U[4] + G[g[0]] + 2 * G[g[1]] + G[g[3]]) / 2
    torch.testing.assert_close(every.bag(x, lengths, grams)[0], all_)
    with pytest.raises(ValueError, match="bag_counts must be one of"):
        ClassifierConfig(bag_counts="twice")


def test_the_recurrent_part_reads_the_first_rnn_len_tokens_and_the_bag_all():
    torch.manual_seed(0)
    cfg = ClassifierConfig(vocab_size=20, num_classes=3, hidden=6, embed=5, ngrams=2, buckets=30,
                           bag="on", dropout=0.0, average=0.0, rnn_len=3)
    model = SequenceClassifier(cfg).eval()
    with torch.no_grad():
        model.bag.tokens.weight.normal_()
        model.bag.grams.weight.normal_()
    text = list("好好差好差差")
    ids = [3, 3, 4, 3, 4, 4]
    x, lengths, grams = batch([(ids, ngram_buckets(text, 2, 30))])
    short = [t[:, :3] for t in (x, grams)]
    rnn_part = model(short[0], torch.tensor([3]), short[1]) - model.bag(short[0], torch.tensor([3]),
                                                                         short[1])
    want = rnn_part + model.bag(x, lengths, grams)                # the bag over all six tokens
    torch.testing.assert_close(model(x, lengths, grams), want)
    whole = SequenceClassifier(ClassifierConfig(**{**vars(cfg), "rnn_len": 0})).eval()
    whole.load_state_dict(model.state_dict())
    assert not torch.allclose(whole(x, lengths, grams), want)   # reading all six differs
    from rnnkit.layers.errors import InputError
    with pytest.raises(InputError, match=r"lengths must lie in \[1, 6\] .* got 7 at batch row 0"):
        model(x, torch.tensor([7]), grams)   # (cut to rnn_len 3 before the layer saw it)


def test_classifier_predictions_keep_the_order_of_texts_of_any_length(tmp_path):
    task = zh_task(tmp_path)
    clf = Classifier.from_task(task)
    texts = [ZH_POS[0] * 7, ZH_NEG[1], ZH_POS[2] * 3, "好", ZH_NEG[0] * 60]
    together = clf.predict(texts)
    for text, got in zip(texts, together):
        label, probs = clf.predict([text])[0]
        assert got[0] == label and got[1] == pytest.approx(probs)


def test_length_chunks_cover_every_index_within_the_limits():
    from rnnkit.tasks.common import length_chunks
    lengths = [5, 1, 9, 3, 3, 100, 2, 7]
    got = length_chunks(lengths, size=3, tokens=20)
    assert sorted(i for c in got for i in c) == list(range(len(lengths)))
    for c in got:
        assert len(c) <= 3 and (len(c) == 1 or len(c) * max(lengths[i] for i in c) <= 20)
    assert got[-1] == [5]                                  # longer than the limit: alone
    assert [lengths[c[0]] for c in got] == sorted(lengths[c[0]] for c in got)


def test_occurrences_count_each_id_in_its_row():
    torch.manual_seed(0)
    for shape in [(3, 40), (1, 1), (2, 7)]:
        ids = torch.randint(0, 5, shape)
        want = torch.tensor([[row.count(i) for i in row] for row in ids.tolist()])
        assert torch.equal(occurrences(ids), want), shape


@pytest.mark.parametrize("counts", ["log", "all", "once"])
def test_one_long_text_does_not_pad_its_batch_in_the_bag(counts, monkeypatch):
    """A batch of short texts and one 400 times longer: the bag scores the long text in a group
    of its own (padding its batch to its length took 2.6 GB for one 20,000-word review), with
    every score and gradient as each text alone gives them."""
    torch.manual_seed(0)
    c = ClassifierConfig(vocab_size=30, num_classes=3, ngrams=2, bag="on", bag_buckets=17,
                         bag_counts=counts, char_grams=3 if counts == "log" else 0, hidden=4,
                         embed=4)
    bag = SequenceClassifier(c).bag
    with torch.no_grad():
        for table in (bag.tokens, bag.grams):
            table.weight[1:] = torch.randn_like(table.weight[1:])
    N = 1 + char_gram_slots(c.char_grams)
    texts = [(torch.randint(1, 30, (n,)).tolist(), torch.randint(0, 18, (n, N), dtype=torch.int32))
             for n in [4, 2000, 1, 5, 3, 2]]
    x, lengths, grams = batch(texts)
    padded = []
    scores = type(bag)._scores
    monkeypatch.setattr(type(bag), "_scores", lambda self, x, *a: padded.append(x.numel())
                        or scores(self, x, *a))
    got = bag(x, lengths, grams)
    assert max(padded) <= 2 * 2000 and sum(padded) <= 2 * int(lengths.sum())
    got.square().sum().backward()
    grads = [t.weight.grad.clone() for t in (bag.tokens, bag.grams)]
    bag.zero_grad()
    alone = torch.cat([bag(*batch([t])) for t in texts])
    alone.square().sum().backward()
    torch.testing.assert_close(got, alone)
    for g, t in zip(grads, (bag.tokens, bag.grams)):
        torch.testing.assert_close(g, t.weight.grad)


@pytest.mark.parametrize("counts", ["log", "all", "once"])
def test_the_bag_scores_a_text_as_the_linear_fit_sees_it(counts):
    """The bag's forward pass is X U over bag_fit's features of the same texts: padding, steps
    past a text's length and empty n-gram slots score nothing; under "log" a row has unit norm."""
    from rnnkit.models import bag_fit
    torch.manual_seed(0)
    c = ClassifierConfig(vocab_size=9, num_classes=3, ngrams=3, bag="on", bag_buckets=11,
                         bag_counts=counts, hidden=4, embed=4)
    model = SequenceClassifier(c)
    with torch.no_grad():   # row 0 is padding and stays zero, as training keeps it
        for table in (model.bag.tokens, model.bag.grams):
            table.weight[1:] = torch.randn_like(table.weight[1:])
    encoded = [([3, 3, 3, 5, 1], [[0, 4], [2, 0], [2, 2], [7, 2], [1, 1]]),
               ([2, 8], [[0, 0], [9, 0]]), ([4], [[0, 0]])]
    x, lengths, grams = batch(encoded)
    r, col, v = bag_fit.features(encoded, 9, counts)
    X = torch.zeros(3, 9 + 12, dtype=torch.float64).index_put_((r, col), v, accumulate=True)
    U = torch.cat([model.bag.tokens.weight, model.bag.grams.weight]).double().detach()
    torch.testing.assert_close(model.bag(x, lengths, grams).double(), X @ U)
    if counts == "log":
        torch.testing.assert_close(X.norm(dim=1), torch.ones(3, dtype=torch.float64))
        assert X[0, 3] / X[0, 5] == pytest.approx(1 + torch.log(torch.tensor(3.0)).item())


def test_bag_is_on_for_characters_and_words_and_checked(tmp_path, capsys):
    assert zh_task(tmp_path).model.config.bag == "on"
    assert zh_task(tmp_path, tokens="word").model.bag is not None
    assert zh_task(tmp_path, tokens="word", bag="off").model.bag is None
    with pytest.raises(ValueError, match="bag must be one of"):
        ClassifierConfig(bag="yes")
    assert main(["train", "classify", "--data", str(write_zh(tmp_path)), "--bag", "maybe",
                 "--out", str(tmp_path / "r")]) == 2
    assert "rnnkit: error: ClassifierConfig.bag must be one of" in capsys.readouterr().err


def test_the_bag_hashes_into_its_own_finer_buckets(tmp_path):
    d = ClassifyData(data=str(write_zh(tmp_path)), batch=8, min_count=1)
    task = build_classify_task(d, ClassifierConfig(hidden=8, embed=8, buckets=64, bag_buckets=640),
                               log=lambda *a: None)
    assert task.encoder.buckets == 640 and task.model.bag.grams.num_embeddings == 641
    assert task.model.grams.num_embeddings == 65
    grams = torch.tensor([[0, 1, 64, 65, 640]])
    assert embedding_rows(grams, task.model.config).tolist() == [[0, 1, 64, 1, 64]]
    assert gram_space(ClassifierConfig(bag="off", buckets=64)) == 64      # no bag: as before
    x, lengths, g = batch([task.encoder("很好，很喜欢")])
    assert int(g.max()) <= 640 and task.model(x, lengths, g).shape == (1, 2)


def test_token_embeddings_start_at_variance_one_over_their_size():
    torch.manual_seed(0)
    cfg = ClassifierConfig(vocab_size=4000, num_classes=2, hidden=8, embed=64, ngrams=2,
                           buckets=4000)
    model = SequenceClassifier(cfg)
    rows = model.embed.weight.detach()[1:]
    assert abs(float(rows.std()) - 64 ** -0.5) < 0.01        # N(0, 1/C), not torch's N(0, 1)
    assert not model.embed.weight[0].any()                     # padding embeds as nothing
    grams = model.grams.weight.detach()
    assert abs(float(grams[1:].std()) - 1.0) < 0.05           # n-grams: torch's N(0, 1)
    assert not model.grams.weight[0].any()


def test_a_label_missing_from_the_training_part_is_warned_about(tmp_path, capsys):
    path = tmp_path / "tiny.tsv"
    path.write_text("pos\tgood film\nneg\tbad film\npos\tnice\nneg\tawful\n", encoding="utf-8")
    task = build_classify_task(ClassifyData(data=str(path)), ClassifierConfig(hidden=4, embed=4),
                               log=lambda *a: None)
    missing = sorted(set(task.labels) - {task.labels[i] for i in task.train[1].tolist()})
    assert missing == ["pos"]                     # this split trains on the two "neg" texts
    assert (f"rnnkit: warning: {path}: the training part holds no example of label(s) pos"
            in capsys.readouterr().err)
    build_classify_task(ClassifyData(data=str(write_zh(tmp_path))), ClassifierConfig(hidden=4),
                        log=lambda *a: None)
    assert "warning" not in capsys.readouterr().err


def test_the_bag_holds_at_most_its_budget_of_scores_however_many_classes(tmp_path):
    """A million buckets a class: 200 classes made a 2.4 GB checkpoint from 600 short lines.
    Many classes now get fewer buckets; two classes keep the million."""
    from rnnkit.models.classifier import BAG_PARAMS
    lines = [f"c{k % 200}\tword{k % 7} other{k % 5} text {k}" for k in range(600)]
    (tmp_path / "many.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    said = []
    task = build_classify_task(ClassifyData(data=str(tmp_path / "many.tsv")),
                               ClassifierConfig(hidden=4, embed=4), log=said.append)
    rows = task.model.bag.grams.num_embeddings - 1
    assert rows == BAG_PARAMS // 200 and rows * 200 <= BAG_PARAMS
    assert any(f"the bag: {rows:,} buckets, not 1,000,000" in s for s in said)
    lines = [f"{'pos' if k % 2 else 'neg'}\tword{k % 7} text {k}" for k in range(40)]
    (tmp_path / "two.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    task = build_classify_task(ClassifyData(data=str(tmp_path / "two.tsv")),
                               ClassifierConfig(hidden=4, embed=4), log=lambda *a: None)
    assert task.model.bag.grams.num_embeddings - 1 == 1_000_000


def test_macro_f1_counts_the_labels_predicted_as_scikit_learn_does():
    """Over the gold labels alone, a file whose gold labels are all 'a' scored a macro-F1 above
    its accuracy (0.727 against 0.571 in the case found); scikit-learn counts the predicted
    labels too, with F1 0 where never true."""
    from rnnkit.tasks.metrics import accuracy, macro_f1
    gold = ["a"] * 7
    pred = ["a", "a", "a", "a", "b", "c", "b"]
    # a: precision 1, recall 4/7, F1 8/11; b and c never true: F1 0 (f1_score's 0.2424)
    assert macro_f1(gold, pred) == pytest.approx((8 / 11) / 3)
    assert macro_f1(gold, pred) < accuracy(gold, pred)
    assert macro_f1(gold, pred, labels={"a"}) == pytest.approx(2 * 4 / 7 / (1 + 4 / 7))
