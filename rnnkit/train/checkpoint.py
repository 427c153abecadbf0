"""Checkpoints as plain data: atomic writes, and loading without arbitrary pickle execution.

A checkpoint is a dict of tensors, str, int, float, bool, None, lists, tuples and dicts only, so
``torch.load(..., weights_only=True)`` can read it and a tampered file cannot run code. It is
written to a temporary file in the same folder, flushed to disk and moved over the old one with
``os.replace``: a crash mid-save leaves the previous checkpoint intact.

Every checkpoint carries a SHA-256 digest of its content (each tensor's dtype, shape and bytes,
and every other value, in a canonical order), verified on every load: a flipped bit anywhere in
the weights, optimizer state or settings is refused, by file name, instead of being trained on.
Version 1 files (written before the digest) still load, with a warning that they cannot be
verified; a resumed run writes them again as version 2.
"""
import collections
import hashlib
import json
import math
import numbers
import re
import struct
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch

from rnnkit.outputs import atomic_write

FORMAT = "rnnkit-checkpoint"
VERSION = 2
READABLE = (1, 2)   # version 1: no digest


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file."""


def json_text(value, indent=2):
    """``value`` as JSON that every reader parses: NaN and ±inf (Python writes them as NaN and
    Infinity, which JSON has not) become null; numpy numbers become plain ones."""
    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, numbers.Integral):
            return int(v)
        if isinstance(v, numbers.Real):
            return float(v) if math.isfinite(v) else None
        return v
    return json.dumps(plain(value), indent=indent, allow_nan=False, default=float) + "\n"


def content_digest(value):
    """SHA-256 (hex) of a checkpoint's plain data: tensors by dtype, shape and bytes, other values
    by type and ``repr``, dict items in key order. Equal content gives an equal digest whatever
    the file's layout, so the digest can be stored inside the file it describes."""
    h = hashlib.sha256()

    def walk(v):
        if isinstance(v, torch.Tensor):
            t = v.detach().cpu().contiguous().reshape(-1)
            h.update(f"T{t.dtype}{tuple(v.shape)}".encode())
            h.update(t.view(torch.uint8).numpy())   # the buffer itself, no copy
        elif isinstance(v, dict):
            h.update(b"D%d" % len(v))
            for k in sorted(v, key=repr):
                h.update(repr(k).encode())
                walk(v[k])
        elif isinstance(v, (list, tuple)):
            h.update(b"L%d" % len(v) if isinstance(v, list) else b"U%d" % len(v))
            for x in v:
                walk(x)
        elif isinstance(v, float):
            h.update(b"F" + struct.pack("<d", v))   # exact, NaN and -0.0 included
        else:
            h.update(f"{type(v).__name__}:{v!r}".encode())
        h.update(b";")

    walk(value)
    return h.hexdigest()


# what loading reads without running code: these types exactly (a subclass, np.float64 of
# float or an IntEnum of int, is pickled by its class, which loading refuses), and tensors
PLAIN = (str, bytes, int, float, bool, type(None), torch.dtype, torch.device, torch.Size)


def check_plain(value, where="the checkpoint"):
    """TypeError naming the first value in ``value`` that is not plain data (tensors, numbers,
    text, None; dicts, lists and tuples of them): loading never runs code, so a numpy number or
    an object of a class of one's own would make every checkpoint of the run unloadable."""
    if type(value) in (dict, collections.OrderedDict):
        for k, v in value.items():
            if type(k) not in (str, int, float, bool, type(None)):
                raise TypeError(f"{where} has a key {k!r} of type {type(k).__name__}; a "
                                f"checkpoint holds plain data only (text or number keys)")
            check_plain(v, f"{where}[{k!r}]")
    elif type(value) in (list, tuple):
        for i, v in enumerate(value):
            check_plain(v, f"{where}[{i}]")
    elif not (type(value) in PLAIN or isinstance(value, torch.Tensor)):
        kind = f"{type(value).__module__}.{type(value).__qualname__}"
        raise TypeError(f"{where} is a {kind}; a checkpoint holds plain data only (tensors, "
                        f"numbers, text, None, and dicts, lists and tuples of them), which "
                        f"loading reads without running code: convert it (e.g. float(x), "
                        f"x.tolist(), torch.as_tensor(x), or a dict of its fields)")


def save_checkpoint(path, payload):
    """Write ``payload`` (a dict of plain data, :func:`check_plain`) to ``path`` atomically,
    tagged with the format and the digest of its content."""
    check_plain(payload)
    data = {"format": FORMAT, "version": VERSION, **payload}
    if isinstance(data.get("model_config"), dict) and "cell_sources" not in data:
        from rnnkit.cells.registry import source_digests
        cells = source_digests(data["model_config"])
        if cells:                                # a cell of one's own: its source, fingerprinted
            data["cell_sources"] = cells
    data.pop("digest", None)
    data["digest"] = content_digest(data)
    atomic_write(path, lambda f: torch.save(data, _UntilClosed(f)))


