"""What a series' time column says beyond its dates (read by :mod:`rnnkit.data.dates` and
:mod:`rnnkit.data.series`): step numbers (0, 1, 2, ...; a spreadsheet's date serials), which
must rise row by row as dates must, and dated rows that keep only some steps of each day, week
or year (trading hours, a season's months), whose season is the rows of that cycle.
"""
import re
from collections import Counter

import numpy as np

from rnnkit.data.text import DataError

_WHOLE = re.compile(r"[+-]?\d+(?:\.0*)?")
SERIALS = (20000, 80000)   # a spreadsheet's date serials of 1954-2119 (days since 1899-12-30)


def whole_numbers(labels):
    """The labels as ints where every one is a whole number (``12``, ``-3``, ``44031.0``), else
    None."""
    if not labels or not all(_WHOLE.fullmatch(x.strip()) for x in labels):
        return None
    return [int(x.strip().split(".")[0]) for x in labels]


def check_steps_rise(f):
    """DataError naming the file and line where a time column of whole numbers (step numbers,
    date serials) that rises but for a few rows does not rise there: rows out of order, or one
    step twice (read as they stood, a forecast ran on from a row in the middle of the series).
    A column that rises nowhere near throughout (hours of a day again and again, ids, a
    quantity, a countdown) is no time column of steps, and is left as it is."""
    n = whole_numbers(f.labels)
    if n is None or len(n) < 3:
        return
    top, late = n[0], []
    for i in range(1, len(n)):
        if n[i] <= top:
            late.append(i)
        top = max(top, n[i])
    if not late or len(late) > max(1, 0.05 * len(n)):
        return
    i = late[0]
    how = "repeats" if n[i] == n[i - 1] else "does not come after"
    raise DataError(f"{f.path}:{f.lines[i]}: {f.labels[i]!r} {how} {f.labels[i - 1]!r}; the "
                    f"time column counts steps, which must rise row by row (one row per step, "
                    f"in time order): sort the rows, or remove the one twice")


def falling(labels):
    """Whether ``labels`` are three or more whole numbers, each below the one above it: a
    countdown, ages before present, or step numbers newest first (read in file order)."""
    n = whole_numbers(labels)
    return n is not None and len(n) > 2 and all(a > b for a, b in zip(n, n[1:]))


def serials_hint(labels):
    """A note for a time column of whole numbers that may be a spreadsheet's date serials."""
    n = whole_numbers(labels)
    if n is None or not SERIALS[0] <= min(n) <= max(n) <= SERIALS[1]:
        return ""
    return (f" (numbers like {labels[0].strip()} may be a spreadsheet's date serials: format "
            f"the column as dates, YYYY-MM-DD, and the season is inferred)")


# the cycle whose rows make the season of a series that skips steps regularly, and the slot of
# a step within it (the hour of the day, the day of the week, the month of the year)
CYCLES = {"hourly": ("day", lambda t: t.date(), lambda t: t.hour),
          "daily": ("week", lambda t: t.isocalendar()[:2], lambda t: t.weekday()),
          "monthly": ("year", lambda t: t.year, lambda t: t.month),
          "quarterly": ("year", lambda t: t.year, lambda t: t.month)}


def rows_per_cycle(times, name, season, same):
    """(cycle, k) where a series of ``name`` steps (``same`` (N-1,) bool: each step the usual
    one) skips the same steps in every cycle, so that most of its whole cycles hold the same k
    slots, fewer than ``season`` (hourly bars of 09:00-15:00, 7 a day; April to October, 7
    months a year): its pattern repeats every k rows, not every ``season``. A series missing
    other steps in each cycle (an hour here, another there) has no such season: None."""
    if name not in CYCLES or np.all(same):
        return None
    cycle, key, slot = CYCLES[name]
    slots = {}
    for t in times:
        slots.setdefault(key(t), []).append(slot(t))
    inner = [frozenset(s) for s in list(slots.values())[1:-1]]   # (the first, last: cut short)
    if len(inner) < 3:
        return None
    kept, n = Counter(inner).most_common(1)[0]
    k = len(kept)
    return (cycle, k) if 2 <= k < season and n >= 0.8 * len(inner) else None
