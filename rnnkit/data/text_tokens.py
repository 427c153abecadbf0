"""Tokens of a text for the classifier: words or characters, which one a training set wants
(scripts written without spaces between words, Chinese, Japanese, Thai, Lao, Khmer, Myanmar,
..., are read as characters: a ``\\w+`` word there is a whole clause; :func:`detect_tokens`),
and the hashed word and character n-grams the encoder and the bag read.
"""
import functools
import itertools
import re
import unicodedata
import zlib

_TOKEN = re.compile(r"\w+(?:'\w+)?|[^\w\s]")
WORD_FORM = 3   # the word tokens of runs made now (a checkpoint without "word_form": 1)


def words(text):
    """Lower-cased word and punctuation tokens, NFKC-normalised as :func:`chars` reads
    characters, a word's combining marks inside it (Devanagari's vowel signs, Arabic's and
    Hebrew's vowel points, a decomposed accent): ``"It's GOOD!"`` -> ``["it's", "good", "!"]``,
    ``"फिल्म"`` -> ``["फिल्म"]``; a character of a script written without spaces
    (:data:`UNSEGMENTED`), with its marks, is a token of its own, as BERT's tokenizer reads
    Chinese: ``"这个new feature有点terrible"`` -> ``["这", "个", "new", "feature", "有", "点",
    "terrible"]`` (word form 2 made ``这个new`` and ``feature有点terrible`` words)."""
    text = unicodedata.normalize("NFKC", text).lower()   # (㍿ is 株式会社 only then)
    tokens = _word_pattern().findall(text)
    if not UNSEGMENTED_CHAR.search(text):
        return tokens
    out = []
    for t in tokens:   # a run of such characters, or one glued to letters: its pieces
        out += _apart().findall(t) if UNSEGMENTED_CHAR.search(t) else (t,)
    return out


def words_v2(text):
    """The word tokens of runs made at word form 2: :func:`words` with a run of characters of
    scripts written without spaces one word, glued to the letters beside it."""
    return _word_pattern().findall(unicodedata.normalize("NFKC", text).lower())


def words_v1(text):
    """The word tokens of runs made before :data:`WORD_FORM` 2 (their vocabularies hold them):
    no normalisation, and a combining mark (which ``\\w`` does not match) a token of its own."""
    return _TOKEN.findall(text.lower())


@functools.cache
def combining_marks():
    """Every combining mark (Unicode category M), as one string for a regex class: the vowel
    signs, vowel points and accents that ``\\w`` does not match but that belong to a word."""
    return "".join(chr(c) for c in itertools.chain(range(0x300, 0x20000),
                                                   range(0xE0100, 0xE01F0))
                   if unicodedata.category(chr(c)).startswith("M"))


@functools.cache
def _word_pattern():
    """:func:`words`' pattern: ``\\w`` and the combining marks in words."""
    marks = combining_marks()
    word = f"[\\w{marks}]+"
    return re.compile(f"{word}(?:'{word})?|[^\\w\\s{marks}]")


@functools.cache
def _apart():
    """A word's pieces: a character of a script written without spaces with the combining
    marks after it, or a run of other characters."""
    unseg = UNSEGMENTED_CHAR.pattern
    return re.compile(f"{unseg}[{combining_marks()}]*|(?:(?!{unseg}).)+", re.S)


def word_splitter(tokens, word_form=WORD_FORM):
    """The tokenizer of ``tokens`` ("word" or "char") for a run of ``word_form``."""
    if tokens == "word" and word_form < WORD_FORM:
        return words_v1 if word_form < 2 else words_v2
    return TOKENIZERS[tokens]


def chars(text):
    """Every character but whitespace, NFKC-normalised (full-width forms to ASCII) and lower-cased:
    ``"很好，ＯＫ!"`` -> ``["很", "好", ",", "o", "k", "!"]``."""
    return [c for c in unicodedata.normalize("NFKC", text).lower() if not c.isspace()]


TOKENIZERS = {"word": words, "char": chars}
TOKEN_CHOICES = ("auto", "char", "word")

