"""Generated malformed files against every reader of training and evaluation data.

Each reader gets random bytes, random text with control characters, valid fixtures mutated
(truncated, cut, garbled, with quotes, tabs, NUL bytes, odd line ends, huge and non-finite
numbers inserted) and rows of random fields. It must return data that holds up (finite
numbers, non-empty fields) or raise a one-line DataError that starts with the file's path and,
where the problem is a line, that line's number (within the file); never another exception.
"""
import os
import re
import string

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rnnkit.config import ConfigError
from rnnkit.data import DataError, Vocab, read_text
from rnnkit.data.labelled import read_labelled
from rnnkit.data.names import name_pairs
from rnnkit.data.pairs import own_splits, read_numbered_pairs, read_pairs
from rnnkit.data.dates import infer_season
from rnnkit.data.series import read_series_file
from rnnkit.data.tagged import char_sentences, read_tagged
from rnnkit.tasks.cond import SIDES, Conditions, check_conditions, parse_features

# per reader: 1,100 generated files in all, about 15 s; RNNKIT_FUZZ_EXAMPLES=5000 searches longer
EXAMPLES = int(os.environ.get("RNNKIT_FUZZ_EXAMPLES", 100))


# ----------------------------------------------------------------- the readers as the CLI uses them
def lm_corpus(path):
    text = read_text(path)
    for kind in ("char", "word", "ptb"):
        Vocab.build(text, kind).encode(text)
    return text


def labelled(path):
    rows = read_labelled(path, with_lines=True)
    assert len(rows) >= 2 and all(label and text.strip() for label, text, _ in rows)
    return rows


def tagged(path):
    for column in (3, 4):
        try:
            sents = read_tagged(path, column)
        except ConfigError as e:      # a file without columns: its only tags are read
            assert "a tag column is picked in" in str(e)
            sents = read_tagged(path)
        assert sents and all(len(w) == len(t) > 0 for w, t in sents)
        assert all(len(w) == len(t) for w, t in char_sentences(sents))
    return sents


def pairs(path):
    out = read_pairs(path)
    assert out and all(s.strip() and t.strip() for s, t in out)
    own_splits(out, path=path)
    return out


def cond(path):
    """`train cond`: the pairs, feature vectors if the first column holds numbers, and the same
    file checked as a validation file would be."""
    numbered = read_numbered_pairs(path, SIDES)
    feats = parse_features(numbered, path)
    if feats is None:
        conditions = Conditions(sorted({s for _, s, _ in numbered}))
    else:
        assert feats.dtype == torch.float32 and torch.isfinite(feats).all()
        conditions = Conditions(features=feats.shape[1])
    check_conditions(conditions, path)
    own_splits([(s, t) for _, s, t in numbered], key=lambda p: p[1], path=path, sides=SIDES)
    return numbered


def series(path, columns=""):
    f = read_series_file(path, columns)
    assert f.values.dtype == np.float32 and np.isfinite(f.values).all() and len(f.values) >= 2
    infer_season(f, warn=lambda message: None)
    return f


def names(path):
    return name_pairs([path])


_NAME = "M  {:<26} {}\n"
FIXTURES = {
    "lm.txt": (lm_corpus, "the cat sat on the mat.\nthe dog sat on the log.\n月光 ok\n"),
    "classify.tsv": (labelled, "label\ttext\npos\tgood movie\nneg\tbad film\npos\tgreat\n"),
    "classify.csv": (labelled, 'label,text\npos,"good, fun"\nneg,"a ""bad""\nfilm"\npos,great\n'),
    "tag.txt": (tagged, "我/r 爱/v 北京/ns\n他/r 来/v\n"),
    "tag.conllu": (tagged, "# s1\n1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\n"
                           "2\tdog\tdog\tNOUN\tNN\t_\t0\troot\t_\t_\n\n"
                           "1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n"),
    "seq2seq.tsv": (pairs, "Hallo Welt\tHello world\nDanke\tThanks\nNeke\tneke\nBitte\tPlease\n"),  # Neke: val, Bitte: test
    "cond.tsv": (cond, "Italy\tMarco\nFrance\tPierre\nItaly\tHarl\nItaly\tEnzo\n"),  # Harl: val, Enzo: test
    "cond-features.tsv": (cond, "0.1,0.5\tAnna\n-2 3\tBob\n1e3,4\tHarl\n5,6\tEnzo\n"),
    "forecast.csv": (series, "month,a,b\n1990-01,1.5,2\n1990-02,2.5,3\n1990-03,3,4\n1990-04,1,2\n"),
    "forecast-years.csv": (lambda p: series(p, "a,b"), "year,a,b\n1871,1120,1\n1872,1160,2\n"),
    "nam_dict.txt": (names, "# comment\n" + _NAME.format("Anna", "  5 3") + _NAME.format("Bo", "1")),
}

# Messages about the whole file, not one line (a line number would mean nothing there).
FILE_LEVEL = ["the file is empty", "cannot read the file", "expected at least 2 labelled examples",
              "no tagged sentences found", r"no '(source|label)<TAB>(target|sequence)' pairs",
              "a series needs at least 2 rows", r"missing or NaN value\(s\) .* on line\(s\) \d",
              "no header and no values",
              r"(pairs are|pair is) too few( \(\d+ distinct\))?: none falls in the",
              "no JSON (source and target|label and sequence) pairs",
              "gzip-compressed, but it cannot be decompressed",
              r"UTF-16 text \((a byte-order mark|no byte-order mark)"]


