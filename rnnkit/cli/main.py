"""Entry point of the ``rnnkit`` console script: argparse subcommands, each in its own module.

    rnnkit data list | data fetch NAME
    rnnkit train lm ...            (later: train classify | tag | forecast | seq2seq | cond)
    rnnkit sample RUN ...          (a conditional generator: sample RUN --cond LABEL -n N)
    rnnkit translate RUN TEXT ...
    rnnkit predict RUN TEXT ... | tag RUN SENTENCE ... | forecast RUN --steps N
    rnnkit eval RUN FILE [--json]  (score a trained run on a data file of its task)
    rnnkit demo --minutes N
    rnnkit gradflow --task adding --lags 10 50 100 200 --preset quick
    rnnkit kernels                 (build the fused CPU kernels now; show which path runs)

Every failure ends in one line on stderr, ``rnnkit: error: ...``, and a non-zero exit: 2 for bad
input (data, flags, checkpoints, a run folder in use), 1 for a run that failed (it learned nothing,
an OS error such as no space left), 130 on Ctrl-C, 141 when the reader of the output went away
(``| head``). ``--debug`` (or RNNKIT_DEBUG=1) shows Python's traceback instead.
"""
import argparse
import contextlib
import difflib
import errno
import io
import os
import re
import signal
import sys
import threading
import warnings

from rnnkit import __version__, debug_asked, one_line_warning
from rnnkit.cli import data, demo, gradflow, sample, train, translate
from rnnkit.cli import check_cell, evaluate, forecast, kernels, predict, recognize, tag
from rnnkit.cli import view
from rnnkit.cli import export

COMMANDS = {"data": data, "train": train, "sample": sample, "demo": demo, "translate": translate,
            "gradflow": gradflow, "predict": predict, "tag": tag, "forecast": forecast,
            "kernels": kernels, "eval": evaluate, "check-cell": check_cell,
            "recognize": recognize, "view": view, "export": export}

# OS errors a user can act on, as the words of the one-line message
OS_HINTS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
            errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
            errno.EROFS: "read-only file system", errno.ENOTDIR: "a part of the path is not a folder",
            errno.EISDIR: "is a folder, a file was expected", errno.ENOENT: "no such file or folder",
            errno.ENAMETOOLONG: "file name too long",
            # mkdir of a folder where a file (or a dangling link) already has the name
            errno.EEXIST: "a file (or a link) has that name, where a folder was expected"}


def build_parser():
    parser = argparse.ArgumentParser(prog="rnnkit", description="Recurrent networks for PyTorch: "
                                     "train and sample language models, and more.")
    parser.add_argument("--debug", action="store_true",
                        help="show Python tracebacks instead of one-line errors (anywhere on the "
                             "command line, or RNNKIT_DEBUG=1)")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        module.add_parser(sub)
    return parser


# the commands' trailing texts (nargs="*" after the run): argparse (before Python 3.12) gives
# them nothing when an option comes between the run and them, and calls them unrecognised
TRAILING = ("texts", "sentences", "text")


def parse(parser, argv):
    """``parser.parse_args(argv)``, but ``predict RUN --json "great film"`` reads as
    ``predict RUN "great film" --json`` does: words argparse left over go to the command's
    trailing texts where it has them."""
    args, extra = parser.parse_known_args(argv)
    field = next((f for f in TRAILING if isinstance(getattr(args, f, None), list)), None)
    # after "--" every word is a text, "-bad film" too (argparse leaves "--" and them over
    # when an option comes before it)
    cut = extra.index("--") if "--" in extra else len(extra)
    words, texts = extra[:cut], extra[cut + 1:]
    if extra and field and not any(e.startswith("-") and e != "-" for e in words):
        setattr(args, field, getattr(args, field) + words + texts)
    elif extra:
        command = innermost(parser, argv)      # its usage, not the top level's
        flags = [o[2:] for a in command._actions for o in a.option_strings if o[:2] == "--"]
        near = next((difflib.get_close_matches(e[2:].split("=")[0], flags, 1, 0.75)
                     for e in extra if e.startswith("--")), [])
        command.error(f"unrecognized arguments: {' '.join(extra)}"
                      + (f" (did you mean --{near[0]}?)" if near else ""))
    return args


