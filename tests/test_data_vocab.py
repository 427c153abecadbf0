"""Vocabularies: round trips for characters and words, English and Chinese, and plain storage."""
import pytest
import torch

from rnnkit.data import Vocab, tokenize

from lm_fixtures import CHINESE, ENGLISH


@pytest.mark.parametrize("text", [ENGLISH, CHINESE, "naïve café — ünïcödé ✓\n"])
@pytest.mark.parametrize("kind", ["char", "word"])
def test_round_trip(text, kind):
    vocab = Vocab.build(text, kind)
    assert vocab.decode(vocab.encode(text)) == text


def test_chinese_chars_are_single_tokens():
    vocab = Vocab.build(CHINESE)
    assert len(vocab.encode("床前明月光")) == 5
    assert "月" in vocab.stoi


def test_word_tokens_keep_whitespace_and_punctuation():
    assert tokenize("Hello,  world!\n", "word") == ["Hello", ",", "  ", "world", "!", "\n"]


def test_most_frequent_first_and_max_size_adds_unk():
    vocab = Vocab.build("a a a b b c", "word", max_size=3)
    assert vocab.itos[0] == "<unk>" and vocab.itos[1:] == [" ", "a"]
    assert vocab.decode(vocab.encode("a c")) == "a <unk>"


def test_unknown_token_without_unk_names_it():
    vocab = Vocab.build("abc")
    with pytest.raises(KeyError, match="'z'"):
        vocab.encode("abz")


def test_to_dict_is_plain_and_round_trips():
    vocab = Vocab.build(CHINESE)
    d = vocab.to_dict()
    assert set(d) == {"kind", "tokens", "form"} and all(isinstance(t, str) for t in d["tokens"])
    assert Vocab.from_dict(d) == vocab


@pytest.mark.parametrize("text, word", [
    ("फिल्म अच्छी थी", "फिल्म"),                      # Devanagari vowel signs and virama
    ("كَتَبَ الوَلَدُ", "كَتَبَ"),                       # Arabic harakat
    ("cafe\u0301 noir", "cafe\u0301"),               # a decomposed accent
])
def test_word_tokens_keep_combining_marks(text, word):
    tokens = tokenize(text, "word")
    assert tokens[0] == word and "".join(tokens) == text
    vocab = Vocab.build(text, "word")
    assert vocab.decode(vocab.encode(text)) == text and word in vocab.stoi


def test_stored_vocabulary_reads_text_as_its_run_did():
    """A vocabulary stored before words kept their marks (no "form") splits them as it did,
    so its run's text has no unknown token and resumes on the same ids."""
    text = "फिल्म अच्छी थी"
    old = {"kind": "word", "tokens": sorted(set(tokenize(text, "word", form=1)))}
    assert "ि" in old["tokens"]          # the vowel sign was a token of its own
    vocab = Vocab.from_dict(old)
    assert vocab.form == 1 and vocab.decode(vocab.encode(text)) == text
    assert Vocab.from_dict(vocab.to_dict()) == vocab
    assert Vocab.build(text, "word") != vocab
    with pytest.raises(ValueError, match="form must be 1 to 2, got 3"):
        Vocab.from_dict({**old, "form": 3})
    assert Vocab.from_dict({"kind": "char", "tokens": list("ab")}) == Vocab.build("ab")


def test_unknown_tokenizer_rejected():
    with pytest.raises(ValueError, match="tokens must be one of"):
        Vocab.build("abc", "bpe")


def test_ptb_stream_decoded_piece_by_piece_equals_the_whole():
    """rnnkit sample decodes one token at a time: each word after a word starts with its space."""
    import torch
    v = Vocab.build("the cat sat\na dog ran\n", kind="ptb")
    ids = v.encode("the cat sat\na dog ran\n")
    pieces = [v.decode(ids[:1])] + [v.decode([i], after=p) for p, i in zip(ids, ids[1:])]
    assert "".join(pieces) == v.decode(ids) == "the cat sat\na dog ran\n"
    assert v.decode(torch.tensor(ids)) == v.decode(ids)


