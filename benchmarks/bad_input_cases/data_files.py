"""Bad data files: missing, binary, not UTF-8, malformed rows and values, too little data; the
message must name the file, and the line where one is given."""
import json
import re

from .fixtures import FIXTURES, POS, labelled_rows, series_rows, series_text
from .harness import RUN, TRAIN, case, mkdir, writes


def data_case(kind, name, filename, content, flag="--data", expect="error", extra=(), line=None,
              mention=None):
    """``train KIND`` with a bad file as --data (or --val-data, --test-data); the message must
    name the file, and the line where one is given (``file:5`` or ``file ... line(s) 5``)."""
    case("data file", f"train {kind}: {name}", TRAIN(kind, flag, "{tmp}/" + filename, *extra),
         expect, setup=writes(filename, content) if content is not None else None,
         mention=mention or file_line(filename, line))


def file_line(filename, line=None):
    if not line:
        return (filename,)
    return (f"{filename}:{line}",
            re.compile(rf"{re.escape(filename)}\b.*\blines?(?:\(s\))? {line}\b"))


def file_case(cmd, kind, name, filename, content, expect="error", extra=()):
    """A command reading lines from ``--file`` (predict, tag, translate)."""
    case("data file", f"{cmd} --file: {name}", [cmd, RUN(kind), "--file", "{tmp}/" + filename,
                                                *extra],
         expect, setup=writes(filename, content) if content is not None else None,
         mention=(filename,))


LATIN1 = ("caf\xe9 au lait, cr\xe8me br\xfbl\xe9e\n" * 40).encode("latin-1")
MULTILINE_CSV = ('label,text\npositive,"a good\nfilm"\nnegative\n' +
                 "".join(f'{l},"{t}"\n' for l, t in labelled_rows()))
UNTERMINATED_CSV = ('label,text\npositive,"a good film\n' +
                    "".join(f"{l},{t}\n" for l, t in labelled_rows()))


