"""The classifier's inputs from text: token ids and the hash buckets of each position's n-grams
(:class:`TextEncoder`, one object for training and prediction), and batches of them."""
from itertools import chain

import torch

from rnnkit.data.text_tokens import (WORD_FORM, char_gram_buckets, char_gram_slots, ngram_buckets,
                                     word_splitter)
from rnnkit.tasks.common import encode, pad

MAX_LEN = {"word": 100, "char": 300}   # max_len=0: long enough for 90% of MR / the reviews
                                       # (the recurrent part's limit; the bag reads all)
BAG_LEN = 100_000   # ... up to here: a book-length line would pad its whole batch to its length


class TextEncoder:
    """Texts -> the classifier's inputs: token ids and, with ngrams > 1 or char_grams > 1, hash
    buckets per position: the token n-grams ending there (ngrams - 1), then the character
    2..char_grams-grams of the word there (char_gram_slots(char_grams), 0 where fewer).
    One object for training and prediction, so both read a text the same way. ``max_len``:
    the tokens kept from a text's start (0: all of them)."""

    def __init__(self, vocab, tokens, max_len, ngrams=1, buckets=1, char_grams=0,
                 word_form=WORD_FORM):
        self.vocab, self.tokens, self.max_len = vocab, tokens, max_len
        self.ngrams, self.buckets, self.char_grams = ngrams, buckets, char_grams
        self.word_form = word_form   # 1: a run made before words kept their combining marks
        self.split = word_splitter(tokens, word_form)
        self.slots = char_gram_slots(char_grams)
        self.words = {}   # word -> its character n-gram buckets, padded to slots

    def word_grams(self, word):
        if word not in self.words:
            g = char_gram_buckets(word, self.char_grams, self.buckets)
            self.words[word] = g + [0] * (self.slots - len(g))
        return self.words[word]

    def __call__(self, text):
        """One text -> (ids, n-gram buckets per position or None)."""
        toks = self.split(text)[:self.max_len or None]
        grams = ngram_buckets(toks, self.ngrams, self.buckets) if self.ngrams > 1 else None
        if self.slots:
            grams = [(g if grams else []) + self.word_grams(w)
                     for g, w in zip(grams or [None] * len(toks), toks)]
        if grams is not None:   # one (T, N) tensor a text: a batch copies it, not T lists
            width = max(self.ngrams - 1, 0) + self.slots
            grams = torch.tensor(list(chain.from_iterable(grams)),
                                 dtype=torch.int32).view(len(toks), width)
        return encode(self.vocab, toks), grams

    def to_dict(self):
        return {"tokens": self.tokens, "max_len": self.max_len, "word_form": self.word_form}


def batch(examples):
    """B encoded texts [(ids, grams), ...] -> (x (B, T), lengths (B,), grams (B, T, N) or None)."""
    x, lengths = pad([ids for ids, _ in examples])                            # (B, T)
    if examples[0][1] is None:
        return x, lengths, None
    first = examples[0][1]
    N = first.shape[1] if torch.is_tensor(first) else len(first[0])
    grams = torch.zeros(*x.shape, N, dtype=torch.long)                        # (B, T, N)
    for b, (_, g) in enumerate(examples):
        if len(g):
            grams[b, :len(g)] = torch.as_tensor(g)
    return x, lengths, grams
