"""Vocabularies for character- and word-level text: token <-> id, stored as plain lists."""
import functools
import re
import unicodedata
from collections import Counter

import numpy as np
import torch

from rnnkit.data.text_tokens import combining_marks

# word tokens keep the whitespace and punctuation between words, so decode(encode(s)) == s
_WORD_V1 = re.compile(r"\w+|[^\w\s]|\s+")   # form 1: a combining mark a token of its own
WORD_FORM = 2   # word-exact tokens of vocabularies made now (a stored one without "form": 1)
SLICE = 1 << 24   # characters looked up at a time by Vocab.encode_tensor
UNK = "<unk>"
KIND_NAMES = {"char": "character", "ptb": "word", "word": "word-exact"}   # as --tokens names them
EOS = "<eos>"


def line_words(text):
    """Whitespace-separated tokens, each line ended by ``<eos>`` (Mikolov's Penn Treebank
    convention, as torch's word_language_model example reads it): the tokens that published
    word-level perplexities count."""
    body = text.removesuffix("\n").removesuffix("\r") if text else None
    return [] if body is None else [w for line in LINE_END.split(body)
                                    for w in line.split() + [EOS]]


LINE_END = re.compile(r"\r\n|\r|\n")   # as a file's lines end (not str.splitlines' \f, \v, ...)


def exact_words(text):
    """Words, each with its combining marks (Devanagari's vowel signs, Arabic's vowel points,
    a decomposed accent), punctuation marks and runs of whitespace: every character in one
    token, so the tokens joined give the text back."""
    return _exact_word_pattern().findall(text)


@functools.cache
def _exact_word_pattern():
    marks = combining_marks()
    return re.compile(f"[\\w{marks}]+|[^\\w\\s{marks}]|\\s+")


TOKENIZERS = {
    "char": list,
    "word": exact_words,       # words, punctuation and whitespace: exact decoding
    "ptb": line_words,         # whitespace-separated words and <eos>: perplexities as published
}
EXACT_TOKENS = ("char", "word")   # what decodes back to the text: generated or translated text


def tokenize(text, kind="char", form=WORD_FORM):
    """Split text into tokens: characters (``"char"``) or words/punctuation/whitespace (``"word"``;
    ``form`` 1: as vocabularies made before words kept their combining marks split them)."""
    if kind not in TOKENIZERS:
        raise ValueError(f"tokens must be one of {sorted(TOKENIZERS)}, got {kind!r}")
    return _WORD_V1.findall(text) if kind == "word" and form < 2 else TOKENIZERS[kind](text)


def chars_in_form(text, known):
    """``text`` with the characters not in ``known`` in their other Unicode form (NFC or NFD)
    where all of that form's are: each run of them normalised with the letter whose marks begin
    it (a decomposed é is e, known, and an accent; 안 in NFD is three jamo); the characters
    ``known`` holds elsewhere stay as they are."""
    unknown = set(text).difference(known)
    if not unknown:
        return text

    @functools.lru_cache(maxsize=100_000)
    def other(piece):
        return next((o for o in (unicodedata.normalize(f, piece) for f in ("NFC", "NFD"))
                     if o != piece and all(c in known for c in o)), piece)
    is_mark = lambda c: unicodedata.category(c).startswith("M")
    pieces, last = [], 0
    for m in re.finditer(f"[{re.escape(''.join(unknown))}]+", text):
        a, b = max(m.start(), last), m.end()           # (its start: in the piece before)
        if a >= b:
            continue
        while a > last and is_mark(text[a]):
            a -= 1                                     # back to the letter of the marks
        while b < len(text) and is_mark(text[b]):
            b += 1
        pieces += [text[last:a], other(text[a:b])]
        last = b
    return "".join(pieces) + text[last:]