def add_data_cases():
    lm = lambda *a, **k: data_case("lm", *a, **k)
    lm("missing file", "nope.txt", None)
    case("data file", "train lm: --data is a directory", TRAIN("lm", "--data", "{tmp}/adir"),
         setup=mkdir("adir"), mention=("adir",))
    lm("empty file", "empty.txt", "")
    lm("binary (NUL bytes)", "bin.txt", b"hello\x00world\n" * 50)
    lm("Latin-1, not UTF-8", "latin1.txt", LATIN1, line=1)
    lm("2 characters", "short.txt", "ab")
    lm("UTF-16 with a byte-order mark", "utf16.txt", ("a line of text\n" * 40).encode("utf-16"),
       mention=("utf16.txt", "UTF-16"))
    lm("gzip cut short", "cut.txt.gz", __import__("gzip").compress(b"text\n" * 400)[:-12],
       mention=("cut.txt.gz", "gzip"))
    lm("--val-data missing", "noval.txt", None, flag="--val-data")
    lm("--test-data not UTF-8", "test.txt", LATIN1, flag="--test-data")
    case("data file", "train lm: cached data set fails its checksum",
         TRAIN("lm", "--data", "shakespeare"),
         setup=lambda c: c.write("cache/shakespeare.txt", "not the real corpus\n" * 50),
         env={"RNNKIT_DATA": "{tmp}/cache"}, mention=("shakespeare",))

    cl = lambda *a, **k: data_case("classify", *a, **k)
    rows = "".join(f"{l}\t{t}\n" for l, t in labelled_rows())
    cl("a line without a tab", "notab.tsv", "positive a good film\n" + rows, line=1)
    lines = rows.splitlines(keepends=True)
    cl("empty label", "nolabel.tsv", "".join(lines[:4]) + "\tsome text\n" + "".join(lines[4:]),
       line=5)
    cl("empty text", "notext.tsv", "positive\t   \n" + rows, line=1)
    cl("3 examples: one each for train, validation, test", "three.tsv",
       "positive\tgood\nnegative\tbad\npositive\tfine\n", expect="either")
    cl("quoted multi-line CSV field, then a bad row", "multi.csv", MULTILINE_CSV, line=4)
    cl("unterminated CSV quote", "open.csv", UNTERMINATED_CSV)
    jsonl = "".join(json.dumps({"text": t, "label": l}) + "\n" for l, t in labelled_rows())
    cl("a JSON line without a label", "nolabel.jsonl", jsonl + '{"text": "a film"}\n',
       line=len(labelled_rows()) + 1)
    cl("a line that is no JSON", "broken.jsonl", '{"text": "good", "label": "pos"\n' + jsonl,
       line=1)
    cl("the text first, no header", "swapped.tsv",
       "".join(f"{t} ({i})\t{l}\n" for i, (l, t) in enumerate(labelled_rows())),
       mention=("swapped.tsv", "label first"))
    cl("TSV not UTF-8", "latin1.tsv", b"positive\tcaf\xe9\n" * 20, line=1)
    cl("one class only", "oneclass.tsv", "".join(f"positive\t{t}\n" for t in POS * 6),
       expect="either")
    cl("--val-data with a bad row", "val.tsv", "positive\tgood\nnegative\n", flag="--val-data",
       line=2)
    cl("a 100,000-character text", "long.tsv", "positive\t" + "good " * 20000 + "\n" + rows,
       expect="ok")

    tg = lambda *a, **k: data_case("tag", *a, **k)
    tagged = FIXTURES["tagged.txt"]
    tg("a token without a slash", "noslash.txt", tagged + "the cat sat/V\n", line=37)
    tg("CoNLL-U row with 9 columns", "nine.conllu", "1\tthe\t_\tD\t_\t_\t_\t_\t_\n", line=1)
    tg("CoNLL-U tag '_'", "under.conllu",
       "1\tthe\t_\t_\t_\t_\t_\t_\t_\t_\n\n" + FIXTURES["tagged.conllu"], line=1)
    tg("one sentence", "onesent.txt", "the/D cat/N sat/V\n")
    tg("JSON line with fewer tags than tokens", "short.jsonl",
       '{"tokens": ["the", "cat"], "tags": ["D", "N"]}\n{"tokens": ["a", "b"], "tags": ["D"]}\n',
       line=2)

    s2 = lambda *a, **k: data_case("seq2seq", *a, **k)
    pairs = FIXTURES["pairs.tsv"]
    s2("a line without a tab", "notab.tsv", pairs + "ich sehe den hund\n", line=241)
    s2("empty target", "notarget.tsv", pairs + "ich sehe\t  \n", line=241)
    s2("2 pairs: too few to split", "two.tsv", "ich\tI\ndu\tyou\n")
    s2("a JSON line of three texts", "three.jsonl",
       '{"de": "ich", "en": "I"}\n{"de": "du", "en": "you", "fr": "tu"}\n', line=2)

    cd = lambda *a, **k: data_case("cond", *a, **k)
    feats = FIXTURES["features.tsv"]
    cd("NaN features", "nan.tsv", feats.replace("1,0\tMarco\n", "nan,0\tMarco\n"))
    cd("1e308 features (inf in float32)", "huge.tsv",
       feats.replace("1,0\tMarco\n", "1e308,0\tMarco\n"))
    cd("feature vectors of different lengths", "ragged.tsv", feats + "1,0,1\tLuca\n", line=65)

    fc = lambda *a, **k: data_case("forecast", *a, **k)
    good = series_rows()
    head = "month,value\n"
    with_row = lambda k, row: head + "\n".join(good[:k] + [row] + good[k + 1:]) + "\n"
    fc("a value 'abc'", "abc.csv", with_row(3, "2000-04,abc"), line=5)
    fc("a value NaN", "nan.csv", with_row(3, "2000-04,NaN"), line=5)
    fc("a value 1e308 (inf in float32)", "huge.csv", with_row(3, "2000-04,1e308"), line=5)
    fc("a value -1e39 (-inf in float32)", "neghuge.csv", with_row(3, "2000-04,-1e39"), line=5)
    fc("--columns naming no column", "series.csv", FIXTURES["series.csv"],
       extra=("--columns", "nosuch"), mention=("nosuch",))
    fc("dates out of order", "order.csv", with_row(3, "1999-01,3.0"), line=5)
    fc("an unreadable date", "date.csv", with_row(3, "2000-13,3.0"), line=5)
    fc("a constant series", "flat.csv", series_text(value=lambda t: "5"), expect="either")
    fc("10 rows, window 12", "tiny.csv", series_text(10))
    fc("--transform log on negative values", "neg.csv", series_text(value=lambda t: f"{t - 60}"),
       extra=("--transform", "log"))
    fc("--val-data without --test-data", "val.csv", series_text(30), flag="--val-data",
       mention=("test-data", "test_data"))
    fc("CSV not UTF-8", "latin1.csv", b"month,caf\xe9\n2000-01,1\n", line=1)
    fc("semicolons, numbers that read either way", "either.csv",
       "month;value\n" + "".join(f"{r.split(',')[0]};{100 + i}.500\n" for i, r in enumerate(good)),
       line=2)
    fc("a --test-data file out of order", "cont.csv",
       "month,value\n2010-01,1\n2010-02,2\n2010-03,3\n2010-02,4\n", flag="--test-data",
       line=5)
    # long form: rows of (month, series, value), two series
    rows = [f"{r.split(',')[0]},{s},{r.split(',')[1]}" for s in ("a", "b") for r in good]
    long_text = lambda rs: "month,series,value\n" + "\n".join(rs) + "\n"
    lc = lambda name, filename, rs, **k: fc(f"long form: {name}", filename, long_text(rs),
                                            extra=("--series-column", "series"), **k)
    lc("a time twice in a series", "ldup.csv", rows + [rows[3]], line=len(rows) + 2)
    lc("a series lacking a time", "lgap.csv", rows[:-2] + rows[-1:],
       mention=("lgap.csv", "lacks 1 of the times"))
    lc("a row naming no series", "lnone.csv", rows[:5] + [rows[5].replace(",a,", ",,")] + rows[6:],
       line=7)
    lc("a missing value", "lnan.csv", rows[:5] + [rows[5].rsplit(",", 1)[0] + ","] + rows[6:],
       line=7)
    fc("long form: --series-column naming no column", "series.csv", FIXTURES["series.csv"],
       extra=("--series-column", "nosuch"), mention=("nosuch",))

    for cmd, kind, extra in (("predict", "classify", ()), ("tag", "tag", ()),
                             ("translate", "seq2seq", ("--beam-size", "1"))):
        file_case(cmd, kind, "missing", "nope.txt", None, extra=extra)
        file_case(cmd, kind, "not UTF-8", "latin1.txt", LATIN1, extra=extra)
    case("data file", "predict --file: a directory",
         ["predict", RUN("classify"), "--file", "{tmp}/adir"], setup=mkdir("adir"),
         mention=("adir",))
    file_case("predict", "classify", "empty", "empty.txt", "")
    case("data file", "predict: empty standard input", ["predict", RUN("classify")],
         stdin="", mention=("stdin",))
    case("data file", "predict --eval: a row without a tab",
         ["predict", RUN("classify"), "--eval", "{tmp}/bad.tsv"],
         setup=writes("bad.tsv", "positive\tgood\nnegative bad\n"), mention=("bad.tsv:2",))
    evals = (("lm", "latin1.txt", LATIN1, "error", 1),
             ("lm", "unseen.txt", "Zebras \u00e6\u00f8\u00e5 quietly\n", "error", 1),
             ("tag", "bad.txt", "the/D cat\n", "error", 1),
             ("seq2seq", "bad.tsv", "ich sehe den hund\n", "error", 1),
             ("forecast", "cols.csv", "month,other\n2000-01,1\n2000-02,2\n", "error", None),
             ("tag", "foreign.txt", "the/DT cat/NN\n", "error", None),
             ("forecast", "gap.csv", "month,value\n" + "\n".join(
                 f"2012-{m:02d},{m}" for m in range(1, 13)) + "\n", "error", 2),
             ("forecast", "overlap.csv", "month,value\n" + "\n".join(
                 f"2009-{m:02d},{m}" for m in range(1, 13)) + "\n", "error", 2))
    for kind, name, content, expect, line in evals:
        case("data file", f"eval {kind}: {name}", ["eval", RUN(kind), "{tmp}/" + name], expect,
             setup=writes(name, content), mention=file_line(name, line))
