"""The bad-input campaign (issue 14): every class of bad input against the ``rnnkit`` CLI, and how
each one ends.

    .venv/bin/python benchmarks/bad_inputs.py                     # every case, one at a time
    .venv/bin/python benchmarks/bad_inputs.py --only checkpoint -k flip
    .venv/bin/python benchmarks/bad_inputs.py --list              # the cases, without running them
    .venv/bin/python benchmarks/bad_inputs.py --json bad.json --keep

A scratch folder gets tiny valid fixtures for every task (LM corpus, classify TSV/CSV, word/tag
and CoNLL-U files, seq2seq and 1→N pairs, a monthly CSV series) and, on first use, one tiny run of
each task kind (``--max-steps 3``). Each case then runs the real console script in a subprocess,
in its own folder, with a timeout and a 6 GB address-space limit (a config that asks for 256 GB
fails instead of swapping the machine); a case that damages a run works on its own copy.

A case expects ``error`` (a non-zero exit with a clear message), ``ok`` (exit 0), ``either``
(an honest success or a clear error), ``pipe`` (output cut by a closed pipe: no traceback, at
most one line) or ``interrupt`` (a signal: non-zero, no traceback, at most two lines). Outcomes:

    clear         non-zero exit; stderr's last line is ``rnnkit: error: ...`` (or argparse's
                  ``rnnkit ...: error: ...`` after its usage), no traceback, at most 3 lines
                  besides the usage, and the message names what the case says it must (the
                  data file and line, the flag)
    unclear       non-zero exit, but no such line, too many lines, or a message without the
                  file or flag it is about
    internal      ``rnnkit: error: internal error ...``: an unexpected exception, caught by the
                  CLI's last-resort handler (a traceback in disguise)
    traceback     a Python traceback on stderr
    hang          still running at the timeout (killed)
    accepted      exit 0 where an error was expected
    ok            exit 0 where success was expected (or allowed)
    failed        non-zero exit where success was expected
    check-failed  ended as expected, but the case's check of the files it left failed (a run
                  folder out of step, code run from a pickle, a checkpoint still trusted)
    skipped       the case could not be prepared (its base run failed to train, no root for a
                  tmpfs mount, ...)

The report is a table per class (counts of each outcome) and every case that is not ``clear`` or
``ok``, with the tail of its stderr. Runs serially by default (``--jobs 1``): the CPU is shared.
"""
import argparse
import json
import os
import pickle
import random
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

OUTCOMES = ("clear", "ok", "unclear", "internal", "traceback", "hang", "accepted", "failed",
            "check-failed", "skipped")
MEMORY_LIMIT = 6 << 30   # bytes of address space per case: a 256 GB allocation fails at once


def cli():
    """The command that runs rnnkit: the console script beside this Python, else ``-m``."""
    exe = Path(sys.executable).with_name("rnnkit")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "rnnkit.cli.main"]


# ---------------------------------------------------------------- fixtures: tiny valid data
ENGLISH = ("ROMEO.\nBut soft, what light through yonder window breaks?\n\n"
           "JULIET.\nO Romeo, Romeo, wherefore art thou Romeo?\n\n") * 12
POS = ["a good film", "great fun and good acting", "a fine warm story", "good good great",
       "warm and fine", "great acting"]
NEG = ["a bad film", "awful and dull acting", "a poor cold story", "bad bad awful",
       "cold and dull", "poor acting"]
TAGGED = ["the/D cat/N sat/V", "a/D dog/N ran/V fast/R", "the/D big/A dog/N sat/V",
          "a/D cat/N ran/V", "dogs/N ran/V fast/R", "the/D small/A cat/N slept/V"]
WORDS = {"ich": "I", "du": "you", "sehe": "see", "den": "the", "hund": "dog", "die": "the",
         "katze": "cat", "ein": "a", "haus": "house", "rot": "red"}
NAMES = {"Italy": ["Marco", "Giulia", "Luca", "Francesca", "Matteo", "Chiara", "Paolo", "Sofia"],
         "Japan": ["Hiroshi", "Yuki", "Kenji", "Sakura", "Haruto", "Aiko", "Takeshi", "Emi"]}


def labelled_rows():
    return [("positive", t) for t in POS] * 4 + [("negative", t) for t in NEG] * 4


def conllu(sentences):
    blocks = []
    for s in sentences:
        rows = [f"{i}\t{w}\t_\t{t}\t_\t_\t_\t_\t_\t_"
                for i, (w, t) in enumerate((tok.rsplit("/", 1) for tok in s.split()), 1)]
        blocks.append("\n".join(rows))
    return "\n\n".join(blocks) + "\n"


def pairs_text(n=240):
    r = random.Random(0)
    lines = []
    for _ in range(n):
        src = r.sample(sorted(WORDS), 3)
        lines.append(" ".join(src) + "\t" + " ".join(WORDS[w] for w in src))
    return "\n".join(lines) + "\n"


def names_text(features=False):
    feats = {"Italy": "1,0", "Japan": "0,1"}
    return "".join(f"{feats[c] if features else c}\t{n}{'o' * (k % 3)}\n" for k in range(4)
                   for c, names in NAMES.items() for n in names)


def series_rows(n=120, value=lambda t: f"{10 + 5 * ((t % 12) - 6) ** 2 / 36 + 0.05 * t:.4f}"):
    return [f"{2000 + t // 12}-{t % 12 + 1:02d},{value(t)}" for t in range(n)]


def series_text(n=120, **kw):
    return "month,value\n" + "\n".join(series_rows(n, **kw)) + "\n"


FIXTURES = {
    "corpus.txt": ENGLISH,
    "labels.tsv": "\n".join(f"{l}\t{t}" for l, t in labelled_rows()) + "\n",
    "labels.csv": "label,text\n" + "\n".join(f'{l},"{t}"' for l, t in labelled_rows()) + "\n",
    "tagged.txt": "\n".join(TAGGED * 6) + "\n",
    "tagged.conllu": conllu(TAGGED * 6),
    "pairs.tsv": pairs_text(),
    "names.tsv": names_text(),
    "features.tsv": names_text(features=True),
    "series.csv": series_text(),
}

