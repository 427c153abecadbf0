"""The tagger's inputs: words -> word ids, each word's character ids, and the hash buckets of the
n-grams around each token (the embedding's and the linear term's, :mod:`rnnkit.models.tagger`).
Shapes: B batch, T words, W characters a word, G n-gram slots a token.
"""
import zlib

import torch

from rnnkit.tasks.common import encode, pad


def window_grams(tokens, n, buckets):
    """Per token, the hash buckets (1..buckets) of the 2..n tokens ending at it, then of the 2..n
    starting at it (``<s>`` / ``</s>`` beyond the ends): 2·(n-1) a token. The two sides hash
    apart, so "ab" ending at b and "ab" starting at a have their own rows. crc32 hashes the same
    in every process (Python's hash() is salted)."""
    k = n - 1
    padded = ["<s>"] * k + list(tokens) + ["</s>"] * k
    key = lambda side, gram: zlib.crc32((side + "\x1f".join(gram)).encode()) % buckets + 1
    return [[key("<", padded[t + k - j:t + k + 1]) for j in range(1, n)]
            + [key(">", padded[t + k:t + k + j + 1]) for j in range(1, n)]
            for t in range(len(tokens))]


def window_features(tokens, window, n, buckets):
    """Per token, the hash buckets (1..buckets) of the 1..n-grams within ``window`` tokens either
    side of it (``<s>`` / ``</s>`` beyond the ends), each keyed by its offset and length: the
    templates of a linear tagger (:func:`rnnkit.models.tagger.window_slots` a token)."""
    padded = ["<s>"] * window + list(tokens) + ["</s>"] * window
    spans = [(a, k) for k in range(1, n + 1) for a in range(-window, window + 2 - k)]
    keys = [f"{a}:{k}\x1d" for a, k in spans]
    return [[zlib.crc32((key + "\x1f".join(padded[t + window + a:t + window + a + k])).encode())
             % buckets + 1 for key, (a, k) in zip(keys, spans)] for t in range(len(tokens))]


