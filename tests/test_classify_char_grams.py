"""Words' character n-grams in the classifier's bag: the hashed grams of `` word ``, the
encoder's slots, the bag scoring a text as the linear fit sees it (words and characters scaled
to unit length apart), the recurrent part never reading them, and the choice by token kind."""
import pytest
import torch

from rnnkit.cli.main import main
from rnnkit.config import ConfigError
from rnnkit.data.text_tokens import char_gram_buckets, char_gram_slots
from rnnkit.models import bag_fit
from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
from rnnkit.tasks.classify import ClassifyData, batch, build_classify_task


def write_en(tmp_path):
    path = tmp_path / "en.tsv"
    rows = [("pos", "a lovely, lovely film"), ("neg", "dull and tiresome"), ("pos", "loved it"),
            ("neg", "boring boring"), ("pos", "wonderful acting"), ("neg", "awful plot")] * 6
    path.write_text("".join(f"{l}\t{t}\n" for l, t in rows), encoding="utf-8")
    return path


def test_the_grams_of_a_word_with_a_space_either_side():
    # " ab ": 2-grams " a" "ab" "b ", 3-grams " ab" "ab ", the 4-gram " ab "; no 5-gram
    grams = char_gram_buckets("ab", 5, 1000)
    assert len(grams) == 6 and all(1 <= g <= 1000 for g in grams)
    assert grams == char_gram_buckets("ab", 5, 1000)                  # crc32: every process
    assert char_gram_buckets("ab", 2, 1000) == grams[:3]
    assert char_gram_slots(5) == 13 + 12 + 11 + 10 and char_gram_slots(0) == 0
    assert len(char_gram_buckets("x" * 40, 5, 1000)) == char_gram_slots(5)   # cut, shortest first


def test_words_get_character_grams_in_the_bag_and_characters_do_not(tmp_path, capsys):
    d = ClassifyData(data=str(write_en(tmp_path)), batch=4, min_count=1)
    task = build_classify_task(d, ClassifierConfig(hidden=8, embed=8), log=lambda *a: None)
    assert task.model.config.char_grams == 5 and task.model.bag.word_slots == 1
    ids, grams = task.encoder("lovely film")
    assert grams.shape == (2, 1 + char_gram_slots(5))                 # one tensor a text
    assert grams[1][1:1 + 14].tolist() == char_gram_buckets("film", 5, task.encoder.buckets)
    assert grams[1][1 + 14:].tolist() == [0] * (char_gram_slots(5) - 14)   # " film ": 5+4+3+2
    off = build_classify_task(d, ClassifierConfig(hidden=8, embed=8, char_grams=0),
                              log=lambda *a: None)
    assert off.model.bag.word_slots is None and len(off.encoder("lovely film")[1][0]) == 1
    with pytest.raises(ConfigError, match="needs word tokens and --bag on, got word tokens and "
                                          "--bag off"):
        build_classify_task(d, ClassifierConfig(char_grams=5, bag="off"), log=lambda *a: None)
    assert main(["train", "classify", "--data", str(write_en(tmp_path)), "--tokens", "char",
                 "--char-grams", "4", "--out", str(tmp_path / "r")]) == 2
    assert "needs word tokens and --bag on, got char tokens" in capsys.readouterr().err
    assert main(["train", "classify", "--data", str(write_en(tmp_path)), "--char-grams", "1",
                 "--out", str(tmp_path / "r")]) == 2
    assert "char_grams must be -1 or 0 or in [2, 8], got 1" in capsys.readouterr().err


def test_the_bag_scores_words_and_characters_as_the_linear_fit_sees_them():
    """Two blocks, each of unit length: the tokens and word n-grams, and the characters."""
    torch.manual_seed(0)
    c = ClassifierConfig(vocab_size=9, num_classes=3, ngrams=2, char_grams=2, bag="on",
                         bag_buckets=11, hidden=4, embed=4)
    model = SequenceClassifier(c)
    with torch.no_grad():
        for table in (model.bag.tokens, model.bag.grams):
            table.weight[1:] = torch.randn_like(table.weight[1:])
    pad = [0] * (char_gram_slots(2) - 3)
    encoded = [([3, 3, 5], [[0, 4, 6, 6] + pad, [2, 8, 9, 0] + pad, [2, 8, 0, 0] + pad]),
               ([2], [[7, 0, 0, 0] + pad])]                           # no character gram
    x, lengths, grams = batch(encoded)
    r, col, v = bag_fit.features(encoded, 9, "log", word_slots=1)
    X = torch.zeros(2, 9 + 12, dtype=torch.float64).index_put_((r, col), v, accumulate=True)
    U = torch.cat([model.bag.tokens.weight, model.bag.grams.weight]).double().detach()
    torch.testing.assert_close(model.bag(x, lengths, grams).double(), X @ U)
    words, chars = X.clone(), X.clone()
    words[0, [9 + 4, 9 + 6, 9 + 8, 9 + 9]] = 0    # the characters' columns (slots past the first)
    chars[0] -= words[0]
    assert words[0].norm().item() == pytest.approx(1) and chars[0].norm().item() == pytest.approx(1)
    assert X[1].norm().item() == pytest.approx(1)                     # one block: unit length


@pytest.mark.parametrize("counts", ["log", "all", "once"])
def test_the_features_are_the_same_counted_a_text_at_a_time(monkeypatch, counts):
    """features() counts chunks of texts with tensors; one text a chunk gives the same X, and
    lists or (T, N) tensors of grams read alike."""
    torch.manual_seed(0)
    encoded = [([1 + int(t) for t in torch.randint(8, (n,))], torch.randint(0, 12, (n, 4)))
               for n in (5, 1, 0, 9, 3)]                                 # 0: an empty text
    full = bag_fit.features(encoded, 9, counts, word_slots=2)
    monkeypatch.setattr(bag_fit, "CHUNK", 1)
    one = bag_fit.features([(ids, g.tolist()) for ids, g in encoded], 9, counts, word_slots=2)
    for a, b in zip(full, one):
        torch.testing.assert_close(a, b)
    X = torch.zeros(5, 9 + 12, dtype=torch.float64).index_put_(full[:2], full[2], accumulate=True)
    assert (X > 0).sum(1).tolist() == [len({*ids} | {9 + g for g in grams.flatten().tolist() if g})
                                       for ids, grams in encoded]     # one entry a feature


def test_the_recurrent_part_never_reads_the_characters():
    torch.manual_seed(0)
    c = ClassifierConfig(vocab_size=9, num_classes=2, ngrams=2, char_grams=2, bag="on",
                         bag_buckets=11, hidden=4, embed=4, dropout=0.0)
    model = SequenceClassifier(c).eval()
    x, lengths = torch.tensor([[3, 5]]), torch.tensor([2])
    grams = torch.zeros(1, 2, 1 + char_gram_slots(2), dtype=torch.long)
    grams[0, :, 0] = torch.tensor([4, 7])
    before = model(x, lengths, grams)
    grams[0, :, 1:4] = 5                      # characters whose bag rows are zero: no change
    torch.testing.assert_close(model(x, lengths, grams), before)