# Tiny models on the fixtures: each base run and each flag case trains in seconds.
BASE = {
    "lm": ["--data", "corpus.txt", "--seq-len", "16", "--batch", "4", "--layers", "1",
           "--hidden", "16", "--embed", "8"],
    "classify": ["--data", "labels.tsv", "--hidden", "8", "--embed", "8", "--batch", "8",
                 "--buckets", "64", "--bag-buckets", "64"],
    "tag": ["--data", "tagged.txt", "--hidden", "8", "--embed", "8", "--char-embed", "4",
            "--char-hidden", "4", "--batch", "8", "--min-count", "1"],
    "forecast": ["--data", "series.csv", "--window", "12", "--horizon", "3", "--layers", "1",
                 "--hidden", "8", "--batch", "8"],
    "seq2seq": ["--data", "pairs.tsv", "--embed", "8", "--enc-hidden", "8", "--hidden", "8",
                "--batch", "16", "--val-pairs", "8", "--val-decode", "4", "--test-pairs", "4",
                "--beam-size", "2"],
    "cond": ["--data", "names.tsv", "--hidden", "8", "--embed", "4", "--cond-size", "4",
             "--batch", "16", "--val-pairs", "16"],
}
STEPS = ["--max-steps", "2", "--eval-every", "1", "--warmup-steps", "0", "--quiet"]
BASE_STEPS = ["--max-steps", "3", "--eval-every", "1", "--warmup-steps", "0", "--quiet"]
# Commands that use each kind of run, for damaged checkpoints and confused run folders.
USE = {"lm": ["sample", "{run}", "--length", "5"],
       "classify": ["predict", "{run}", "a good film"],
       "tag": ["tag", "{run}", "the cat sat"],
       "forecast": ["forecast", "{run}", "--steps", "3", "--png", "{tmp}/f.png"],
       "seq2seq": ["translate", "{run}", "ich sehe den hund", "--beam-size", "2"],
       "cond": ["sample", "{run}", "--cond", "Italy", "-n", "2"]}


class Skip(Exception):
    """A case that cannot be prepared here; it is reported as skipped with the reason."""


# ---------------------------------------------------------------- running the console script
@dataclass
class Ran:
    rc: int
    out: str
    err: str
    seconds: float
    timed_out: bool = False


def limits():
    """In the child: a cap on address space (a huge allocation fails instead of paging) and a
    session of its own, so a timeout can end the command and anything it started."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def start(argv, cwd, env=None, stdin=False, stdout=subprocess.PIPE, preexec=None):
    def pre():
        limits()
        if preexec:
            preexec()
    return subprocess.Popen(cli() + [str(a) for a in argv], cwd=cwd, env=env,
                            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            stdout=stdout, stderr=subprocess.PIPE, preexec_fn=pre,
                            start_new_session=True)


def finish(p, t0, timeout, stdin=None):
    try:
        out, err = p.communicate(stdin, timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        kill_group(p)
        out, err = p.communicate()
        timed_out = True
    dec = lambda b: (b or b"").decode("utf-8", "replace")
    return Ran(p.returncode, dec(out), dec(err), time.perf_counter() - t0, timed_out)


def kill_group(p, sig=signal.SIGKILL):
    """Signal the process group of a command this script started (its own session)."""
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass


def run_cli(argv, cwd, timeout=60, stdin=None, env=None, preexec=None):
    t0 = time.perf_counter()
    p = start(argv, cwd, env, stdin is not None, preexec=preexec)
    return finish(p, t0, timeout, stdin.encode() if isinstance(stdin, str) else stdin)


# ---------------------------------------------------------------- the scratch folder
class Work:
    """The campaign's scratch folder: fixtures, and one tiny trained run per task kind."""

    def __init__(self, root):
        self.root = Path(root)
        self.data_dir = self.root / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for name, text in FIXTURES.items():
            (self.data_dir / name).write_text(text, encoding="utf-8")
        self._runs, self._lock = {}, threading.Lock()

    def data(self, name):
        return self.data_dir / name

    def base_flags(self, kind):
        flags = list(BASE[kind])
        flags[1] = str(self.data(flags[1]))
        return flags

    def run(self, kind):
        """The base run of ``kind`` (trained on first use); Skip if it does not train."""
        with self._lock:
            out = self.root / "runs" / kind
            if kind not in self._runs and (out / "metrics.json").exists():   # --workdir again
                self._runs[kind] = (out, None)
            if kind not in self._runs:
                shutil.rmtree(out, ignore_errors=True)
                r = run_cli(["train", kind, *self.base_flags(kind), "--out", out, *BASE_STEPS],
                            self.root, timeout=240)
                ok = r.rc == 0 and (out / "best.pt").exists()
                tail = (r.err.strip().splitlines() or [f"exit {r.rc}"])[-1]
                self._runs[kind] = (out, None if ok else f"base {kind} run did not train: {tail}")
                print(f"  [base run {kind}: {'ok' if ok else 'FAILED: ' + tail} "
                      f"({r.seconds:.1f} s)]", flush=True)
            problem = self._runs[kind][1]
        if problem:
            raise Skip(problem)
        return out


class Ctx:
    """What a case's argv, setup and check see: its own folder and the shared work."""

    def __init__(self, work, folder):
        self.work, self.tmp = work, Path(folder)
        self.out = self.tmp / "run"
        self.marker = self.tmp / "EXECUTED"   # a code-executing pickle would create it
        self.state = {}
        self.cleanups = []

    def run(self, kind):
        return self.work.run(kind)

    def copy(self, kind, name=None):
        """A copy of the base run of ``kind`` in this case's folder (to damage or resume)."""
        dst = self.tmp / (name or kind)
        if not dst.exists():
            shutil.copytree(self.run(kind), dst)
        return dst

    def write(self, name, content):
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def train_argv(self, kind, out=None, steps=STEPS):
        return ["train", kind, *self.work.base_flags(kind), "--out", out or self.out, *steps]


def expand(c, item):
    """An argv item: a string (``{tmp}``, ``{out}``, ``{data}`` filled in) or a function of the
    case context returning a string or a list."""
    if callable(item):
        v = item(c)
        return [str(x) for x in v] if isinstance(v, (list, tuple)) else [str(v)]
    return [item.replace("{tmp}", str(c.tmp)).replace("{out}", str(c.out))
                .replace("{data}", str(c.work.data_dir))]


def RUN(kind):
    """The base run of ``kind`` (read only)."""
    return lambda c: c.run(kind)


def COPY(kind, name=None):
    """The case's own copy of the base run of ``kind``."""
    return lambda c: c.copy(kind, name)


def TRAIN(kind, *extra, steps=STEPS):
    """``rnnkit train KIND`` with the tiny base flags, a fresh --out, then ``extra``."""
    return [lambda c: c.train_argv(kind, steps=steps), *extra]


def USE_RUN(kind, run):
    """The command that uses a run of ``kind`` (see USE), on ``run`` (an argv item)."""
    return [run if a == "{run}" else a for a in USE[kind]]


# ---------------------------------------------------------------- cases
@dataclass
class Case:
    cls: str
    name: str
    argv: list
    expect: str = "error"
    setup: object = None        # ctx -> None: write files, copy and damage runs
    check: object = None        # (ctx, Ran) -> None or a problem (str)
    mention: tuple = ()         # the message must contain one of these (str, ctx -> str, or a
                                # compiled pattern it must match)
    timeout: float = 60
    stdin: str = None
    env: dict = None
    runner: object = None       # (case, ctx) -> Ran: cases that are not one plain command


CASES = []


def case(cls, name, argv, expect="error", **kw):
    CASES.append(Case(cls, name, list(argv), expect, **kw))


