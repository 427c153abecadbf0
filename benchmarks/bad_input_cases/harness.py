"""Running the ``rnnkit`` console script under limits, the campaign's scratch folder, and the
Case registry: what every class of bad-input case is built from."""
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .fixtures import BASE, BASE_STEPS, FIXTURES, STEPS, USE

# ---------------------------------------------------------------- running the console script
MEMORY_LIMIT = 6 << 30   # bytes of address space per case: a 256 GB allocation fails at once


def cli():
    """The command that runs rnnkit: the console script beside this Python, else ``-m``."""
    exe = Path(sys.executable).with_name("rnnkit")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "rnnkit.cli.main"]


class Skip(Exception):
    """A case that cannot be prepared here; it is reported as skipped with the reason."""


@dataclass
class Ran:
    rc: int
    out: str
    err: str
    seconds: float
    timed_out: bool = False


def limits():
    """In the child: a cap on address space (a huge allocation fails instead of paging) and a
    session of its own, so a timeout can end the command and anything it started; Ctrl-C at
    its default, as at a terminal (a campaign started in the background, ``... &``, passed on
    SIGINT ignored, and the Ctrl-C case's run trained on to its end and exited 0)."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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


def expand_use(kind, run):
    """The USE command of ``kind`` pointed at ``run``, as one argv item."""
    def items(c):
        return [x for a in USE_RUN(kind, run) for x in expand(c, a)]
    return items


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


def mkdir(name):
    return lambda c: (c.tmp / name).mkdir()
