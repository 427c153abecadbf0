"""Checkpoints as plain data: atomic writes, and loading without arbitrary pickle execution.

A checkpoint is a dict of tensors, str, int, float, bool, None, lists, tuples and dicts only, so
``torch.load(..., weights_only=True)`` can read it and a tampered file cannot run code. It is
written to a temporary file in the same folder, flushed to disk and moved over the old one with
``os.replace``: a crash mid-save leaves the previous checkpoint intact.
"""
import os
import tempfile
from pathlib import Path

import torch

FORMAT = "rnnkit-checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file."""


def atomic_write(path, write):
    """Call ``write(file_object)`` on a temporary file next to ``path``, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)   # mkstemp creates 0600; a run folder is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path, payload):
    """Write ``payload`` (a dict of plain data) to ``path`` atomically, tagged with the format."""
    data = {"format": FORMAT, "version": VERSION, **payload}
    atomic_write(path, lambda f: torch.save(data, f))


def load_checkpoint(path, map_location="cpu", kind=None):
    """The dict saved by :func:`save_checkpoint`; a missing, truncated, corrupted or foreign file
    raises CheckpointError naming it, and so does one of another task ``kind`` when one is asked."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:   # torch raises RuntimeError, UnpicklingError, EOFError, ... by damage
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable rnnkit checkpoint (truncated or corrupted? "
                              f"{type(e).__name__}: {first[:200]})") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: expected an {FORMAT} file, got "
                              f"{type(data).__name__} without the format tag")
    if data.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {data.get('version')!r}, this rnnkit "
                              f"reads version {VERSION}")
    if kind is not None and data.get("kind") != kind:
        raise CheckpointError(f"{path}: expected a {kind!r} checkpoint, got kind {data.get('kind')!r}")
    return data