def memory_advice(argv):
    """What the command ``argv`` names can make smaller, by its own flags."""
    command = innermost(build_parser(), argv)
    have = {o for a in command._actions for o in a.option_strings}
    sizes = [f for f in ("--lags", "--test-size", "--batch", "--hidden", "--seq-len",
                         "--max-len") if f in have]
    fit = "; --no-linear-start leaves out the bag's fit before training" \
        if "--no-linear-start" in have else ""
    return f"try a smaller {', '.join(sizes)}{fit}" if sizes else "try a smaller input"


def innermost(parser, argv):
    """The (sub)parser of the command ``argv`` names (``train lm``: the lm parser); an option
    before the command's words is the level's where it stands (``rnnkit --bogus train``)."""
    first = next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))
    if any(a.startswith("-") for a in argv[:first]):
        return parser
    words = iter(a for a in argv if not a.startswith("-"))
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        word = next(words, None) if subs else None
        if word is None or word not in subs[0].choices:
            return parser
        parser = subs[0].choices[word]


def parse_on_rank_zero(parser, argv):
    """:func:`parse`, where under torchrun, whose ranks all parse the same command line, rank 0
    alone prints argparse's usage, errors and help; the other ranks exit as it does, silently."""
    if rank() == "0":
        return parse(parser, argv)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return parse(parser, argv)


def rank():
    """This process's rank under torchrun (its RANK where WORLD_SIZE is over 1), else "0"."""
    return os.environ.get("RANK", "0") if os.environ.get("WORLD_SIZE", "1") != "1" else "0"


def os_error_text(e):
    """One line for an OSError: the file(s) and what the system said, in plain words."""
    what = OS_HINTS.get(e.errno, e.strerror or type(e).__name__)
    files = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
    return f"{files}: {what}" if files else what


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_asked(argv)
    argv = [a for a in argv if a != "--debug"]
    args = parse_on_rank_zero(build_parser(), argv)
    if sys.stdout is None or sys.stderr is None:   # started with a closed stdout or stderr (>&-)
        if sys.stderr is not None:
            print("rnnkit: error: standard output is closed; nothing could be written",
                  file=sys.stderr)
        return 1
    if args.command not in ("train", "demo") and rank() != "0":   # under torchrun, a command
        return 0   # that trains on no rank (eval, sample, export...) is rank 0's: once, not twice
    if args.command == "train":   # a log line (a path, a sample) the terminal's encoding cannot
        escape_unprintable(sys.stdout)   # show must not end a run whose work is done
    if debug:
        return args.func(args) or 0
    from rnnkit.cells.base import CellError
    from rnnkit.config import ConfigError
    from rnnkit.data import DataError
    from rnnkit.train import CheckpointError
    from rnnkit.train.runlock import RunLockError
    from rnnkit.train.trainer import TrainingError
    show_warning = warnings.formatwarning
    warnings.formatwarning = one_line_warning
    terminate = on_sigterm()
    try:
        return args.func(args) or 0
    except (DataError, CheckpointError, ConfigError, RunLockError, CellError) as e:
        return fail(e, 2)
    except TrainingError as e:
        return fail(e, 1)
    except BrokenPipeError:   # the reader of our output went away (| head): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as e:
        return fail(os_error_text(e), 1)
    except UnicodeEncodeError as e:   # printing: a terminal in another encoding than UTF-8
        bad = e.object[e.start:e.end] if isinstance(e.object, str) else ""
        if any("\ud800" <= c <= "\udfff" for c in bad):   # the bytes of an argument (or a
            return fail(f"text that is not valid UTF-8: {e}", 2)   # name) that is not UTF-8
        where = getattr(sys.stdout, "encoding", None) or "?"
        return fail(f"the output holds characters that this terminal's encoding ({where}) "
                    f"cannot show ({e.object[e.start:e.end]!r}); use a UTF-8 locale (e.g. "
                    f"LC_ALL=C.UTF-8) or set PYTHONIOENCODING=utf-8", 1)
    except UnicodeError as e:
        return fail(f"text that is not valid UTF-8: {e}", 2)
    except MemoryError:
        return fail(f"out of memory ({memory_advice(argv)})", 1)

    except Terminated as e:   # kill, a scheduler's stop: files half-written are removed as on Ctrl-C
        return stopped(e)
    except KeyboardInterrupt as e:
        return stopped(e)
    except Exception as e:   # a defect of rnnkit: one line, the traceback with --debug
        top = (getattr(e, "name", None) or "").split(".")[0]
        if isinstance(e, ModuleNotFoundError) and top and top != "rnnkit":   # a dependency
            # this environment lacks (pip --no-deps, a conda env): what to install
            return fail(f"this needs the Python package {top!r}, which is not installed here "
                        f"(pip install {PIP_NAMES.get(top, top)}; rnnkit's dependencies: "
                        f"its pyproject.toml)", 1)
        first = first_cause(e)
        if first is not None:   # a signal or a full disk inside torch's writer, which raised
            return stopped(first) if isinstance(first, KeyboardInterrupt) else \
                fail(os_error_text(first), 1)   # again as it closed the file
        if isinstance(e, RuntimeError) and OUT_OF_MEMORY.search(str(e)):   # torch's allocator
            asked = re.search(r"allocate (\d+) bytes", str(e))
            size = f": {int(asked.group(1)) / 2**30:,.1f} GiB asked for" if asked else ""
            return fail(f"out of memory{size} ({memory_advice(argv)})", 1)
        line = str(e).splitlines()[0] if str(e) else ""
        from rnnkit.cells.validate import raised_at
        where = raised_at(e, in_cell=True)
        if where:   # raised in a user's own cell: not rnnkit's defect
            return fail(f"{where}: {type(e).__name__}: {line} (your cell's code; rerun with "
                        f"--debug for the traceback)", 1)
        return fail(f"internal error, {type(e).__name__}: {line} "
                    f"(rerun with --debug for the traceback, and please report it)", 1)
    finally:
        warnings.formatwarning = show_warning
        for signum, handler in (terminate or {}).items():
            signal.signal(signum, handler)