def writes(*files):
    """A setup writing (name, content) pairs into the case folder."""
    def setup(c):
        for name, content in zip(files[::2], files[1::2]):
            c.write(name, content)
    return setup


def flag_mention(flag):
    name = flag.lstrip("-")
    return (name, name.replace("-", "_"))


# ---- data files
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


def mkdir(name):
    return lambda c: (c.tmp / name).mkdir()


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

    s2 = lambda *a, **k: data_case("seq2seq", *a, **k)
    pairs = FIXTURES["pairs.tsv"]
    s2("a line without a tab", "notab.tsv", pairs + "ich sehe den hund\n", line=241)
    s2("empty target", "notarget.tsv", pairs + "ich sehe\t  \n", line=241)
    s2("2 pairs: too few to split", "two.tsv", "ich\tI\ndu\tyou\n")

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
             ("forecast", "cols.csv", "month,other\n2000-01,1\n2000-02,2\n", "error", None))
    for kind, name, content, expect, line in evals:
        case("data file", f"eval {kind}: {name}", ["eval", RUN(kind), "{tmp}/" + name], expect,
             setup=writes(name, content), mention=file_line(name, line))


# ---- flags
def flag_case(kind, flag, value, expect="error", mention=None, timeout=60):
    case("flag", f"train {kind} {flag} {value}", TRAIN(kind, flag, value), expect,
         mention=mention or flag_mention(flag), timeout=timeout)


def cmd_case(name, argv, expect="error", flag=None, mention=None, **kw):
    case("flag", name, argv, expect, mention=mention or (flag_mention(flag) if flag else ()), **kw)


GRADFLOW = ["gradflow", "--task", "adding", "--lags", "10", "--cells", "lstm", "--steps", "4",
            "--eval-every", "2", "--test-size", "8", "--batch", "4", "--hidden", "4",
            "--explode-gain", "0", "--out", "{out}", "--quiet"]


def add_flag_cases():
    for flag, value in (("--batch", "0"), ("--batch", "abc"), ("--hidden", "0"),
                        ("--dropout", "1.5"), ("--lr", "nan"),
                        ("--weight-decay", "-1"), ("--warmup-steps", "-1"),
                        ("--min-lr-ratio", "-0.5"), ("--max-steps", "-1"),
                        ("--max-minutes", "nan"), ("--eval-every", "0"),
                        ("--eval-tokens", "-1"), ("--batch", "100000")):
        flag_case("lm", flag, value)
    case("flag", "train lm --max-steps 0 (no limit at all)", TRAIN("lm", "--max-steps", "0"),
         mention=("max_steps", "max-steps"))
    case("flag", "train lm --nope (unknown flag)", TRAIN("lm", "--nope"), mention=("--nope",))
    for flag, value in (("--batch", "0"), ("--test-fraction", "-1"),
                        ("--val-fraction", "0.95"), ("--word-dropout", "1.5")):
        flag_case("classify", flag, value)
    for flag, value in (("--batch", "0"), ("--dropout", "2")):
        flag_case("tag", flag, value)
    for value in ("-1", "10"):
        case("flag", f"train tag --column {value} (CoNLL-U)",
             TRAIN("tag", "--data", "{data}/tagged.conllu", "--column", value),
             mention=(value,))
    for flag, value in (("--batch", "0"), ("--window", "0"), ("--season", "-3"),
                        ("--window", "100000"), ("--test-fraction", "0.95")):
        flag_case("forecast", flag, value, mention=("window",) if value == "100000" else None)
    for flag, value in (("--batch", "0"), ("--beam-size", "0"), ("--label-smoothing", "1.5"),
                        ("--test-pairs", "-1"), ("--length-penalty", "nan"), ("--max-len", "2")):
        flag_case("seq2seq", flag, value)
    for flag, value in (("--batch", "0"), ("--cond-size", "0"), ("--val-pairs", "-1")):
        flag_case("cond", flag, value)

    sample = lambda *a: ["sample", RUN("lm"), "--length", "5", *a]
    for flag, value in (("--top-p", "1.5"), ("--top-k", "0"), ("--temperature", "-1"),
                        ("--temperature", "nan"), ("--beam", "-2")):
        cmd_case(f"sample {flag} {value}", sample(flag, value), flag=flag)
    cmd_case("sample --prime ''", sample("--prime", ""), flag="--prime")
    cmd_case("sample --prime with characters not in the vocabulary", sample("--prime", "Zq\u00e6"),
             flag="--prime")
    cond = lambda *a: ["sample", RUN("cond"), *a]
    cmd_case("sample (cond) -n 0", cond("--cond", "Italy", "-n", "0"), mention=("-n",))
    cmd_case("sample (cond) --cond of an unknown label", cond("--cond", "Atlantis"),
             mention=("Atlantis",))
    cmd_case("sample (cond) without --cond", cond(), flag="--cond")
    cmd_case("sample (cond) --temperature nan", cond("--cond", "Italy", "--temperature", "nan"),
             flag="--temperature")
    tr = lambda *a: ["translate", RUN("seq2seq"), "ich sehe", *a]
    cmd_case("translate --beam-size 0", tr("--beam-size", "0"), flag="--beam-size")
    cmd_case("translate --length-penalty nan", tr("--length-penalty", "nan"),
             flag="--length-penalty")
    fc = lambda *a: ["forecast", RUN("forecast"), "--png", "{tmp}/f.png", *a]
    cmd_case("forecast --steps 0", fc("--steps", "0"), flag="--steps")
    cmd_case("forecast --steps -1", fc("--steps", "-1"), flag="--steps")
    cmd_case("forecast --steps 100000 (bounded, or quick)", fc("--steps", "100000"), "either",
             flag="--steps", timeout=60)
    cmd_case("eval seq2seq --beam-size 0",
             ["eval", RUN("seq2seq"), "{data}/pairs.tsv", "--beam-size", "0"], flag="--beam-size")
    cmd_case("eval classify --beam-size 3 (not a classifier option)",
             ["eval", RUN("classify"), "{data}/labels.tsv", "--beam-size", "3"], flag="--beam-size")
    demo = lambda *a: ["demo", "--out", "{tmp}/demo", "--length", "5", *a]
    for value in ("-1", "0", "nan"):
        cmd_case(f"demo --minutes {value}", demo("--minutes", value), flag="--minutes")
    cmd_case("demo --length -1", ["demo", "--out", "{tmp}/demo", "--minutes", "0.001",
                                  "--length", "-1"], flag="--length")
    for flag, value in (("--lags", "1"), ("--hidden", "0"), ("--lr", "-1"), ("--threads", "0"),
                        ("--task", "nope")):
        cmd_case(f"gradflow {flag} {value}", [*GRADFLOW, flag, value], flag=flag)
    cmd_case("data fetch of an unknown name", ["data", "fetch", "nosuch"], mention=("nosuch",))
    cmd_case("data without an action", ["data"])
    cmd_case("kernels --json", ["kernels", "--json"], "either")
    cmd_case("no command", [])
    cmd_case("an unknown command", ["nosuch"], mention=("nosuch",))