def test_a_ptb_prime_leaves_its_last_line_open(tmp_path, capsys):
    """`rnnkit sample --prime "the cat"` goes on with the cat's next word: no <eos> after the
    prime unless it ends with a line break, and the first word comes with its space."""
    v = Vocab.build("the cat sat\na dog ran\n", kind="ptb")
    eos = v.stoi["<eos>"]
    assert v.encode("the cat", prefix=True) == [v.stoi["the"], v.stoi["cat"]]
    assert v.encode("the cat\n", prefix=True)[-1] == eos
    assert v.encode("\n", prefix=True) == [eos] and v.encode("the cat")[-1] == eos
    from rnnkit.cli.sample import generate
    from rnnkit.models.language_model import LanguageModel, LMConfig
    model = LanguageModel(LMConfig(vocab_size=len(v), cell="lstm", layers=1, hidden=8, embed=4))
    with torch.no_grad():
        model.head.bias.fill_(-50.0)
        model.head.bias[v.stoi["sat"]] = 50.0                                 # always "sat"
    assert "".join(generate(model, v, "the cat", 2, temperature=0)) == "the cat sat sat"


def test_words_end_lines_only_where_a_files_lines_end():
    """The <eos> convention of torch's word_language_model (`for line in f`): a form feed, a
    vertical tab or a file separator inside a line is whitespace, not a line end."""
    from rnnkit.data.vocab import line_words
    assert line_words("the cat\fsat\n") == ["the", "cat", "sat", "<eos>"]
    assert line_words("x\x1cy\u2028z\r\nw\rv") == ["x", "y", "z", "<eos>", "w", "<eos>", "v",
                                                   "<eos>"]
    assert line_words("a\n\n") == ["a", "<eos>", "<eos>"] and line_words("") == []


def test_perplexity_is_exp_of_the_loss_up_to_floats_range():
    import math
    from rnnkit.tasks.lm import perplexity
    assert perplexity(113.0) == pytest.approx(math.exp(113.0))     # was capped at exp(50)
    assert perplexity(800.0) == math.inf


def test_a_missing_token_names_the_vocabulary_as_tokens_does():
    """A --tokens word run's prime error said '13 ptb tokens', a name no flag uses."""
    with pytest.raises(KeyError, match=r"not in the vocabulary \(\d+ word tokens\)"):
        Vocab.build("the cat sat\n", kind="ptb").encode("the unicorn")


def test_a_gzip_files_encoding_fix_decompresses_first(tmp_path):
    """iconv run on the compressed bytes made garbage: the fix for a .gz reads it with zcat."""
    import gzip
    from rnnkit.data import DataError
    from rnnkit.data.text import read_text
    latin = tmp_path / "latin.txt.gz"
    latin.write_bytes(gzip.compress(b"hello\n\xe9t\xe9\n"))
    with pytest.raises(DataError, match=r"latin.txt.gz:2: not UTF-8 .* zcat .*latin.txt.gz \| "
                                        r"iconv -f LATIN1 -t UTF-8 \| gzip > utf8-copy.gz"):
        read_text(latin)
    wide = tmp_path / "wide.gz"
    wide.write_bytes(gzip.compress("hello world\n".encode("utf-16")))
    with pytest.raises(DataError, match=r"UTF-16 text once decompressed .* zcat wide.gz \| iconv"):
        read_text(wide)


def test_a_nan_loss_has_a_nan_perplexity_and_small_figures_show():
    """A NaN loss read 'ppl inf'; a series near 1e-12 showed its test errors as 0.0."""
    import math
    from rnnkit.cli.task_runs import held_out_figures
    from rnnkit.tasks.lm import perplexity
    assert math.isnan(perplexity(math.nan))
    assert held_out_figures(None, {"test_mae": 1.39e-14, "test_x": 0.123456}) == \
        "held-out test: {'test_mae': 1.39e-14, 'test_x': 0.1235}"