# ----------------------------------------------------------------- what goes into the files
PIECES = ['"', '""', "\t", ",", "\n", "\r\n", "\r", "\x00", " ", "/", "_", "#", "-", ".", "1-2",
          "1.1", "nan", "NaN", "inf", "-inf", "1e308", "-1e39", "3.4e38", "1e-320", "1_0", "0000",
          "1990-13", "1990-Q5", "2024-02-30", "\ufeff", "\u2028", "\x0c", "\x85", "\x1e", "é",
          "月", "label\ttext", "label,text", "0.1,0.2", "\t\t\t\t\t\t\t\t\t"]
DATES = ["0000", "0000-Q1", "1990", "1991", "1990-01", "1990-02", "1990-Q2", "1990-01-01",
         "1990-01-02", "1990-01-01 00:00", "1990-01-01 01:00", "Jan 1990", "9999-12", "24:00"]
NUMBERS = ["1", "-2.5", "0", "1e308", "3.4e38", "-3.5e38", "nan", "", "inf", "1e19"]
RAW_PIECES = [b"\xff", b"\xc3", b"\xe6\x9c", b"\xed\xa0\x80", b"\x00\x00"]
LONG = "x" * 140_000   # past the csv module's field limit

piece = st.sampled_from(PIECES)
text_piece = st.one_of(piece, st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
                       st.sampled_from(string.ascii_letters + string.digits))
unicode_text = st.lists(text_piece, max_size=40).map("".join)


@st.composite
def mutated(draw, fixture):
    """A valid fixture with up to 6 edits: inserted pieces (text or raw bytes), cuts, a
    truncation, a replaced byte; now and then an over-long field."""
    data = bytearray(fixture.encode("utf-8"))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "insert", "raw", "cut", "truncate", "replace"]))
        if op == "insert":
            data[at:at] = draw(piece).encode("utf-8")
        elif op == "raw":
            data[at:at] = draw(st.sampled_from(RAW_PIECES))
        elif op == "cut":
            del data[at:at + draw(st.integers(1, 20))]
        elif op == "truncate":
            del data[at:]
        elif data:
            data[min(at, len(data) - 1)] = draw(st.integers(0, 255))
    if draw(st.integers(0, 30)) == 0:
        at = draw(st.integers(0, len(data)))
        data[at:at] = LONG.encode()
    return bytes(data)


@st.composite
def rows(draw, fixture):
    """The fixture's first line (or none), then rows of random fields, about half of them of one
    width: wrong field counts, stray quotes, dates, numbers out of range, mixed separators and
    line ends."""
    sep = draw(st.sampled_from(["\t", ",", " ", "/", ", "]))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    field = st.one_of(piece, st.sampled_from(["pos", "neg", "Anna", "w/NN"] + DATES + NUMBERS))
    width = draw(st.integers(1, 4))
    row = st.one_of(st.lists(field, min_size=width, max_size=width),
                    st.lists(field, max_size=12)).map(sep.join)
    body = draw(st.lists(row, max_size=12))
    head = fixture.split("\n", 1)[0] if draw(st.booleans()) else ""
    return end.join([head] + body).encode("utf-8")


def files(fixture):
    return st.one_of(st.binary(max_size=300), unicode_text.map(lambda s: s.encode("utf-8")),
                     mutated(fixture), mutated(fixture), rows(fixture))


def lines_in(raw):
    """How many lines the file has, counted as the readers count (\\n, \\r\\n or \\r ends one)."""
    return raw.count(b"\n") + raw.count(b"\r") - raw.count(b"\r\n") + 1


def check_reader(read, path, raw):
    """``read(path)`` returns (its own checks on the data passing) or raises a DataError that
    names the file and, unless it is about the whole file, a line of it."""
    path.write_bytes(raw)
    try:
        read(path)
        event("read")
    except DataError as e:
        message = str(e)
        event("DataError: " + re.split(r"[(:'\"\d]", message.split(": ", 1)[-1])[0])
        assert "\n" not in message, message
        m = re.match(re.escape(str(path)) + r"(?::(\d+))?: ", message)
        assert m, f"no file name in {message!r}"
        if m[1]:
            assert 1 <= int(m[1]) <= lines_in(raw), f"line {m[1]} of {lines_in(raw)}: {message}"
        else:
            assert any(re.search(p, message) for p in FILE_LEVEL), f"no line in {message!r}"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_is_valid(folder, name):
    read, fixture = FIXTURES[name]
    path = folder / name
    path.write_text(fixture, encoding="utf-8", newline="")
    assert read(path) is not None


@pytest.mark.parametrize("name", sorted(FIXTURES))
@settings(max_examples=EXAMPLES, deadline=None, database=None,   # no .hypothesis/ in the checkout
          suppress_health_check=[HealthCheck.function_scoped_fixture,   # conftest's autouse seed
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_malformed_file_gives_data_or_a_data_error(folder, name, data):
    read, fixture = FIXTURES[name]
    check_reader(read, folder / name, data.draw(files(fixture), label="file"))