# ---- run folders
def add_run_folder_cases():
    rf = lambda name, argv, expect="error", **kw: case("run folder", name, argv, expect, **kw)
    rf("sample: no such path", ["sample", "{tmp}/nothing"], mention=("nothing",))
    rf("sample: an empty folder", ["sample", "{tmp}/empty"], setup=mkdir("empty"),
       mention=("empty",))
    rf("sample: best.pt is a folder", ["sample", COPY("lm")],
       setup=lambda c: (c.copy("lm") / "best.pt").unlink() or (c.tmp / "lm" / "best.pt").mkdir(),
       mention=("best.pt",))
    rf("sample: best.pt deleted, last.pt there", ["sample", COPY("lm"), "--length", "5"],
       setup=lambda c: (c.copy("lm") / "best.pt").unlink(), mention=("best.pt",))
    for kind, other in (("classify", "lm"), ("lm", "classify"), ("tag", "classify"),
                        ("seq2seq", "cond"), ("forecast", "seq2seq")):
        rf(f"{USE[kind][0]} on a {other} run", [expand_use(kind, RUN(other))], mention=(other,))
    rf("eval: a tag run on a classify file", ["eval", RUN("tag"), "{data}/labels.tsv"],
       mention=("labels.tsv",))
    rf("eval: no such data file", ["eval", RUN("lm"), "{tmp}/nope.txt"], mention=("nope.txt",))
    rf("train lm into a finished run without --resume", TRAIN("lm") + ["--out", COPY("lm")],
       mention=("resume",))
    rf("train lm --resume on an empty folder", TRAIN("lm", "--resume", "--out", "{tmp}/empty"),
       setup=mkdir("empty"), mention=("empty",))
    rf("train lm --resume of a classify run", TRAIN("lm", "--resume", "--out", COPY("classify")),
       mention=("classify",))
    rf("train classify --resume of an lm run", TRAIN("classify", "--resume", "--out", COPY("lm")),
       mention=("lm",))
    rf("train lm --resume with a model flag changed (--hidden 32)",
       TRAIN("lm", "--resume", "--out", COPY("lm"), "--max-steps", "5", "--hidden", "32"),
       mention=("hidden",))
    rf("train lm --resume: corpus with new characters appended",
       ["train", "lm", "--out", "{tmp}/own", "--resume", "--max-steps", "6", "--quiet"],
       setup=own_run_changed("\nZebra QUIXOTE 0123456789 \u00e6\u00f8\u00e5!\n"),
       check=vocab_unchanged, mention=("corpus.txt", "--data"))
    rf("train lm --resume: corpus with known characters appended",
       ["train", "lm", "--out", "{tmp}/own", "--resume", "--max-steps", "6", "--quiet"],
       setup=own_run_changed("Romeo Romeo Romeo wherefore " * 40),
       check=vocab_unchanged, mention=("corpus.txt", "--data"))
    rf("train lm --resume: corpus deleted",
       ["train", "lm", "--out", "{tmp}/own", "--resume", "--max-steps", "6", "--quiet"],
       setup=own_run_changed(None), mention=("corpus.txt", "--data"))
    rf("train lm --resume: last.pt a dangling symlink",
       TRAIN("lm", "--resume", "--out", COPY("lm")),
       setup=lambda c: ((c.copy("lm") / "last.pt").unlink(),
                        (c.tmp / "lm" / "last.pt").symlink_to(c.tmp / "gone.pt")),
       mention=("last.pt",))
    rf("train lm --resume: metrics.jsonl garbage", TRAIN("lm", "--resume", "--out", COPY("lm"),
                                                         "--max-steps", "5"), "either",
       setup=lambda c: (c.copy("lm") / "metrics.jsonl").write_bytes(b"\x00garbage{\n[1,2\n"),
       check=lambda c, r: folder_problems(c.tmp / "lm") if r.rc == 0 else None)
    rf("train lm --out ''", TRAIN("lm", "--out", ""), mention=("--out", "out"))


def expand_use(kind, run):
    """The USE command of ``kind`` pointed at ``run``, as one argv item."""
    def items(c):
        return [x for a in USE_RUN(kind, run) for x in expand(c, a)]
    return items


def own_run_changed(appended):
    """A setup training a tiny LM run on the case's own corpus, then appending ``appended`` to
    the corpus (None: deleting it); the vocabulary before is kept for the check."""
    def setup(c):
        corpus = c.write("corpus.txt", ENGLISH)
        flags = c.work.base_flags("lm")
        flags[1] = str(corpus)
        r = run_cli(["train", "lm", *flags, "--out", c.tmp / "own", *BASE_STEPS], c.tmp, 120)
        if r.rc != 0:
            raise Skip(f"own lm run did not train: {(r.err.strip().splitlines() or ['?'])[-1]}")
        c.state["vocab"] = checkpoint_vocab(c.tmp / "own" / "last.pt")
        if appended is None:
            corpus.unlink()
        else:
            with open(corpus, "a", encoding="utf-8") as f:
                f.write(appended)
    return setup


def checkpoint_vocab(path):
    from rnnkit.train.checkpoint import load_checkpoint
    return load_checkpoint(path).get("vocab")


def vocab_unchanged(c, ran):
    if ran.rc != 0:
        return None
    after = checkpoint_vocab(c.tmp / "own" / "last.pt")
    if after != c.state["vocab"]:
        n = sum(a != b for a, b in zip(c.state["vocab"].get("tokens", []), after.get("tokens", [])))
        return f"the resumed run's vocabulary changed ({n} token ids moved or grew)"
    return None


