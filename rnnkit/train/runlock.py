"""One run per run folder: an advisory lock held while a run trains into ``--out``.

The lock is ``fcntl.flock`` on ``OUT/.lock``. The kernel releases it when its process ends, however
it ends (kill -9 included), so a stale lock from a killed run is simply taken over; the file's
text (pid, host, start time, command) only serves the message a second run prints. The lock file
is left in place: removing it would let two runs lock two different files of the same name.

While it holds the lock, a run also removes the temporary files an interrupted atomic write
(:func:`rnnkit.outputs.atomic_write`) of a run's own files can leave behind: no other
run can be writing them. Commands that take no lock (``rnnkit forecast`` writing the run's
forecast.png) may be writing theirs: those are removed only an hour on.
"""
import os
import socket
import sys
import time
from pathlib import Path

try:
    import fcntl
except ImportError:   # not POSIX: runs are not locked
    fcntl = None

LOCK_NAME = ".lock"


class RunLockError(RuntimeError):
    """The run folder cannot take this run: another live run holds it, it already holds a
    finished or stopped run (without --resume), or it is not a folder."""


class RunLock:
    """``with RunLock(out): ...`` holds ``out`` for one run; a second one raises RunLockError.

    A folder this lock created and that holds nothing else when it is released (the run failed
    before writing anything) is removed again, so a refused run leaves no trace."""

    def __init__(self, out):
        self.out = Path(out)
        self._fd, self._created = None, False

    def acquire(self):
        if self.out.exists() and not self.out.is_dir():
            raise RunLockError(f"{self.out}: --out must be a folder, and this is a file")
        self._created = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                _lock_within(fd, 0.5)
            except BlockingIOError:
                holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "unknown"
                os.close(fd)
                raise RunLockError(f"{self.out}: another rnnkit run is training into this folder "
                                   f"({holder}); wait for it to end or choose another --out") from None
        os.ftruncate(fd, 0)
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        command = " ".join(["rnnkit", *sys.argv[1:]])[:300]
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {started}: "
                     f"{command}\n".encode("utf-8", "backslashreplace"))   # a name's non-UTF-8 bytes
        self._fd = fd
        remove_leftovers(self.out)
        return self

    @staticmethod
    def holder(out):
        """What the live run training into ``out`` wrote in its lock (pid, host, command), or
        None where no run holds it; the lock is only looked at."""
        path = Path(out) / LOCK_NAME
        if fcntl is None or not path.is_file():
            return None
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.read(fd, 4096).decode("utf-8", "replace").strip() or "unknown"
        finally:
            os.close(fd)          # (releases the lock where this took it)
        return None

    def release(self):
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:   # (a folder removed while the run trained: nothing to tidy, its error stands)
            if self._created and [p.name for p in self.out.iterdir()] == [LOCK_NAME]:
                (self.out / LOCK_NAME).unlink(missing_ok=True)
                self.out.rmdir()
        except OSError:
            pass
        finally:
            os.close(fd)   # closing the descriptor releases the lock

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _lock_within(fd, seconds):
    """flock(LOCK_EX) without waiting on a run, but through :meth:`RunLock.holder`'s moment:
    it takes the lock to look at it, and a run starting then was refused, naming the run
    before it."""
    end = time.monotonic() + seconds
    while True:
        try:
            return fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() >= end:
                raise
            time.sleep(0.01)


# what a training run writes into its folder (atomically): a leftover temporary file of one of
# these is a killed run's; another's (rnnkit forecast's forecast.png, an eval --out) may be
# being written by a command that takes no lock, and is only removed an hour on
RUN_FILES = ("best.pt", "last.pt", ".best-next.pt", "metrics.json", "metrics.jsonl",
             "train.jsonl", "gradients.jsonl", "loss.png", "report.txt")


def remove_leftovers(out):
    """Delete the ``.NAME.*.tmp`` files of atomic writes a killed run did not finish."""
    for tmp in Path(out).glob(".*.tmp"):
        try:
            ours = any(tmp.name.startswith(f".{name}.") for name in RUN_FILES)
            if ours or time.time() - tmp.stat().st_mtime > 3600:
                tmp.unlink(missing_ok=True)
        except OSError:
            pass
