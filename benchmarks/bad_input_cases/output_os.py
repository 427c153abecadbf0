"""Output the OS refuses: closed pipes and standard output, existing files, read-only folders,
/proc and a full disk."""
import os
import shutil
import subprocess
import tempfile
import time

from .harness import (RUN, TRAIN, Ran, Skip, case, cli, expand, kill_group, limits, mkdir,
                      run_cli, writes)


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
