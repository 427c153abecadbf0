"""What every run kind's view shares: the model behind a lock, actions named for the page, and for
models that read text, one reading of a text (its tokens, every unit at every step, the task's
predictions) cached so that moving the unit picker does not run the model again.

A kind's view is a class with ``load(path, checkpoint)``, ``info()`` (what the page shows for it)
and ``ACTIONS``, {action: method}; each method takes :class:`rnnkit.view.params.Params` and
returns plain data (or, for a stream, an iterator of it).
"""
import math
import threading
from collections import OrderedDict

import torch

from rnnkit.view.params import RequestError
from rnnkit.view.probe import Trace, describe, recording


class View:
    kind = None
    ACTIONS = {}

    def __init__(self):
        self.lock = threading.RLock()   # one model call at a time (the recording hooks are global)
        self.notes = []                 # what the page should say about this run (warnings)

    def info(self):
        return {"kind": self.kind, "actions": sorted(self.ACTIONS), "notes": self.notes}

    def act(self, action, params):
        method = self.ACTIONS.get(action)
        if method is None:
            raise RequestError(f"a {self.kind} run has no {action!r} view; it offers "
                               f"{', '.join(sorted(self.ACTIONS)) or 'its training curves only'}")
        with torch.no_grad():
            return getattr(self, method)(params)


class Reading:
    """One text as the model reads it: ``tokens`` (what the page shows, one per step), ``trace``
    (every unit at every step, :class:`rnnkit.view.probe.Trace`), ``unknown`` (positions read as
    <unk>), ``predictions`` (the task's own: next-token probabilities, classes, tags)."""

    def __init__(self, tokens, trace, predictions, unknown=(), notes=()):
        self.tokens, self.trace, self.predictions = tokens, trace, predictions
        self.unknown, self.notes = list(unknown), list(notes)


class TextView(View):
    """A model that reads text (language model, classifier, tagger): the page colours the text by
    a unit and shows the task's predictions beside it. Subclasses define ``layer`` (the
    recurrent stack that is shown), ``separator`` (between tokens on the page: "" or " ") and
    ``read(text)`` -> a :class:`Reading`, its model call run through :meth:`traced`."""
    ACTIONS = {"text": "read_text", "unit": "unit", "correlate": "correlate"}
    CACHED = 8   # readings kept (the page asks for several units of the same text)
    separator = ""

    def __init__(self):
        super().__init__()
        self._cache = OrderedDict()

    def info(self):
        return {**super().info(), "layers": describe(self.layer), "separator": self.separator}

    def reading(self, text):
        """The cached Reading of ``text`` (the model runs on a miss)."""
        with self.lock:
            if text in self._cache:
                self._cache.move_to_end(text)
                return self._cache[text]
            r = self._cache[text] = self.read(text)
            if len(self._cache) > self.CACHED:
                self._cache.popitem(last=False)
            return r

    def traced(self, run):
        """``run()`` with the layer recording: (its result, the Trace of the layer's first call)."""
        with recording(self.layer) as records:
            out = run()
        if not records:
            raise RuntimeError(f"{type(self).__name__}: the model did not call its recurrent layer")
        return out, Trace(self.layer, records[0])

    def read_text(self, p):
        r = self.reading(p.text("text"))
        return {"tokens": r.tokens, "unknown": r.unknown, "notes": r.notes,
                "saturation": r.trace.saturation(), **r.predictions}

    def unit(self, p):
        r = self.reading(p.text("text"))
        # wide bounds here: the trace says each one's own range (a negative unit was told
        # [0, 1000000000])
        return r.trace.unit(p.choice("quantity", tuple(r.trace.q), "h"),
                            p.int("layer", -10**6, 10**6, 0), p.int("direction", -10**6, 10**6, 0),
                            p.int("unit", -10**9, 10**9, 0))

    def correlate(self, p):
        r = self.reading(p.text("text"))
        return {"units": r.trace.correlate(p.int("start", 0, len(r.tokens)),
                                           p.int("end", 0, len(r.tokens)))}


def evenly(n, most):
    """At most ``most`` indices of range(n), evenly spaced, the last one always included."""
    if n <= most:
        return list(range(n))
    step = n / most
    return sorted({min(n - 1, int(round((k + 1) * step)) - 1) for k in range(most)} | {n - 1})


def finite(values, digits=4):
    """Floats for JSON: rounded, NaN and infinities as None."""
    return [round(float(v), digits) if math.isfinite(v) else None for v in values]


def top_k(probs, vocab_tokens, k):
    """Per row of probs (T, V): the k most likely tokens and their probabilities."""
    p, i = probs.topk(min(k, probs.shape[-1]), dim=-1)                       # (T, k)
    return [[[vocab_tokens[j], round(q, 4)] for j, q in zip(ir, pr)]
            for ir, pr in zip(i.tolist(), p.tolist())]