# ---- checkpoints
class Evil:
    """A pickle that runs a shell command when unpickled: a loader must refuse it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def storages(path):
    """[(name, offset, size)] of the tensor storages in a torch zip file, in storage order."""
    if not zipfile.is_zipfile(path):
        return []
    out = []
    with zipfile.ZipFile(path) as z, open(path, "rb") as f:
        for i in z.infolist():
            if re.search(r"/data/\d+$", i.filename) and i.compress_type == zipfile.ZIP_STORED:
                f.seek(i.header_offset)
                n, m = struct.unpack("<HH", f.read(30)[26:30])
                out.append((i.filename, i.header_offset + 30 + n + m, i.file_size))
    return sorted(out, key=lambda s: int(s[0].rsplit("/", 1)[1]))


def flip(nbytes=64, bit=False, which="first"):
    """A damage: XOR ``nbytes`` bytes (or one low bit) in the middle of a tensor's data -- the
    first storage (a model weight) or the last (optimizer or RNG state); not a zip file: at 3/4."""
    def damage(path):
        data = bytearray(path.read_bytes())
        spans = [s for s in storages(path) if s[2] >= 64]
        if spans:
            _, offset, size = spans[0] if which == "first" else spans[-1]
            at = offset + size // 2 - nbytes // 2
        else:
            at = len(data) * 3 // 4
        for k in range(at, at + (1 if bit else nbytes)):
            data[k] ^= 0x01 if bit else 0xFF
        path.write_bytes(bytes(data))
    return damage


def truncate(fraction):
    return lambda path: path.write_bytes(path.read_bytes()[:int(path.stat().st_size * fraction)])


def replace_bytes(old, new):
    """Edit bytes inside the pickle (the settings) without a new digest: 'lstm' -> 'lsTm'."""
    def damage(path):
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if n.endswith("data.pkl"))
        raw = path.read_bytes()
        if old not in raw:
            raise Skip(f"{old!r} not found in {path.name} ({name})")
        path.write_bytes(raw.replace(old, new, 1))
    return damage


def torch_save(make):
    """A damage replacing the file with ``torch.save(make(path))``."""
    def damage(path):
        import torch
        torch.save(make(path), path)
    return damage


def raw_pickle(make):
    def damage(path):
        path.write_bytes(pickle.dumps(make(path), protocol=2))
    return damage


def resigned(change):
    """A damage that edits the loaded checkpoint and saves it again with rnnkit's own writer,
    so the file is intact and only its content is wrong (a valid digest over bad settings)."""
    def damage(path):
        from rnnkit.train.checkpoint import load_checkpoint, save_checkpoint
        ck = load_checkpoint(path)
        change(ck)
        for k in ("format", "version", "digest"):
            ck.pop(k, None)
        save_checkpoint(path, ck)
    return damage


def raw_saved(change):
    """A damage that saves the loaded checkpoint again with plain torch.save (no new digest)."""
    def damage(path):
        import torch
        from rnnkit.train.checkpoint import load_checkpoint
        ck = load_checkpoint(path)
        change(ck)
        torch.save(ck, path)
    return damage


def set_config(section, key, value):
    return lambda ck: ck[section].__setitem__(key, value)


def first_weight(fn):
    def change(ck):
        k = next(iter(ck["model"]))
        ck["model"][k] = fn(ck["model"][k])
    return change


def damaged(kind, filename, damage):
    """A setup copying the base run of ``kind`` and damaging its ``filename``; the bytes of
    every checkpoint after the damage are kept for the check."""
    def setup(c):
        run = c.copy(kind)
        before = (run / filename).read_bytes()
        damage(run / filename)
        if (run / filename).read_bytes() == before:
            raise Skip(f"the damage left {filename} unchanged")
        c.state["files"] = {p.name: p.read_bytes() for p in run.glob("*.pt")}
    return setup


def not_executed(c, ran):
    if c.marker.exists():
        return "CODE RAN: the pickle's command created its marker file"
    return None


def checkpoints_untouched(kind):
    def check(c, ran):
        now = {p.name: p.read_bytes() for p in (c.tmp / kind).glob("*.pt")}
        if now != c.state.get("files"):
            return "a checkpoint was rewritten from the damaged one"
        return None
    return check


def ck_case(kind, name, damage, filename="best.pt", argv=None, check=None, mention=None, **kw):
    case("checkpoint", f"{kind}: {name}", argv or [expand_use(kind, COPY(kind))], "error",
         setup=damaged(kind, filename, damage), check=check,
         mention=mention or (filename,), **kw)


def add_checkpoint_cases():
    ck_case("lm", "64 bytes flipped in a weight's data", flip(64))
    ck_case("lm", "one bit flipped in a weight's data", flip(1, bit=True))
    ck_case("lm", "64 bytes flipped in the optimizer/RNG state", flip(64, which="last"))
    ck_case("lm", "settings edited in the pickle (lstm -> lsTm)", replace_bytes(b"lstm", b"lsTm"))
    ck_case("lm", "truncated to half", truncate(0.5))
    ck_case("lm", "a foreign torch file ({'w': tensor})",
            torch_save(lambda p: {"w": __import__("torch").zeros(3)}))
    ck_case("lm", "a whole pickled nn.Module",
            torch_save(lambda p: __import__("torch").nn.Linear(2, 2)))
    ck_case("lm", "a torch file whose pickle runs a command",
            torch_save(lambda p: {"format": "rnnkit-checkpoint", "version": 2,
                                  "model": Evil(p.parent.parent / "EXECUTED")}),
            check=not_executed)
    ck_case("lm", "a plain pickle that runs a command",
            raw_pickle(lambda p: Evil(p.parent.parent / "EXECUTED")), check=not_executed)
    ck_case("lm", "version 99", raw_saved(lambda ck: ck.update(version=99)))
    ck_case("lm", "digest removed", raw_saved(lambda ck: None))
    ck_case("lm", "config hidden=10**9 (re-signed)",
            resigned(set_config("model_config", "hidden", 10**9)), mention=("hidden",))
    ck_case("lm", "config hidden=-4 (re-signed)",
            resigned(set_config("model_config", "hidden", -4)), mention=("hidden",))
    ck_case("lm", "config cell='nope' (re-signed)",
            resigned(set_config("model_config", "cell", "nope")), mention=("cell",))
    ck_case("lm", "vocabulary 3 tokens short (re-signed)",
            resigned(lambda ck: ck["vocab"].update(tokens=ck["vocab"]["tokens"][:-3])))
    ck_case("lm", "a weight missing (re-signed)",
            resigned(lambda ck: ck["model"].pop(next(iter(ck["model"])))))
    ck_case("lm", "a weight of the wrong shape (re-signed)",
            resigned(first_weight(lambda t: t.new_zeros(2, 2))))
    ck_case("lm", "NaN weights (re-signed)", resigned(first_weight(lambda t: t * float("nan"))))
    ck_case("lm", "kind set to classify (re-signed), used by predict",
            resigned(lambda ck: ck.update(kind="classify")),
            argv=["predict", COPY("lm"), "a good film"])
    resume = lambda *a: ["train", "lm", "--out", COPY("lm"), "--resume", "--max-steps", "6",
                         "--quiet", *a]
    ck_case("lm", "--resume from last.pt with 64 bytes flipped", flip(64), "last.pt",
            argv=resume(), check=checkpoints_untouched("lm"))
    ck_case("lm", "--resume from last.pt with the RNG/optimizer state flipped",
            flip(64, which="last"), "last.pt", argv=resume(), check=checkpoints_untouched("lm"))
    ck_case("lm", "--resume: last.pt train config lr=-1 (re-signed)",
            resigned(set_config("train_config", "lr", -1.0)), "last.pt", argv=resume(),
            mention=("lr",))
    ck_case("lm", "--resume: last.pt data config batch=0 (re-signed)",
            resigned(set_config("data_config", "batch", 0)), "last.pt", argv=resume(),
            mention=("batch",))
    for kind in ("classify", "tag", "forecast", "seq2seq", "cond"):
        ck_case(kind, "64 bytes flipped in a weight's data", flip(64))
        if kind == "seq2seq":
            ck_case(kind, "truncated to half", truncate(0.5))
        ck_case(kind, "config hidden=10**9 (re-signed)",
                resigned(set_config("model_config", "hidden", 10**9)), mention=("hidden",))


# ---- output and the OS
def ro_dir(c, name="ro"):
    """A folder this process cannot write into: chmod 555, or for root a read-only tmpfs."""
    path = c.tmp / name
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        c.cleanups.append(lambda: path.chmod(0o755))
        return path
    mount(c, path, "ro,size=64k")
    return path


def full_dir(c, name="full"):
    """A 16 KB tmpfs, filled up: every write there fails with 'no space left on device'."""
    path = c.tmp / name
    path.mkdir()
    mount(c, path, "size=16k")
    try:
        with open(path / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass
    return path


def mount(c, path, options):
    if os.geteuid() != 0 or not shutil.which("mount"):
        raise Skip("needs root to mount a tmpfs")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise Skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    c.cleanups.append(lambda: subprocess.run(["umount", "-l", str(path)], capture_output=True))


def pipe_runner(case_, c):
    """Run the command with its output going into a pipe that is closed after one byte, as
    ``| head -c1`` does."""
    argv = [x for a in case_.argv for x in expand(c, a)]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cli() + argv, cwd=c.tmp, stdout=subprocess.PIPE, stderr=err,
                             stdin=subprocess.DEVNULL, preexec_fn=limits, start_new_session=True)
        p.stdout.read(1)
        p.stdout.close()
        try:
            p.wait(timeout=case_.timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            kill_group(p)
            p.wait()
            timed_out = True
        err.seek(0)
        return Ran(p.returncode, "", err.read().decode("utf-8", "replace"),
                   time.perf_counter() - t0, timed_out)


def closed_stdout_runner(case_, c):
    argv = [x for a in case_.argv for x in expand(c, a)]
    return run_cli(argv, c.tmp, case_.timeout, preexec=lambda: os.close(1))


def add_output_cases():
    out = lambda name, argv, expect="error", **kw: case("output/OS", name, argv, expect, **kw)
    many = lambda n, line: writes("many.txt", (line + "\n") * n)
    out("sample | head -c1", ["sample", RUN("lm"), "--length", "20000"], "pipe", runner=pipe_runner)
    out("predict --file (3000 lines) | head -c1",
        ["predict", RUN("classify"), "--file", "{tmp}/many.txt"], "pipe",
        setup=many(3000, "a good film"), runner=pipe_runner)
    out("tag --file (3000 lines) | head -c1", ["tag", RUN("tag"), "--file", "{tmp}/many.txt"],
        "pipe", setup=many(3000, "the cat sat"), runner=pipe_runner)
    out("translate --file (500 lines) | head -c1",
        ["translate", RUN("seq2seq"), "--file", "{tmp}/many.txt", "--beam-size", "1"], "pipe",
        setup=many(500, "ich sehe den hund"), runner=pipe_runner)
    out("forecast --steps 2000 | head -c1",
        ["forecast", RUN("forecast"), "--steps", "2000", "--png", "{tmp}/f.png"], "pipe",
        runner=pipe_runner)
    out("sample with standard output closed", ["sample", RUN("lm"), "--length", "50"], "either",
        runner=closed_stdout_runner)
    out("train lm --out an existing file", TRAIN("lm", "--out", "{tmp}/taken"),
        setup=writes("taken", "a file\n"), mention=("taken",))
    out("train lm --out under a file", TRAIN("lm", "--out", "{tmp}/taken/run"),
        setup=writes("taken", "a file\n"), mention=("taken",))
    out("train lm --out in a read-only folder", TRAIN("lm", "--out", "{tmp}/ro/run"),
        setup=lambda c: ro_dir(c), mention=("ro/run", "ro"))
    out("train lm --out under /proc", TRAIN("lm", "--out", "/proc/rnnkit-bad/run"),
        mention=("/proc/rnnkit-bad",))
    out("train lm --out on a full disk", TRAIN("lm", "--out", "{tmp}/full/run"),
        setup=lambda c: full_dir(c), mention=("space",))
    out("demo --out an existing file", ["demo", "--out", "{tmp}/taken", "--minutes", "0.001"],
        setup=writes("taken", "a file\n"), mention=("taken",))
    fc = lambda png: ["forecast", RUN("forecast"), "--steps", "3", "--png", png]
    out("forecast --png under /proc", fc("/proc/rnnkit-bad/f.png"), mention=("/proc/rnnkit-bad",))
    out("forecast --png an existing folder", fc("{tmp}/adir"), setup=mkdir("adir"),
        mention=("adir",))
    out("forecast --png on a full disk", fc("{tmp}/full/f.png"), setup=lambda c: full_dir(c),
        mention=("space",))
    out("forecast --png in a folder not yet there", fc("{tmp}/new/sub/f.png"), "either")
    out("translate --plot under /proc",
        ["translate", RUN("seq2seq"), "ich sehe", "--plot", "/proc/rnnkit-bad/a.png"],
        mention=("/proc/rnnkit-bad",))
    out("eval --out under /proc", ["eval", RUN("classify"), "{data}/labels.tsv", "--out",
                                   "/proc/rnnkit-bad/m.json"], mention=("/proc/rnnkit-bad",))


# ---- interrupted and concurrent runs
LONG = ["--max-steps", "100", "--eval-every", "5", "--warmup-steps", "0", "--quiet"]


def metric_rows(run):
    path = Path(run) / "metrics.jsonl"
    return len(path.read_text(errors="replace").splitlines()) if path.exists() else 0


def wait_for(test, p, timeout=60):
    """Poll ``test()`` until true; False if the process ended or time ran out first."""
    t_end = time.time() + timeout
    while time.time() < t_end:
        if test():
            return True
        if p.poll() is not None:
            return False
        time.sleep(0.002)
    return False


def tmp_files(run):
    return [p.name for p in Path(run).glob(".*.tmp")]


def folder_problems(run):
    """What is out of step in a finished run folder: leftovers, metric rows, checkpoints."""
    from rnnkit.train.checkpoint import load_checkpoint
    run, problems = Path(run), []
    if not (run / "metrics.jsonl").exists():
        return ["no metrics.jsonl"]
    if tmp_files(run):
        problems.append(f"orphaned temporary files {tmp_files(run)}")
    rows, bad = [], 0
    for line in (run / "metrics.jsonl").read_text(errors="replace").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            bad += 1
    if bad:
        problems.append(f"{bad} unreadable metrics.jsonl line(s)")
    steps = [r.get("step") for r in rows]
    if any(b <= a for a, b in zip(steps, steps[1:])):
        dup = sorted(s for s, n in Counter(steps).items() if n > 1)
        problems.append(f"metrics.jsonl steps not increasing (repeated: {dup[:5]})")
    try:
        last, best = load_checkpoint(run / "last.pt"), load_checkpoint(run / "best.pt")
    except Exception as e:   # the report names what failed
        return problems + [f"a checkpoint does not load: {str(e)[:200]}"]
    lt, bt = last.get("trainer", {}), best.get("trainer", {})
    if steps and lt.get("step") != steps[-1]:
        problems.append(f"last.pt is at step {lt.get('step')}, metrics.jsonl ends at {steps[-1]}")
    vals = [r["val_loss"] for r in rows if isinstance(r.get("val_loss"), (int, float))]
    if vals and abs(min(vals) - lt.get("best_val", float("nan"))) > 1e-9:
        problems.append(f"last.pt's best_val {lt.get('best_val')} is not the best val_loss "
                        f"{min(vals)} in metrics.jsonl")
    if lt.get("best_val") != bt.get("best_val"):
        problems.append(f"best.pt (best_val {bt.get('best_val')}, step {bt.get('step')}) is older "
                        f"than the best last.pt records ({lt.get('best_val')})")
    summary = run / "metrics.json"
    if summary.exists() and json.loads(summary.read_text()).get("steps") != lt.get("step"):
        problems.append("metrics.json's steps differ from last.pt's")
    return problems


def describe(problems):
    return "; ".join(problems) if problems else None


def concurrent_runner(kind, second_resumes=False):
    """Two ``train KIND`` on one --out: the second starts while the first trains. The case is
    judged on the one that fails (one of them must be refused), or on both exiting 0."""
    def runner(case_, c):
        def go(resume):
            argv = [*c.train_argv(kind, steps=LONG)] + (["--resume"] if resume else [])
            return start(argv, c.tmp)
        t0 = time.perf_counter()
        a = go(False)
        if second_resumes:
            wait_for(lambda: (c.out / "last.pt").exists(), a)
        else:
            time.sleep(1.0)
        b = go(second_resumes)
        ra, rb = finish(a, t0, case_.timeout), finish(b, t0, case_.timeout)
        c.state["both"] = (ra, rb)
        if ra.timed_out or rb.timed_out:
            return ra if ra.timed_out else rb
        return rb if rb.rc != 0 or ra.rc == 0 else ra
    return runner


def concurrent_check(c, ran):
    ra, rb = c.state["both"]
    if ra.rc != 0 and rb.rc != 0:
        return "both runs failed"
    return describe(folder_problems(c.out))


def killed_runner(kills=3, sig=signal.SIGKILL):
    """Train, signal the run (kill -9: the first and the last time while it writes a temporary
    checkpoint file), ``--resume``, ``kills`` times; then --resume to the end. Judged on the
    last --resume (kill -9) or on the first signalled run (SIGINT, SIGTERM)."""
    def runner(case_, c):
        first = None
        for k in range(kills):
            argv = c.train_argv("lm", steps=LONG) + (["--resume"] if k else [])
            t0 = time.perf_counter()
            p = start(argv, c.tmp)
            rows = metric_rows(c.out)
            wait_for(lambda: metric_rows(c.out) >= rows + 2, p)
            if sig == signal.SIGKILL and k % 2 == 0:
                saving = wait_for(lambda: tmp_files(c.out), p, timeout=5)
                c.state.setdefault("mid-save", []).append(saving)
            else:
                time.sleep(random.Random(k).uniform(0, 0.2))
            kill_group(p, sig) if sig == signal.SIGKILL else p.send_signal(sig)
            r = finish(p, t0, case_.timeout)
            c.state.setdefault("signalled", []).append(r.rc)
            c.state.setdefault("left", []).append(tmp_files(c.out) or "nothing")
            first = first or r
        c.state["note"] = (f"signalled runs exited {c.state['signalled']}; killed while a "
                           f"temporary file was there: {c.state.get('mid-save', '-')}; left after "
                           f"each: {c.state['left']}")
        final = run_cli(c.train_argv("lm", steps=LONG) + ["--resume"], c.tmp, case_.timeout)
        c.state["final"] = final
        return final if sig == signal.SIGKILL else first
    return runner


def killed_check(c, ran):
    final = c.state["final"]
    if final.rc != 0:
        tail = (final.err.strip().splitlines() or ["?"])[-1]
        return f"--resume after the signal failed: {tail}"
    return describe(folder_problems(c.out))


def add_interrupt_cases():
    ic = lambda name, expect, **kw: case("interrupt/concurrency", name, [], expect, timeout=120,
                                         **kw)
    ic("two train lm on one --out at once", "error", runner=concurrent_runner("lm"),
       check=concurrent_check, mention=("run",))
    ic("two train classify on one --out at once", "error", runner=concurrent_runner("classify"),
       check=concurrent_check, mention=("run",))
    ic("train lm --resume while the run still trains", "error",
       runner=concurrent_runner("lm", second_resumes=True), check=concurrent_check,
       mention=("run",))
    ic("kill -9 twice (once mid-save), then --resume", "ok", runner=killed_runner(2),
       check=killed_check)
    ic("Ctrl-C (SIGINT) mid-run, then --resume", "interrupt",
       runner=killed_runner(1, signal.SIGINT), check=killed_check)
    ic("SIGTERM mid-run, then --resume", "interrupt", runner=killed_runner(1, signal.SIGTERM),
       check=killed_check)
    ic("kill -9 mid-run, then the same command without --resume", "error",
       runner=restart_runner, mention=("resume",))


def restart_runner(case_, c):
    p = start(c.train_argv("lm", steps=LONG), c.tmp)
    wait_for(lambda: metric_rows(c.out) >= 2, p)
    kill_group(p)
    p.wait()
    return run_cli(c.train_argv("lm", steps=LONG), c.tmp, case_.timeout)


# ---------------------------------------------------------------- judging
ERROR_LINE = re.compile(r"^rnnkit(?: [\w-]+)*: error: ")
INTERNAL = re.compile(r"^rnnkit: error: internal error")


def message_lines(err):
    """The non-empty stderr lines outside argparse's usage block."""
    lines, in_usage = [], False
    for line in err.splitlines():
        if line.startswith("usage:"):
            in_usage = True
            continue
        if in_usage and line[:1].isspace():
            continue
        in_usage = False
        if line.strip():
            lines.append(line)
    return lines