PIP_NAMES = {"PIL": "Pillow", "sklearn": "scikit-learn", "yaml": "PyYAML"}   # import -> pip


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP: the terminal closed), raised where the command is, so that it stops
    as on Ctrl-C: temporary files removed, the run folder's lock released, one line said."""

    def __init__(self, signum=signal.SIGTERM):
        super().__init__(signum)
        self.signum = signum


def stopped(e):
    """The line and exit status of a command stopped by a signal: 128 + its number."""
    line = (f"rnnkit: terminated ({signal.Signals(e.signum).name})" if isinstance(e, Terminated)
            else "\nrnnkit: interrupted")
    try:
        print(line, file=sys.stderr)
    except OSError:   # the terminal closed (SIGHUP): nothing left to say it to
        pass
    return 128 + e.signum if isinstance(e, Terminated) else 130


def escape_unprintable(stream):
    """Write what ``stream``'s encoding cannot show as backslash escapes (``\\u4e2d``), not as
    a UnicodeEncodeError: for a training log, which is not the run's product (its files are)."""
    try:
        stream.reconfigure(errors="backslashreplace")
    except (AttributeError, ValueError, OSError):   # not a text stream of io's (replaced)
        pass


def first_cause(e):
    """The signal's KeyboardInterrupt or the OSError (a full disk) that ``e`` was raised while
    handling, or None: torch's file writer raises a RuntimeError of its own as it closes the file
    after either, which read as an internal error."""
    seen, inner = set(), e.__context__ or e.__cause__
    while inner is not None and id(inner) not in seen:
        if isinstance(inner, (KeyboardInterrupt, OSError)):
            return inner
        seen.add(id(inner))
        inner = inner.__context__ or inner.__cause__
    return None


def on_sigterm():
    """Make SIGTERM and SIGHUP raise :class:`Terminated` in the main thread (where the default,
    ending the process at once, is still set); returns {signal: the handler it replaced}, or
    None."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None

    def stop(signum, frame):
        for s in before:   # a second signal while the first is handled (timeout and its
            signal.signal(s, again)   # group, a shutdown) raised inside its print: a traceback
        raise Terminated(signum)

    def again(signum, frame):   # ... now it ends the process at once, silently
        os._exit(128 + signum)
    before = {signal.SIGTERM: signal.signal(signal.SIGTERM, stop)}
    if signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:
        before[signal.SIGHUP] = signal.signal(signal.SIGHUP, stop)
    return before


OUT_OF_MEMORY = re.compile(r"can't allocate memory|not enough memory|out of memory", re.I)


def fail(message, code):
    """The error line on stderr, in one write (ranks under torchrun write theirs at once, and a
    line written in two parts ran into another rank's); a rank other than 0 names itself."""
    text = " ".join(str(message).split("\n")[0:1]) or "failed"
    r = rank()
    who = f"rank {r}: " if r not in ("", "0") and not text.startswith(f"rank {r}") else ""
    sys.stderr.write(f"rnnkit: error: {who}{text}\n")
    sys.stderr.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