def word_ends(word, n):
    """A word of more than n characters as its first n - n//2 and last n//2 (where English
    keeps its suffixes: "international", 8 -> "inteonal")."""
    return word if len(word) <= n else word[:n - n // 2] + word[len(word) - n // 2:]


def word_shape(word):
    """A word's spelling as character classes with runs collapsed, at most 5 ("International"
    -> "Xx", "U.S." -> "X.X.", "1961" -> "d", "well-known" -> "x-x")."""
    out = []
    for c in word:
        k = "d" if c.isdigit() else "X" if c.isupper() else "x" if c.isalpha() else c
        if not out or out[-1] != k:
            out.append(k)
    return "".join(out[:5])


def affix_features(tokens, n, buckets):
    """Per word, the hash buckets (1..buckets) of its first 1..min(n, 2) and last 1..n characters,
    its length (up to 5) and shape (:func:`word_shape`): the spelling templates of a linear
    word tagger, :func:`rnnkit.models.tagger.affix_slots` a word (none for n <= 0)."""
    if n <= 0:
        return [[] for _ in tokens]
    key = lambda name, text: zlib.crc32(f"{name}\x1d{text}".encode()) % buckets + 1
    return [[key(f"p{k}", w[:k]) for k in range(1, min(n, 2) + 1)]
            + [key(f"s{k}", w[-k:]) for k in range(1, n + 1)]
            + [key("len", min(len(w), 5)), key("shape", word_shape(w))] for w in tokens]


def distinct_features(sentences, ngrams, window, affixes, most):
    """(distinct n-gram-embedding features, distinct linear-term features) of ``sentences`` (the
    training part), each None where its table is off (``most`` 0 or the features unused) or
    where the count reaches ``most`` rows at :data:`rnnkit.models.tagger.ROWS_A_FEATURE` a
    feature (then the whole table is wanted: large data stop counting early)."""
    from rnnkit.models.tagger import ROWS_A_FEATURE
    whole = 1 << 32                                           # crc32 itself: no collisions
    kinds = {}
    if ngrams > 1 and most[0]:
        kinds["grams"] = (set(), most[0], lambda s: window_grams(s, ngrams, whole))
    if window and most[1]:
        kinds["window"] = (set(), most[1], lambda s: window_features(
            s, window, max(ngrams, 2), whole) + affix_features(s, affixes, whole))
    for s in sentences:
        for kind, (seen, limit, features) in list(kinds.items()):
            seen.update(b for row in features(s) for b in row)
            if ROWS_A_FEATURE * len(seen) >= limit:
                del kinds[kind]                               # full: nothing to count
        if not kinds:
            break
    counted = {kind: len(seen) for kind, (seen, _, _) in kinds.items()}
    return counted.get("grams"), counted.get("window")


GRAM_CACHE = 100_000   # sentences whose n-gram buckets the encoder keeps


class Encoder:
    """Words -> the model's inputs: word ids, per word its character ids, and (ngrams > 1) the
    hash buckets of the n-grams around each word."""

    def __init__(self, vocab, chars, max_word_chars, ngrams=1, buckets=1, window=0,
                 window_buckets=1, word_chars="first", affixes=0):
        self.vocab, self.chars, self.W = vocab, chars, max_word_chars
        self.word_chars = word_chars   # a longer word's first W characters, or its two ends
        self.ngrams, self.buckets = ngrams, buckets
        self.window, self.window_buckets = window, window_buckets
        self.affixes = affixes if window else 0   # (a part of the linear term)
        self._char_ids = {}   # word -> its character ids padded to W, computed once
        self._gram_cache = {}  # sentence -> its n-gram buckets (sentence_grams)

    def char_ids(self, word):
        ids = self._char_ids.get(word)
        if ids is None:
            ids = encode(self.chars, word_ends(word, self.W) if self.word_chars == "ends"
                         else word[:self.W])
            ids = self._char_ids[word] = ids + [0] * (self.W - len(ids))
        return ids

    def __call__(self, sentences):
        """B word lists -> (x (B, T), lengths (B,), chars (B, T, W), char_lengths (B, T)[, grams
        (B, T, 2·(ngrams-1))])."""
        x, lengths = pad([encode(self.vocab, s) for s in sentences])
        B, T = x.shape
        chars = torch.zeros(B, T, self.W, dtype=torch.long)                   # (B, T, W)
        if self.chars is not None:
            for b, s in enumerate(sentences):
                chars[b, :len(s)] = torch.tensor([self.char_ids(w) for w in s])
        char_lengths = (chars > 0).sum(-1).clamp_min(1)                       # (B, T)
        if self.ngrams < 2 and not self.window:
            return x, lengths, chars, char_lengths
        rows = [self.sentence_grams(tuple(s)) for s in sentences]
        grams = torch.zeros(B, T, rows[0].shape[1], dtype=torch.long)        # (B, T, G)
        for b, r in enumerate(rows):
            grams[b, :len(r)] = r
        return x, lengths, chars, char_lengths, grams

    def sentence_grams(self, tokens):
        """:meth:`grams` of a sentence (a tuple) as an int32 (T, G) tensor, kept for the
        sentences seen last (hashing them again each epoch took a third of a training step)."""
        cache = self._gram_cache
        if tokens not in cache:
            if len(cache) >= GRAM_CACHE:
                del cache[next(iter(cache))]                 # the oldest first
            cache[tokens] = torch.tensor(self.grams(tokens), dtype=torch.int32)
        return cache[tokens]

    def grams(self, tokens):
        """Per token its n-gram buckets: the embedding's (window_grams), then the linear
        term's (window_features)."""
        emb = window_grams(tokens, self.ngrams, self.buckets) if self.ngrams > 1 else None
        lin = None
        if self.window:
            lin = window_features(tokens, self.window, max(self.ngrams, 2), self.window_buckets)
            if self.affixes > 0:
                lin = [a + b for a, b in zip(lin, affix_features(tokens, self.affixes,
                                                                 self.window_buckets))]
        if emb is None or lin is None:
            return emb or lin
        return [a + b for a, b in zip(emb, lin)]
