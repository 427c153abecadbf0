"""The runs a view serves: found under the folder it was given, each read-only. A run's model is
loaded from its checkpoint when first asked for and again whenever the file changes (a run still
training writes a new best.pt at each better evaluation); its training curves are read from the
folder's logs at each request, so the page follows a live run.

Files read: best.pt (else last.pt), metrics.jsonl (one line per evaluation), train.jsonl (train
loss, gradient norm, learning rate every few steps), gradients.jsonl (the BPTT telemetry of
:class:`rnnkit.diagnostics.callbacks.GradientTelemetry`, when a run wrote it), metrics.json (the
end of a run) and the PNGs beside them (loss.png, gradflow_*.png, forecast.png).
"""
import json
import os
import threading
import warnings
from pathlib import Path

from rnnkit.train.callbacks import read_metrics
from rnnkit.train.checkpoint import CheckpointError, load_checkpoint
from rnnkit.view.base import evenly
from rnnkit.view.media_kinds import ImageToTextView, RecognizeView
from rnnkit.view.params import LIMITS, RequestError
from rnnkit.view.task_kinds import CondView, ForecastView, Seq2SeqView
from rnnkit.view.text_kinds import ClassifyView, LMView, TagView

VIEWS = {"lm": LMView, "classify": ClassifyView, "tag": TagView, "seq2seq": Seq2SeqView,
         "forecast": ForecastView, "cond": CondView, "recognize": RecognizeView,
         "image-to-text": ImageToTextView}
MARKS = ("best.pt", "last.pt", "metrics.jsonl", "train.jsonl")   # what makes a folder a run
LOGS = ("metrics.jsonl", "train.jsonl", "gradients.jsonl", "metrics.json")
MAX_RUNS, MAX_DEPTH, MAX_FOLDERS = 500, 4, 5000   # a view of a big tree stays quick


class Run:
    """One run folder (or one checkpoint file and the folder around it)."""

    def __init__(self, id, folder, checkpoint=None):
        self.id, self.folder, self.fixed = id, Path(folder), checkpoint
        self._lock = threading.Lock()
        self._stamp, self._view, self._error, self._step = None, None, None, None

    def checkpoint(self):
        """The checkpoint file the view shows: the one given, else best.pt, else last.pt."""
        if self.fixed is not None:
            return self.fixed
        for name in ("best.pt", "last.pt"):
            if (self.folder / name).is_file():
                return self.folder / name
        return None

    def view(self):
        """The model's view, (re)loaded when the checkpoint file changed. RequestError 409 when
        there is no checkpoint yet, 422 when it cannot be used (unknown kind, damaged, written
        by an rnnkit this one cannot read)."""
        path = self.checkpoint()
        if path is None:
            raise RequestError(f"{self.folder}: no checkpoint yet (best.pt appears at the run's "
                               f"first evaluation); the training curves are shown", 409)
        with self._lock:
            stamp = _stamp(path)
            if stamp != self._stamp:
                self._view, self._error, self._step = None, None, None
                try:
                    self._view, self._step = load_view(path)
                except (RequestError, CheckpointError) as e:
                    self._error = getattr(e, "message", str(e))
                self._stamp = stamp
            if self._error:
                raise RequestError(self._error, 422)
            return self._view

    def info(self):
        view = self.view()
        path = self.checkpoint()
        return {"run": self.id, "folder": str(self.folder), "checkpoint": path.name,
                "step": self._step, **view.info()}

    def training(self, version=None):
        """The run's curves (thinned to LIMITS["points"] each), the latest gradient telemetry,
        its images and whether it looks live; {"unchanged": True} when ``version`` (from an
        earlier answer) still holds."""
        now = self.version()
        if version == now:
            return {"unchanged": True, "version": now}
        f = self.folder
        evals = _rows(f / "metrics.jsonl")
        train = _rows(f / "train.jsonl")
        grads = _rows(f / "gradients.jsonl")
        finished = (f / "metrics.json").is_file() and all(
            _mtime(f / "metrics.json") >= _mtime(f / n) for n in ("metrics.jsonl", "train.jsonl"))
        return {"version": now, "evals": _thin(evals), "train": _thin(train),
                "gradients": grads[-1] if grads else None,
                "decay": _thin(_decays(grads)),
                "summary": _json(f / "metrics.json") if finished else None,
                "finished": finished, "images": self.images()}

    def version(self):
        """A short string that changes whenever a log or the checkpoint changes."""
        files = [self.folder / n for n in LOGS] + [self.checkpoint() or self.folder / "best.pt"]
        return "-".join(f"{s[0]:x}.{s[1]:x}" if s else "0" for s in map(_stamp, files))

    def images(self):
        try:
            return sorted(p.name for p in self.folder.iterdir()
                          if p.suffix == ".png" and p.is_file() and not p.name.startswith("."))
        except OSError:
            return []

    def image(self, name):
        """The bytes of one of the run's PNGs (only names :meth:`images` lists)."""
        if name not in self.images():
            raise RequestError(f"{self.id}: no image {name!r} (it has {', '.join(self.images()) or 'none'})",
                               404)
        try:
            return (self.folder / name).read_bytes()
        except OSError as e:   # unreadable (another user's, a damaged disk): said, not a 500
            raise RequestError(f"{self.id}: {name} cannot be read ({e.strerror or e})", 409)


