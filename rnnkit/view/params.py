"""The view's request parameters: typed, range-checked, with the bounds that keep a request short.

Every request that could take long is bounded here (text length, tokens generated, beam width,
samples, forecast steps); the bounds are sent to the page (``/api/run``: ``limits``) so its
inputs say them, and a request beyond one is refused with a message that names it.
A bad parameter raises :class:`RequestError`, which the server answers with its status and
``{"error": message}``: never a 500.
"""
import math

LIMITS = {
    "text": 2000,          # characters of a text to read (colouring, predictions, correlations)
    "generate": 2000,      # tokens of one streamed generation
    "beam": 16,            # hypotheses of a beam search
    "beam_length": 300,    # tokens a beam search runs for
    "samples": 50,         # sequences of one conditional-generator request
    "forecast": 1000,      # steps of one forecast
    "prefixes": 200,       # classifier: prefixes scored as the text grows (evenly spaced beyond)
    "points": 2000,        # points per training curve (thinned evenly beyond)
    "body": 256 * 1024,    # bytes of a request body
    "file": 180 * 1024,    # bytes of a file read by a recogniser (sent in base64 in the body)
}
_REQUIRED = object()


class RequestError(Exception):
    """A request the view refuses: ``status`` (4xx) and a one-line message for the page."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.message, self.status = message, status


class Params:
    """The parameters of one request (the JSON body, or the query string of a GET), read with a
    type and a range each: ``p.int("unit", 0, H - 1)``. Missing required ones, wrong types and
    values out of range raise RequestError naming the parameter and what it accepts."""

    def __init__(self, values):
        if not isinstance(values, dict):
            raise RequestError(f"expected a JSON object of parameters, got {type(values).__name__}")
        self.values = values

    def _get(self, name, default):
        v = self.values.get(name)
        if v is None or v == "":
            if default is _REQUIRED:
                raise RequestError(f"missing parameter {name!r}")
            return default
        return v

    def text(self, name, limit=LIMITS["text"], default=None, empty=False):
        """A string of at most ``limit`` characters (413 beyond: the request would take long);
        ``default`` None: required."""
        v = self.values.get(name, default)
        if v is None:
            raise RequestError(f"missing parameter {name!r}")
        if not isinstance(v, str):
            raise RequestError(f"{name} must be text, got {type(v).__name__}")
        if not v and not empty:
            raise RequestError(f"{name} is empty: type some text")
        if len(v) > limit:
            if limit < LIMITS["text"]:          # a name, not text a user typed
                raise RequestError(f"{name} has {len(v):,} characters; at most {limit:,}", 413)
            raise RequestError(f"{name} has {len(v):,} characters; the view reads at most "
                               f"{limit:,} at a time (paste a shorter part)", 413)
        return v

    def int(self, name, lo, hi, default=None):
        v = self._get(name, _REQUIRED if default is None else default)
        if isinstance(v, str):
            try:
                v = int(v.strip())
            except ValueError:
                raise RequestError(f"{name} must be a whole number, got {v!r}") from None
        if isinstance(v, bool) or not isinstance(v, int):
            raise RequestError(f"{name} must be a whole number, got {v!r}")
        if not lo <= v <= hi:
            raise RequestError(f"{name} must lie in [{lo}, {hi}], got {v}")
        return v

    def float(self, name, lo, hi, default=None):
        v = self._get(name, _REQUIRED if default is None else default)
        if isinstance(v, str):
            try:
                v = float(v.strip())
            except ValueError:
                raise RequestError(f"{name} must be a number, got {v!r}") from None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise RequestError(f"{name} must be a finite number, got {v!r}")
        if not lo <= v <= hi:
            raise RequestError(f"{name} must lie in [{lo:g}, {hi:g}], got {v:g}")
        return float(v)

    def optional_int(self, name, lo, hi):
        """An int in [lo, hi], or None when absent (``top_k``: off)."""
        return None if self.values.get(name) in (None, "", 0, "0") else self.int(name, lo, hi)

    def optional_float(self, name, lo, hi):
        return None if self.values.get(name) in (None, "") else self.float(name, lo, hi)

    def choice(self, name, choices, default=None):
        v = self._get(name, _REQUIRED if default is None else default)
        if v not in choices:
            raise RequestError(f"{name} must be one of {', '.join(map(str, choices))}; got {v!r}")
        return v

    def flag(self, name):
        """A boolean: true, 1, "true", "1", "on", "yes"; absent is False."""
        v = self.values.get(name, False)
        return v is True or v == 1 or (isinstance(v, str) and v.lower() in ("1", "true", "on", "yes"))