@pytest.mark.parametrize("kind", ["char", "word", "ptb"])
def test_a_text_in_the_other_unicode_form_is_read_in_the_vocabularys(kind):
    """A prime typed in NFD on an NFC model: "2 token(s) not in the vocabulary: ['́', '̂']" for
    "Tôi rất", which looks the same as the training text."""
    import unicodedata
    text = "Tôi rất thích. Xin chào! " * 3
    vocab = Vocab.build(text, kind)
    nfd = unicodedata.normalize("NFD", "Tôi rất")
    assert vocab.decode(vocab.encode(nfd, prefix=True)) == "Tôi rất"
    nfd_vocab = Vocab.build(unicodedata.normalize("NFD", text), kind)
    assert nfd_vocab.decode(nfd_vocab.encode("Tôi rất", prefix=True)) == nfd   # the other way
    with pytest.raises(KeyError, match=r"not in the vocabulary"):
        vocab.encode("Tôi rất zq")                                 # unknown in either form


def test_tokens_the_vocabulary_holds_are_never_read_in_another_form():
    """The first form switched the whole text to NFC when that left fewer tokens unknown: a
    capped vocabulary holding both forms of café read its NFD entry as the NFC one."""
    import unicodedata
    nfd = lambda s: unicodedata.normalize("NFD", s)
    text = "le café est naïve . " * 50 + nfd("le café ") * 20 + nfd("naïve ") + "zzz qqq\n"
    vocab = Vocab.build(text, "word", max_size=8)
    assert {"café", nfd("café")} <= set(vocab.itos) and nfd("naïve") not in vocab.itos
    own = [vocab.stoi.get(t, vocab.unk) for t in vocab.tokenize(text)]
    got = vocab.encode(text)
    differ = [vocab.tokenize(text)[i] for i, (a, b) in enumerate(zip(own, got)) if a != b]
    assert differ == [nfd("naïve")] and vocab.itos[got[own.index(vocab.unk)]] == "naïve"


@pytest.mark.parametrize("kind", ["char", "word", "ptb"])
def test_runs_of_unknown_tokens_are_read_in_the_other_form_together(kind):
    """Hangul in NFD is jamo, each unknown and none a mark (안: three), and ≠ in NFD is '=' and a
    mark: read one token at a time they stayed unknown (or came back as no token at all)."""
    import unicodedata
    text = "안녕 하세요 a ≠ b Å é\n" * 3
    for form, other in (("NFC", "NFD"), ("NFD", "NFC")):
        vocab = Vocab.build(unicodedata.normalize(form, text), kind)
        want = vocab.encode(unicodedata.normalize(form, text))
        assert vocab.encode(unicodedata.normalize(other, text)) == want


def test_a_tensor_of_ids_is_what_encode_gives(monkeypatch):
    """The LM's corpus is encoded by a table of characters, a slice at a time (a 300 MB corpus
    peaked at 18 times its size as lists of characters and ids): the ids are encode's, and a
    character the vocabulary lacks is read as encode reads it (<unk>, or the KeyError)."""
    import random
    import rnnkit.data.vocab as vocab_module
    rng = random.Random(0)
    pool = "abc é\n中文😀\u0301\ud800" + "".join(chr(rng.randrange(32, 0x2FFFF)) for _ in range(40))
    for trial in range(60):
        monkeypatch.setattr(vocab_module, "SLICE", rng.choice([1, 3, 7, 1 << 24]))
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 120)))
        for size in (None, 5, 20):
            v = Vocab.build("".join(rng.choice(pool) for _ in range(300)), "char", size)
            try:
                want = torch.tensor(v.encode(text), dtype=torch.long)
            except KeyError:
                with pytest.raises(KeyError):
                    v.encode_tensor(text)
                continue
            got = v.encode_tensor(text)
            assert got.dtype == torch.long and torch.equal(got, want)
    word = Vocab.build("the cat sat", "word")
    assert torch.equal(word.encode_tensor("the cat"), torch.tensor(word.encode("the cat")))