class Vocab:
    """An ordered list of tokens; ids are positions. ``kind`` is the tokenizer's name.

    Tokens absent from the vocabulary map to ``<unk>`` when the vocabulary has one (word
    vocabularies cut by ``max_size``), and raise a ``KeyError`` naming them otherwise. ``form``:
    how its ``"word"`` tokens were split (:func:`tokenize`); a vocabulary reads text as it was
    made, so a stored one goes on reading as its run did.
    """

    def __init__(self, tokens, kind="char", form=WORD_FORM):
        if kind not in TOKENIZERS:
            raise ValueError(f"tokens must be one of {sorted(TOKENIZERS)}, got {kind!r}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens must be unique")
        if type(form) is not int or not 1 <= form <= WORD_FORM:
            raise ValueError(f"vocabulary form must be 1 to {WORD_FORM}, got {form!r} "
                             "(made by a newer rnnkit?)")
        self.kind = kind
        self.form = form if kind == "word" else WORD_FORM   # (the others have one form)
        self.itos = list(tokens)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.unk = self.stoi.get(UNK)

    @classmethod
    def build(cls, text, kind="char", max_size=None):
        """The vocabulary of ``text`` (or of several texts, each tokenized alone: no token is
        made where one ends and the next begins), most frequent first (ties: first seen);
        ``max_size`` keeps the most frequent tokens, ``max_size`` in all with ``<unk>``, which it
        adds for the rest and for tokens that only later text holds (even where every token
        fits)."""
        counts = Counter()
        for part in ([text] if isinstance(text, str) else text):   # (characters: counted
            counts.update(part if kind == "char" else tokenize(part, kind))   # from the str)
        tokens = [t for t, _ in counts.most_common()]
        if max_size is not None:
            tokens = [UNK] + [t for t in tokens if t != UNK][: max_size - 1]
        return cls(tokens, kind)

    def __len__(self):
        return len(self.itos)

    def __eq__(self, other):
        return isinstance(other, Vocab) and ((self.kind, self.form, self.itos)
                                             == (other.kind, other.form, other.itos))

    def tokenize(self, text):
        """The tokens of ``text``, split as this vocabulary's were."""
        return tokenize(text, self.kind, self.form)

    def encode(self, text, prefix=False):
        """text -> list of ids. ``prefix``: the text is the start of what follows (a prime), so
        a ``ptb`` text whose last line has no line break leaves that line open (no ``<eos>``
        after its last word: "the cat" goes on with the cat's next word, not a new line)."""
        tokens = self.tokenize(text)
        unknown = set(tokens).difference(self.stoi)
        if unknown:   # what it lacks, in the Unicode form it holds (a prime typed in NFD)
            tokens = self._in_form(text, tokens, unknown)
        if (prefix and self.kind == "ptb" and len(tokens) > 1 and tokens[-1] == EOS
                and not text.endswith(("\n", "\r"))):
            tokens = tokens[:-1]
        ids = []
        for tok in tokens:
            i = self.stoi.get(tok, self.unk)
            if i is None:
                missing = sorted({t for t in tokens if t not in self.stoi})
                raise KeyError(f"{len(missing)} token(s) not in the vocabulary "
                               f"({len(self):,} {KIND_NAMES.get(self.kind, self.kind)} tokens): "
                               f"{missing[:10]!r}")
            ids.append(i)
        return ids

    def _in_form(self, text, tokens, unknown):
        """``tokens`` of ``text`` with those the vocabulary lacks in their other Unicode form
        (NFC or NFD) where it holds that one; the tokens it holds stay as they are. A run of
        unknown tokens is normalised together (Hangul typed in NFD: 안 is three jamo, each
        unknown; ≠ in NFD is = and a mark); characters by :func:`chars_in_form`."""
        if self.kind == "char":
            return list(chars_in_form(text, self.stoi))

        @functools.lru_cache(maxsize=100_000)
        def other(piece):   # the piece's tokens in the other form, or None
            for o in (unicodedata.normalize(f, piece) for f in ("NFC", "NFD")):
                toks = [o] if self.kind == "ptb" else self.tokenize(o)   # (a word: no <eos>)
                if o != piece and all(t in self.stoi for t in toks):
                    return toks
            return None
        out, i = [], 0   # (ptb: each word alone; its tokens hold no space)
        while i < len(tokens):
            if tokens[i] not in unknown:
                out.append(tokens[i])
                i += 1
                continue
            j = i + 1
            while self.kind != "ptb" and j < len(tokens) and tokens[j] in unknown:
                j += 1
            run = tokens[i:j]   # together, or else each alone
            out += other("".join(run)) or [x for t in run for x in (other(t) or [t])]
            i = j
        return out

    def encode_tensor(self, text):
        """:meth:`encode` as a (N,) long tensor. A character vocabulary that holds every
        character of ``text`` looks them up in a table, a slice at a time: a corpus of 300 MB
        peaked at 18 times its size as lists of characters and ids."""
        if self.kind != "char" or not text:
            return torch.as_tensor(self.encode(text), dtype=torch.long)
        single = [(ord(t), i) for i, t in enumerate(self.itos) if len(t) == 1]
        table = np.full(max(c for c, _ in single) + 2, -1, dtype=np.int64) if single else \
            np.full(1, -1, dtype=np.int64)             # (the last entry: past every character)
        for c, i in single:
            table[c] = i
        out = np.empty(len(text), dtype=np.int64)
        for a in range(0, len(text), SLICE):
            codes = np.frombuffer(text[a:a + SLICE].encode("utf-32-le", "surrogatepass"),
                                  dtype="<u4")
            out[a:a + len(codes)] = table[np.minimum(codes, len(table) - 1)]
            if bool((out[a:a + len(codes)] < 0).any()):   # a character it lacks: the text
                return torch.as_tensor(self.encode(text), dtype=torch.long)   # read by encode
        return torch.from_numpy(out)

    def decode(self, ids, after=None):
        """ids -> text (tokens joined with nothing: word tokens carry their own whitespace;
        ``ptb`` tokens are joined by spaces, ``<eos>`` ends a line). ``after``: the id of the
        token the text continues (a stream decoded piece by piece: a ``ptb`` word after a word
        then starts with its space)."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        tokens = [self.itos[int(i)] for i in ids]
        if self.kind != "ptb":
            return "".join(tokens)
        prev = [EOS if after is None else self.itos[int(after)]] + tokens
        return "".join("\n" if t == EOS else (t if prev[i] == EOS else " " + t)
                       for i, t in enumerate(tokens))

    def to_dict(self):
        """Plain data for a checkpoint (loads with ``torch.load(weights_only=True)``)."""
        return {"kind": self.kind, "tokens": list(self.itos), "form": self.form}

    @classmethod
    def from_dict(cls, d):
        return cls(d["tokens"], d["kind"], d.get("form", 1))