def judge(case_, c, ran):
    """(outcome, reason) of one run of a case."""
    err = ran.err
    lines = message_lines(err)
    last = lines[-1].strip() if lines else ""
    if ran.timed_out:
        return "hang", f"still running after {case_.timeout:g} s"
    if "Traceback (most recent call last)" in err:
        return "traceback", last[:300]
    if case_.expect == "pipe":
        return ("ok", "") if len(lines) <= 1 else ("unclear", f"{len(lines)} lines: {last[:200]}")
    if case_.expect == "interrupt":
        if ran.rc == 0:
            return "accepted", "exit 0 after the signal"
        if len(lines) > 2:
            return "unclear", f"{len(lines)} lines: {last[:200]}"
        return "clear", last or f"exit {ran.rc}, nothing on stderr"
    if ran.rc == 0:
        return ("ok", "") if case_.expect in ("ok", "either") else ("accepted", "exit 0")
    if case_.expect == "ok":
        return "failed", f"exit {ran.rc}: {last[:300]}"
    if ran.rc < 0:
        return "unclear", f"killed by signal {-ran.rc}" + (f": {last[:200]}" if last else "")
    if not last:
        return "unclear", f"exit {ran.rc} and nothing on stderr"
    if INTERNAL.match(last):
        return "internal", last[:300]
    if not ERROR_LINE.match(last):
        return "unclear", f"not an 'rnnkit: error:' line: {last[:300]}"
    if len(lines) > 3:
        return "unclear", f"{len(lines)} lines of stderr; last: {last[:250]}"
    wanted = [m(c) if callable(m) else m if isinstance(m, re.Pattern) else
              m.replace("{tmp}", str(c.tmp)) for m in case_.mention]
    if wanted and not any(w.search(last) if isinstance(w, re.Pattern) else w in last
                          for w in wanted):
        return "unclear", f"does not name {wanted[0]!r}: {last[:250]}"
    return "clear", last[:300]