def load_view(path):
    """(the kind's view of the checkpoint at ``path``, its training step); warnings while
    loading (an old checkpoint format) become the view's notes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checkpoint = load_checkpoint(path)
        kind = checkpoint.get("kind")
        if kind not in VIEWS:
            raise RequestError(f"{path}: a run of kind {kind!r}, which this view does not know "
                               f"(it shows {', '.join(VIEWS)}); written by another rnnkit?", 422)
        view = VIEWS[kind].load(path, checkpoint)
    view.notes += [str(w.message) for w in caught]
    trainer = checkpoint.get("trainer")
    return view, trainer.get("step") if isinstance(trainer, dict) else None


class Runs:
    """The runs under a root path: the root itself when it is a run (or a checkpoint file), else
    the run folders below it (hidden folders skipped, MAX_DEPTH levels deep). Found again on
    each listing, so a run started after the view appears in it."""

    def __init__(self, root):
        self.root = Path(root)
        self._runs = {}
        self.find()

    def find(self):
        found = {}
        root = self.root
        if root.is_file():
            found["."] = self._runs.get(".") or Run(".", root.parent, root)
        else:
            for folder in sorted(_run_folders(root)):
                id = "." if folder == root else folder.relative_to(root).as_posix()
                old = self._runs.get(id)
                found[id] = old if old is not None and old.fixed is None else Run(id, folder)
        self._runs = found
        return list(found.values())

    def get(self, id=None):
        """The run named ``id`` (as listed; none: the only run, or the root's own); RequestError
        404 naming the known ones."""
        if id not in self._runs:
            self.find()
        if not id and len(self._runs) == 1:
            return next(iter(self._runs.values()))
        id = id or "."
        run = self._runs.get(id)
        if run is not None and not (run.fixed or run.folder).exists():   # deleted since
            self.find()
            run = None
        if run is None:
            known = ", ".join(list(self._runs)[:20]) or "none yet"
            if id == "." and len(self._runs) > 1:
                raise RequestError(f"{self.root} holds {len(self._runs)} runs: name one with "
                                   f"run= ({known})", 404)
            raise RequestError(f"no run {id!r} under {self.root} (runs: {known})", 404)
        return run


def _run_folders(root):
    """Folders under ``root`` holding a run's files, breadth first, bounded."""
    out, frontier, seen = [], [(root, 0)], 0
    while frontier and len(out) < MAX_RUNS and seen < MAX_FOLDERS:
        folder, depth = frontier.pop(0)
        seen += 1
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        names = {e.name for e in entries}
        if any(m in names for m in MARKS):
            out.append(Path(folder))
        if depth < MAX_DEPTH:
            frontier += [(Path(e.path), depth + 1) for e in entries
                         if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
    return out


def _stamp(path):
    try:
        s = path.stat()
        return (s.st_mtime_ns, s.st_size)
    except OSError:
        return None


def _mtime(path):
    s = _stamp(path)
    return s[0] if s else 0


def _rows(path):
    """The log's rows; a torn last line (a crash, or a write under way) and lines that are not
    objects are passed over, as are telemetry rows whose layers are not a mapping."""
    if not path.is_file():   # absent, or a pipe or device by a log's name: reading one waits
        return []
    try:
        rows = read_metrics(path)
    except (OSError, UnicodeError):
        return []
    return [r for r in rows if isinstance(r, dict) and isinstance(r.get("layers", {}), dict)
            and all(isinstance(v, dict) for v in r.get("layers", {}).values())]


def _json(path):
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _decays(rows):
    """Per telemetry row: its step and each layer's decay ρ of ||dL/dh_t|| ("rnn.l0 h": ρ)."""
    out = []
    for g in rows:
        d = {"step": g.get("step")}
        for layer, entry in (g.get("layers") or {}).items():
            d.update((f"{layer} {k[len('decay_'):]}", v) for k, v in entry.items()
                     if k.startswith("decay_"))
        out.append(d)
    return out


def _thin(rows):
    return [rows[i] for i in evenly(len(rows), LIMITS["points"])]