class _UntilClosed:
    """The checkpoint's file as torch's zip writer writes it. A writer stopped by a signal before
    its end (Ctrl-C or SIGTERM inside ``torch.save``) writes that end when it is freed, which can
    be after the file was closed and removed: the write then raised in the writer's C++ destructor
    and aborted the process (SIGABRT) after its one-line message. What comes after the close goes
    nowhere, as the file is gone."""

    def __init__(self, f):
        self.f = f

    def write(self, data):
        return None if self.f.closed else self.f.write(data)

    def seek(self, *where):
        return 0 if self.f.closed else self.f.seek(*where)

    def tell(self):
        return 0 if self.f.closed else self.f.tell()

    def flush(self):
        if not self.f.closed:
            self.f.flush()


# the command that reads each kind of run, named where another command is given one
READS = {"lm": "sample", "cond": "sample", "classify": "predict", "tag": "tag",
         "seq2seq": "translate", "forecast": "forecast", "recognize": "recognize",
         "image-to-text": "recognize"}


def load_checkpoint(path, map_location="cpu", kind=None):
    """The dict saved by :func:`save_checkpoint`; a missing, truncated, corrupted or foreign file
    raises CheckpointError naming it, and so does one of another task ``kind`` when one is asked."""
    path = Path(path)
    if path.is_dir() and path.name not in ("best.pt", "last.pt"):   # a run folder (a folder
        path = path / "best.pt"                         # named as a checkpoint is said to be one)
    if not path.is_file():
        what = ("a folder" if path.is_dir() else "not a regular file (a pipe, a device, a "
                "symbolic link that leads nowhere?)" if path.exists() or path.is_symlink()
                else "no such checkpoint file")
        last = path.name == "best.pt" and (path.parent / "last.pt").is_file()
        raise CheckpointError(f"{path}: {what}" + (
            "; expected a checkpoint file" if what != "no such checkpoint file" else
            f" (the run has last.pt, its latest state, which no validation chose: give "
            f"{path.parent / 'last.pt'} to use it)" if last else ""))
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: an empty file (0 bytes); expected a checkpoint (a write "
                              f"that never finished?)")
    try:
        with warnings.catch_warnings():   # a plain pickle's protocol: the error below says it
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:   # torch raises RuntimeError, UnpicklingError, EOFError, ... by damage
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))            # torch's bold for terminals
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text) or re.search(
            r"unsupported GLOBAL ([\w.]+) whose module", text)   # a blocked module (os, posix)
        if found:   # a pickled object (a whole module, a class of one's own): code to run
            raise CheckpointError(
                f"{path}: not an rnnkit checkpoint: it holds a pickled {found.group(1)}, which "
                f"only running code from the file could rebuild, and rnnkit never runs code from "
                f"a checkpoint (it reads runs saved by rnnkit train)") from e
        said = re.search(r"WeightsUnpickler error:\s*(.+)", text)   # the reason, not torch's
        lines = [said.group(1)] if said else text.strip().splitlines()  # advice to load unsafely
        first = lines[0].strip() if lines and lines[0].strip() else type(e).__name__
        if len(first) > 200:   # cut at a word
            first = first[:200].rsplit(" ", 1)[0] + " ..."
        raise CheckpointError(f"{path}: not a readable rnnkit checkpoint (truncated or corrupted? "
                              f"{type(e).__name__}: {first})") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: expected an {FORMAT} file, got "
                              f"{type(data).__name__} without the format tag")
    version = data.get("version")
    if version not in READABLE:
        raise CheckpointError(f"{path}: checkpoint version {version!r}, this rnnkit reads versions "
                              f"{', '.join(map(str, READABLE))} (damaged, or written by a newer rnnkit?)")
    if version >= 2:
        stored = data.pop("digest", None)
        if not isinstance(stored, str):
            raise CheckpointError(f"{path}: damaged checkpoint: its content digest is missing")
        if content_digest(data) != stored:
            raise CheckpointError(f"{path}: damaged checkpoint: its content does not match the "
                                  f"SHA-256 digest written with it (a changed byte in the weights, "
                                  f"optimizer state or settings); refusing to use it")
    else:
        warnings.warn(f"{path}: a version 1 checkpoint has no content digest; its integrity "
                      f"cannot be checked", stacklevel=2)
    if not isinstance(data.get("kind", ""), str):
        raise CheckpointError(f"{path}: damaged checkpoint: its kind is a "
                              f"{type(data['kind']).__name__}, expected a task's name")
    if kind is not None and data.get("kind") != kind:
        use = READS.get(data.get("kind"))
        raise CheckpointError(f"{path}: expected {'an' if kind[:1] in 'aeiou' else 'a'} "
                              f"{kind!r} checkpoint, got kind "
                              f"{data.get('kind')!r}" + (f" (rnnkit {use} reads it)" if use else ""))
    if data.get("cell_sources"):
        from rnnkit.cells.registry import changed_cells
        for name in changed_cells(data["cell_sources"]):
            warnings.warn(f"{path}: the cell {name!r} has changed since this checkpoint was "
                          f"written (its source or its arguments differ): its weights load, but the "
                          f"steps they run are the new code's", stacklevel=2)
    weights = data.get("model")
    if isinstance(weights, dict):   # training never saves these (non-finite steps are skipped)
        bad = [k for k, w in weights.items() if isinstance(w, torch.Tensor)
               and w.is_floating_point() and not bool(torch.isfinite(w).all())]
        if bad:
            raise CheckpointError(f"{path}: the model's weights hold NaN or infinite values "
                                  f"({len(bad)} tensor(s), first {bad[0]!r}); refusing to use them")
    return data