def run_case(i, case_, work, keep):
    folder = work.root / "cases" / f"{i:03d}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    c = Ctx(work, folder)
    result = {"class": case_.cls, "name": case_.name, "expect": case_.expect}
    try:
        if case_.setup:
            case_.setup(c)
        argv = [x for a in case_.argv for x in expand(c, a)]
        result["argv"] = "rnnkit " + " ".join(argv).replace(str(work.root), "$W")
        if case_.runner:
            ran = case_.runner(case_, c)
        else:
            env = None
            if case_.env:
                env = {**os.environ, **{k: v.replace("{tmp}", str(c.tmp))
                                        for k, v in case_.env.items()}}
            ran = run_cli(argv, c.tmp, case_.timeout, case_.stdin, env)
        outcome, reason = judge(case_, c, ran)
        problem = case_.check(c, ran) if case_.check else None
        if problem:
            reason = f"{reason}; CHECK: {problem}" if reason else f"CHECK: {problem}"
            if outcome in ("ok", "clear"):
                outcome = "check-failed"
        if c.state.get("note"):
            result["note"] = c.state["note"]
        result.update(outcome=outcome, reason=reason, rc=ran.rc, seconds=round(ran.seconds, 1),
                      stderr_tail=ran.err.strip().splitlines()[-4:])
    except Skip as e:
        result.update(outcome="skipped", reason=str(e), stderr_tail=[])
    except Exception as e:   # a broken case is reported, not fatal to the campaign
        result.update(outcome="skipped", reason=f"case error: {type(e).__name__}: {e}",
                      stderr_tail=[])
    finally:
        for undo in reversed(c.cleanups):
            undo()
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    return result


