"""Declared ranges for the config dataclasses, checked in one place.

A config field states what it accepts in its metadata; :func:`check` validates a dataclass
instance against those declarations and raises :class:`ConfigError` naming the field, the range
and the value. Flags and checkpoints go through the same dataclass constructors, so both are
checked before anything is allocated.
"""
import dataclasses
import functools
import math
import numbers
import re
import typing

# Upper bounds: generous for any model rnnkit trains, small enough that a damaged or hostile
# checkpoint is refused before it asks for memory (hidden=10**9 would be gigabytes per matrix).
MAX_WIDTH = 65_536            # a layer's width: hidden, embedding and condition sizes
MAX_LAYERS = 64
MAX_VOCAB = 10_000_000        # tokens of a vocabulary, or hash buckets
MAX_LABELS = 100_000          # classes, tags, condition labels, features of a series
MAX_STEPS = 1_000_000         # time steps: sequence lengths, windows, horizons, seasons
MAX_BATCH = 65_536
MAX_BEAM = 1000               # hypotheses of a beam search
MAX_COUNT = 10**12            # counts of steps, tokens or pairs: bounded only against typos
MAX_SEED = 2**32 - 1          # what numpy, torch and random all take
MAX_PARAMS = 2 * 10**9        # parameters of one model: 8 GB of float32 weights, 3x that to train


class ConfigError(ValueError):
    """A config value outside its declared range; the message names field, range and value."""


class Range:
    """An interval of numbers, each end open or closed, plus values accepted besides it.

    Declared as a tuple ``(lo, hi)`` (closed) or in interval notation, ``"(0, 1]"``, ``"[0, 1)"``;
    ``also`` holds values outside the interval that mean something (``0``: automatic)."""

    NOTATION = re.compile(r"^\s*([\[(])\s*([^,]+),\s*([^\])]+)([\])])\s*$")

    def __init__(self, lo, hi, lo_open=False, hi_open=False, also=()):
        self.lo, self.hi, self.lo_open, self.hi_open = lo, hi, lo_open, hi_open
        self.also = tuple(also)

    @classmethod
    def of(cls, spec, also=()):
        if isinstance(spec, Range):
            return spec
        if isinstance(spec, str):
            m = cls.NOTATION.match(spec)
            if not m:
                raise ValueError(f"a range is written like '[0, 1)', got {spec!r}")
            return cls(float(m[2]), float(m[3]), m[1] == "(", m[4] == ")", also)
        lo, hi = spec
        return cls(lo, hi, also=also)

    def __contains__(self, v):
        if v in self.also:
            return True
        above = v > self.lo if self.lo_open else v >= self.lo
        below = v < self.hi if self.hi_open else v <= self.hi
        return above and below

    def __str__(self):
        """What a value must be: ``in [1, 64]``, ``0 or in [2, 1e7]``."""
        text = (f"in {'(' if self.lo_open else '['}{number(self.lo)}, "
                f"{number(self.hi)}{')' if self.hi_open else ']'}")
        return " or ".join([*map(number, self.also), text])


def number(x):
    """A bound as people write it: 65536, 0.5, inf, and 1e12 rather than twelve zeros."""
    if isinstance(x, float) and not x.is_integer():
        return f"{x:g}"
    short = f"{x:.0e}".replace("e+0", "e").replace("e+", "e")
    return short if abs(x) >= 10**6 and float(short) == x else f"{x:.0f}"


def flag_name(name):
    """The command-line flag of a config field: ``max_steps`` -> ``--max-steps``."""
    return "--" + name.replace("_", "-")


@functools.lru_cache(maxsize=None)
def _fields(cls):
    hints = typing.get_type_hints(cls)
    return tuple((f, hints.get(f.name)) for f in dataclasses.fields(cls))


def problem(kind, metadata, value):
    """What is wrong with ``value`` for a field of type ``kind`` declared by ``metadata``, as the
    end of "X must ...": "be in [1, 64]"; None when nothing is."""
    if kind is bool and not isinstance(value, bool):
        return "be true or false"
    if kind is int and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        return "be an integer"
    if kind is float and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        return "be a number"
    if kind is str and not isinstance(value, str):
        return "be a string"
    if kind is float and metadata.get("finite", True) and not math.isfinite(value):
        return "be a finite number"
    if "choices" in metadata and value not in metadata["choices"]:
        return "be one of {" + ", ".join(map(str, metadata["choices"])) + "}"
    if "range" in metadata:
        allowed = Range.of(metadata["range"], metadata.get("or", ()))
        if value != value or value not in allowed:   # NaN is in no range
            return f"be {allowed}"
    return None


def check(config):
    """Check every field of the dataclass instance ``config`` against its type and what its
    metadata declares: ``range`` (a tuple, closed, or interval notation such as ``"(0, 1]"``),
    ``or`` (values accepted besides the range, such as 0 for "automatic"), ``choices`` (the
    allowed strings), ``finite`` (floats: False also takes inf and NaN; default True).

    Raises ConfigError: ``LMConfig.hidden must be in [1, 65536], got 0 (--hidden)``; the flag
    is named for fields with help text (the ones that are flags)."""
    for f, kind in _fields(type(config)):
        value = getattr(config, f.name)
        if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
            value = value.item()   # np.float64(2e-3), np.str_("gru"): plain, so a checkpoint
            object.__setattr__(config, f.name, value)   # holds no numpy object
        wrong = problem(kind, f.metadata, value)
        if wrong:
            flag = f" ({flag_name(f.name)})" if f.metadata.get("help") else ""
            own = ("; a cell of your own is known once the file that registers it "
                   "(rnnkit.cells.register) is imported: from Python, import it, then call "
                   "rnnkit.cli.main.main(argv)" if f.name == "cell" and "one of" in wrong else "")
            raise ConfigError(f"{type(config).__name__}.{f.name} must {wrong}, "
                              f"got {value!r}{flag}{own}")


def recurrent_params(cell, layers, inputs, hidden, directions=1):
    """Parameters of a stacked recurrent network (weights and both biases): gates x H x (I + H + 2)
    per layer and direction; the upper layers read the D x H outputs below."""
    gates = {"lstm": 4, "gru": 3, "rnn": 1}.get(cell, 4)
    per_layer = lambda i: directions * gates * hidden * (i + hidden + 2)
    return per_layer(inputs) + (layers - 1) * per_layer(directions * hidden)


def check_size(config, params, fields):
    """Refuse a config whose model would have more than MAX_PARAMS parameters (``params``, an
    estimate from its sizes), naming the sizes (``fields``) that make it that large."""
    if params > MAX_PARAMS:
        sizes = ", ".join(f"{n} {getattr(config, n)}" for n in fields)
        raise ConfigError(f"{type(config).__name__} ({sizes}) makes a model of about "
                          f"{params:,} parameters, more than the {MAX_PARAMS:,} rnnkit builds")


def check_fractions(config):
    """The held-out parts of a split leave something to train on: test_fraction + val_fraction
    below 1 (each is in its declared range already)."""
    t, v = config.test_fraction, config.val_fraction
    if t + v >= 1:
        raise ConfigError(f"{type(config).__name__}.test_fraction + val_fraction must be below 1 "
                          f"(the rest is the training part), got {t} + {v} (--test-fraction, "
                          f"--val-fraction)")
