"""Writing output files without losing one: each is written whole beside its place and moved
there (``os.replace``), so a crash or a full disk mid-write leaves the file before it intact.

Where the path is not a regular file's place, a write goes where a shell's ``>`` would send it:
a symbolic link is kept and the file it names replaced; a device or a pipe (``/dev/null``) is
written in place, never replaced by a file; a name of one of the process's open files
(``/dev/stdout``, ``/dev/fd/3``, ``/proc/self/fd/1``) is written through that descriptor, where
the command's other output goes (a file its shell opened with ``>>`` is appended to, not
replaced or cut). A new file's mode follows the umask, as ``open`` makes files; a replaced file
keeps its own.
"""
import errno
import os
import re
import stat
import sys
import tempfile
from pathlib import Path

# the names of an open descriptor of this process: /dev/stdin, /dev/stdout, /dev/stderr,
# /dev/fd/N, /proc/self/fd/N, /proc/PID/fd/N (stdin too: through its link, a file given with <
# would have been replaced)
_DESCRIPTOR = re.compile(r"/dev/(?:std(in|out|err)|fd/(\d+))|/proc/(self|\d+)/fd/(\d+)")


def umask():
    """The process's umask, read without setting it (os.umask sets it, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def descriptor(path):
    """The open descriptor of this process that ``path`` names (``/dev/stdout``: 1), itself or
    through symbolic links (``out.json -> /dev/stdout``), or None."""
    path = os.path.abspath(path)
    for _ in range(40):                     # (the system's own limit on a chain of links)
        m = _DESCRIPTOR.fullmatch(path)
        if m is not None and m[3] in (None, "self", str(os.getpid())):
            return {"in": 0, "out": 1, "err": 2}[m[1]] if m[1] else int(m[2] or m[4])
        if not os.path.islink(path):
            return None
        path = os.path.join(os.path.dirname(path), os.readlink(path))
        path = os.path.abspath(path)
    return None


def in_place(path):
    """A binary file object writing ``path`` where it is (:func:`target` None): through the
    descriptor it names, after what this process printed there, or opened as a device."""
    fd = descriptor(path)
    if fd is None:
        return open(path, "wb")
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    return os.fdopen(os.dup(fd), "wb")


def target(path):
    """The regular file a write of ``path`` replaces (``path``, or the file its symbolic link
    names), or None where ``path`` is written in place (:func:`in_place`): a device, a pipe, a
    name of an open descriptor. A folder raises IsADirectoryError, before any work."""
    path = Path(path)
    if descriptor(path) is not None:
        return None
    try:
        st = os.stat(path)                          # (through links)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if st is not None and not stat.S_ISREG(st.st_mode):
        return None
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def mode_of(path):
    """The mode a write of ``path`` leaves: the file's own where it exists, else the umask's."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~umask()


def temporary(path, suffix=".tmp"):
    """(descriptor, name) of a new hidden file beside ``path`` (a regular file's place),
    ``.NAME.XXXX.tmp`` (a killed run's are cleared by that pattern), or ``.STEM.XXXX`` +
    ``suffix`` where the suffix is given (torch's exporters read the format from it). A folder
    that cannot take it (read-only, missing) raises the OSError named by ``path``, the name the
    user gave."""
    # the temporary name holds at most the name's first 100 characters: a legal name of 250
    # was refused as too long for its temporary file's
    prefix = f".{(path.name if suffix == '.tmp' else path.stem)[:100]}."
    try:
        return tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    except OSError as e:
        e.filename = str(path)
        raise


def put(tmp, path, place):
    """Move the written temporary file ``tmp`` to ``place`` (:func:`target` of ``path``);
    where that is None (a device, a pipe), copy its bytes into ``path`` and remove it."""
    if place is None:
        with open(tmp, "rb") as src, in_place(path) as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        os.unlink(tmp)
        return
    os.chmod(tmp, mode_of(place))   # (mkstemp makes 0600)
    os.replace(tmp, place)


def named(e, path, tmp=None):
    """Give the OSError ``e`` or the OSError it was raised while handling (a full disk inside
    torch's file writer, which raises a RuntimeError of its own as it closes the file) the
    user's file name where it names the temporary file or none."""
    seen, inner = set(), e
    while inner is not None and id(inner) not in seen:
        if isinstance(inner, OSError) and (inner.filename in (None, tmp, str(tmp))
                                           or isinstance(inner.filename, int)):
            inner.filename = str(path)   # the temporary file, or its descriptor: the user's name
        seen.add(id(inner))
        inner = inner.__context__ or inner.__cause__


def atomic_write(path, write):
    """Call ``write(file_object)`` on a temporary file next to ``path``'s place (:func:`target`),
    flushed to disk, then move it there; a device or a pipe is written in place."""
    path = Path(path)
    place = target(path)   # a folder: refused before the work, and named as the user gave it
    if place is None:
        try:
            with in_place(path) as f:
                write(f)
        except BaseException as e:
            named(e, path)   # (/dev/fd/7 where 7 is not open: "Bad file descriptor" alone)
            raise
        return
    place.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temporary(place)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        put(tmp, path, place)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        named(e, path, tmp)
        raise