# Code-point ranges of scripts written without spaces between words.
UNSEGMENTED = (
    (0x0E00, 0x0EFF),     # Thai, Lao
    (0x0F00, 0x0FFF),     # Tibetan
    (0x1000, 0x109F),     # Myanmar
    (0x1780, 0x17FF),     # Khmer
    (0x1950, 0x1AAF),     # Tai Le, New Tai Lue, Khmer symbols, Buginese, Tai Tham
    (0x1B00, 0x1B7F),     # Balinese
    (0x2E80, 0x2FDF),     # CJK radicals
    (0x3040, 0x30FF),     # Hiragana, Katakana
    (0x31F0, 0x31FF),     # Katakana extensions
    (0x3400, 0x4DBF),     # Han, extension A
    (0x4E00, 0x9FFF),     # Han
    (0xA000, 0xA4CF),     # Yi syllables and radicals
    (0xA980, 0xAA7F),     # Javanese, Myanmar extensions, Cham
    (0xF900, 0xFAFF),     # Han compatibility
    (0xFF66, 0xFF9F),     # half-width Katakana
    (0x20000, 0x3134F),   # Han, extensions B-G
)
UNSEGMENTED_CHAR = re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in UNSEGMENTED) + "]")
_LETTER = re.compile(r"[^\W\d_]")


def unsegmented(text, share=0.3):
    """Whether at least ``share`` of the text's letters belong to scripts written without spaces."""
    n_unseg = len(UNSEGMENTED_CHAR.findall(text))
    n_letters = len(_LETTER.findall(text))
    return n_unseg > 0 and n_unseg >= share * max(n_letters, n_unseg)


def detect_tokens(texts, share=0.1, sample=5000):
    """``"char"`` when at least ``share`` of the texts (the first ``sample``) are mostly in a script
    written without spaces, else ``"word"``. Characters serve a mixed corpus better than words:
    a Chinese clause is one \\w+ word, an English word is still its characters."""
    texts = list(texts)[:sample]
    hits = sum(unsegmented(t) for t in texts)
    return "char" if texts and hits >= share * len(texts) else "word"


def resolve_tokens(kind, texts):
    """``kind`` as given (char, word), or, for ``auto``, the choice :func:`detect_tokens` makes."""
    if kind not in TOKEN_CHOICES:
        raise ValueError(f"tokens must be one of {list(TOKEN_CHOICES)}, got {kind!r}")
    return detect_tokens(texts) if kind == "auto" else kind


def ngram_buckets(tokens, n, buckets):
    """Per token, the hash buckets (1..buckets) of the 2..n tokens ending at it, with ``<s>``
    before the first: ``[[b(<s> t0), ...], [b(t0 t1), ...], ...]`` (len(tokens) lists of n-1).
    crc32 hashes the same in every process (Python's hash() is salted)."""
    padded = ["<s>"] * (n - 1) + list(tokens)
    return [[zlib.crc32("\x1f".join(padded[t + n - 1 - k:t + n]).encode()) % buckets + 1
             for k in range(1, n)] for t in range(len(tokens))]


CHAR_WORD = 12   # the longest word whose every character n-gram has a slot


def char_gram_slots(n):
    """Slots per word for its character 2..n-grams: every one of a word of CHAR_WORD letters."""
    return sum(CHAR_WORD + 3 - k for k in range(2, n + 1)) if n > 1 else 0


def char_gram_buckets(word, n, buckets):
    """The hash buckets (1..buckets) of the character 2..n-grams of `` word `` (a space on
    either side, as scikit-learn's ``char_wb`` analyser reads it), shorter ones first, cut to
    char_gram_slots(n). Hashed apart from the word n-grams (a \x1e mark before each)."""
    padded = f" {word} "
    grams = [padded[i:i + k] for k in range(2, n + 1) for i in range(len(padded) - k + 1)]
    return [zlib.crc32(("\x1e" + g).encode()) % buckets + 1 for g in grams[:char_gram_slots(n)]]