def check_sizes(*pairs):
    """ValueError (a CheckpointError under :func:`built_from`) unless each (what, items, size,
    unit) holds ``size`` items: a run's vocabulary, labels, tags or alphabet and the model's
    output size must agree (one of another size indexed past the model's rows)."""
    for what, items, size, unit in pairs:
        if not isinstance(items, (list, tuple, str)) or len(items) != size:
            got = (f"{len(items)} {unit}" if isinstance(items, (list, tuple, str))
                   else f"a {type(items).__name__}")
            raise ValueError(f"its {what} has {got}, its model {size}")


# optimizer states of a parameter's shape (Adam's, SGD's, RMSprop's, Adagrad's moments)
PARAMETER_SHAPED = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg",
                    "grad_avg", "sum", "acc_delta", "ax", "exp_inf", "prev")


def check_optimizer_state(optimizer, state):
    """ValueError unless each tensor of a saved optimizer state (Adam's moments) has the shape of
    the parameter it is loaded for: torch's load_state_dict checks the groups' sizes only, and a
    moment of another shape made the fused update write out of bounds."""
    if len(state["param_groups"]) != len(optimizer.param_groups):
        raise ValueError(f"its optimizer state has {len(state['param_groups'])} parameter "
                         f"group(s), this run's optimizer {len(optimizer.param_groups)}: the "
                         f"state of another optimizer (resume with the one the run was made with)")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    saved = [i for g in state["param_groups"] for i in g["params"]]
    if len(saved) != len(params):
        raise ValueError(f"its optimizer state is for {len(saved)} parameter tensors, the model "
                         f"has {len(params)}")
    of = dict(zip(saved, params))      # torch maps the saved ids to the parameters in order
    for i, moments in state["state"].items():
        if i not in of:
            raise ValueError(f"its optimizer state names parameter {i!r}, which no group holds")
        for name, v in moments.items():   # (others, Adafactor's row and column factors, are
            # shaped otherwise)
            if name in PARAMETER_SHAPED and isinstance(v, torch.Tensor) and v.dim() \
                    and v.shape != of[i].shape:
                raise ValueError(f"its optimizer state's {name} of parameter {i} has shape "
                                 f"{tuple(v.shape)}, the parameter {tuple(of[i].shape)}")


@contextmanager
def built_from(path):
    """Wrap the building of a model from a loaded checkpoint: settings outside their declared
    ranges, missing fields or weights that do not fit the settings become a CheckpointError
    naming the file (a run folder means its best.pt)."""
    from rnnkit.config import ConfigError
    try:
        yield
    except CheckpointError as e:   # a refusal that says its own cause: the file named before it
        path = Path(path)
        raise CheckpointError(f"{path / 'best.pt' if path.is_dir() else path}: {e}") from None
    except (ConfigError, KeyError, TypeError, ValueError, RuntimeError, IndexError,
            AttributeError) as e:   # AttributeError: a field of another type (None's .get)
        path = Path(path)
        name = path / "best.pt" if path.is_dir() else path
        lines = [x.strip() for x in str(e).splitlines() if x.strip()]
        what = " ".join(lines[:2])[:300] or type(e).__name__   # load_state_dict: the 2nd says which
        what = re.sub(r" \(--[\w-]+\)$", "", what)   # the value came from the file, not a flag
        raise CheckpointError(f"{name}: its content does not fit this rnnkit ({type(e).__name__}: "
                              f"{what})") from None