# ---------------------------------------------------------------- report
def table(results):
    classes = list(dict.fromkeys(r["class"] for r in results))
    cols = [o for o in OUTCOMES if any(r["outcome"] == o for r in results)]
    width = max(len(c) for c in classes + ["class", "all"])
    head = f"{'class':<{width}}  {'cases':>5}  " + "  ".join(f"{o:>{max(len(o), 5)}}" for o in cols)
    lines = [head, "-" * len(head)]
    for cls in classes + ["all"]:
        rs = [r for r in results if cls in ("all", r["class"])]
        n = Counter(r["outcome"] for r in rs)
        lines.append(f"{cls:<{width}}  {len(rs):>5}  " +
                     "  ".join(f"{n.get(o, 0):>{max(len(o), 5)}}" for o in cols))
    return "\n".join(lines)


def report(results):
    print("\n" + table(results))
    bad = [r for r in results if r["outcome"] not in ("clear", "ok")]
    if bad:
        print(f"\n{len(bad)} cases neither clear nor ok:")
    for r in bad:
        print(f"\n[{r['outcome']}] {r['class']}: {r['name']}  (expected {r['expect']})")
        if r.get("argv"):
            print(f"    $ {r['argv'][:300]}")
        print(f"    {r['reason']}")
        for line in r["stderr_tail"][-3:] if r["outcome"] != "skipped" else []:
            print(f"    | {line[:200]}")
    notes = [r for r in results if r.get("note")]
    if notes:
        print("\nnotes:")
    for r in notes:
        print(f"  {r['name']}: {r['note']}")


def all_cases():
    if not CASES:
        for add in (add_data_cases, add_flag_cases, add_run_folder_cases, add_checkpoint_cases,
                    add_output_cases, add_interrupt_cases):
            add()
    return CASES


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", help="run only this class (repeatable; a prefix "
                   "is enough: data, flag, run, checkpoint, output, interrupt)")
    p.add_argument("-k", action="append", help="run only cases whose class or name contains this")
    p.add_argument("--jobs", type=int, default=1, help="cases run at once (default 1)")
    p.add_argument("--json", type=Path, help="write every result to this file")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    p.add_argument("--workdir", type=Path, help="scratch folder (default: a new temporary one)")
    args = p.parse_args(argv)

    cases = list(enumerate(all_cases()))
    if args.only:
        cases = [(i, c) for i, c in cases if any(c.cls.startswith(o) for o in args.only)]
    if args.k:
        cases = [(i, c) for i, c in cases
                 if any(k.lower() in f"{c.cls}: {c.name}".lower() for k in args.k)]
    if args.list:
        for i, c in cases:
            print(f"{i:3d}  {c.cls:<22} {c.name}  [{c.expect}]")
        print(f"{len(cases)} cases: " + ", ".join(f"{k} {v}" for k, v in
                                                 Counter(c.cls for _, c in cases).items()))
        return 0
    root = Path(args.workdir or tempfile.mkdtemp(prefix="rnnkit-bad-inputs-"))
    work = Work(root)
    print(f"{len(cases)} cases, scratch folder {root}", flush=True)
    t0 = time.perf_counter()
    results = [None] * len(cases)

    def one(k):
        i, c = cases[k]
        r = run_case(i, c, work, args.keep)
        results[k] = r
        print(f"{k + 1:3d}/{len(cases)} {r['outcome']:<12} {r.get('seconds', 0):5.1f}s  "
              f"{c.cls}: {c.name}", flush=True)

    serial = [k for k, (_, c) in enumerate(cases) if c.cls == "interrupt/concurrency"]
    parallel = [k for k in range(len(cases)) if k not in serial]
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        list(pool.map(one, parallel))
    for k in serial:   # timing-sensitive: alone on the machine
        one(k)
    report(results)
    print(f"\n{len(results)} cases in {(time.perf_counter() - t0) / 60:.1f} min")
    if args.json:
        args.json.write_text(json.dumps({"summary": table(results), "results": results},
                                        indent=1, ensure_ascii=False) + "\n")
        print(f"-> {args.json}")
    if not args.keep and not args.workdir:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
