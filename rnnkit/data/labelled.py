"""Labelled text for N-to-1 classification: TSV/CSV readers, word tokens, a fixed three-way split.

A file holds one example a line, ``label<TAB>text`` (``.tsv``, ``.txt``) or ``label,text``
(``.csv``, quoted as the csv module writes). A first line ``label<sep>text`` is a header and is
skipped. Malformed rows and empty texts raise DataError naming the file and line.
"""
import csv
import io
import random
import re
from pathlib import Path

from rnnkit.data.text import DataError, read_text

_TOKEN = re.compile(r"\w+(?:'\w+)?|[^\w\s]")


def words(text):
    """Lower-cased word and punctuation tokens: ``"It's GOOD!"`` -> ``["it's", "good", "!"]``."""
    return _TOKEN.findall(text.lower())


def read_labelled(path, with_lines=False):
    """[(label, text), ...] from a TSV or CSV file of label and text; with_lines: [(label, text,
    line number), ...]."""
    path = Path(path)
    text = read_text(path)
    sep = "," if path.suffix.lower() == ".csv" else "\t"
    rows = csv.reader(io.StringIO(text), delimiter=sep) if sep == "," else \
        (line.split("\t") for line in text.splitlines())
    out = []
    for lineno, row in enumerate(rows, 1):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue                                   # blank line
        if len(row) < 2:
            raise DataError(f"{path}:{lineno}: expected 'label{_show(sep)}text', got "
                            f"{len(row)} field: {_clip(row[0])!r}")
        label, body = row[0].strip(), sep.join(row[1:]).strip()
        if lineno == 1 and (label.lower(), body.lower()) == ("label", "text"):
            continue                                   # header
        if not label:
            raise DataError(f"{path}:{lineno}: empty label (text {_clip(body)!r})")
        if not words(body):
            raise DataError(f"{path}:{lineno}: empty text for label {label!r}")
        out.append((label, body, lineno) if with_lines else (label, body))
    if len(out) < 2:
        raise DataError(f"{path}: expected at least 2 labelled examples, got {len(out)}")
    return out


def split_examples(examples, test_fraction=0.1, val_fraction=0.1, seed=0):
    """(train, val, test): a shuffle with a fixed seed, so the held-out test set never changes."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_test = max(1, round(len(examples) * test_fraction))
    n_val = max(1, round(len(examples) * val_fraction))
    if len(examples) - n_test - n_val < 1:
        raise DataError(f"{len(examples)} examples are too few for a train/validation/test split")
    pick = lambda idx: [examples[i] for i in idx]
    return (pick(order[n_test + n_val:]), pick(order[n_test:n_test + n_val]), pick(order[:n_test]))


def _show(sep):
    return "<TAB>" if sep == "\t" else sep


def _clip(s, n=60):
    return s if len(s) <= n else s[:n] + "..."


# ----------------------------------------------------------------- named data set builder
MR_MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"


def mr_sentences(files):
    """vaderSentiment's hutto_ICWSM_2014.tar.gz -> ``label<TAB>text`` lines of Pang & Lee's
    movie-review sentences: mean human rating > 0 is positive, < 0 negative, 0 dropped."""
    import tarfile
    with tarfile.open(files[0]) as t:
        raw = t.extractfile(t.getmember(MR_MEMBER)).read().decode("utf-8")
    out = []
    for line in raw.splitlines():
        _, rating, text = line.split("\t", 2)
        if float(rating) != 0:
            out.append(f"{'positive' if float(rating) > 0 else 'negative'}\t{text.strip()}\n")
    return "".join(out).encode("utf-8")
