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
    years, Unix times, date serials) does not rise row by row: rows out of order, or one step
    twice (read as they stood, a forecast ran on from a row in the middle of the series)."""
    n = whole_numbers(f.labels)
    for i in range(1, len(n or ())):
        if n[i] <= n[i - 1]:
            how = "repeats" if n[i] == n[i - 1] else "does not come after"
            raise DataError(f"{f.path}:{f.lines[i]}: {f.labels[i]!r} {how} "
                            f"{f.labels[i - 1]!r}; the time column counts steps, which must "
                            f"rise row by row (one row per step, in time order)")


def serials_hint(labels):
    """A note for a time column of whole numbers that may be a spreadsheet's date serials."""
    n = whole_numbers(labels)
    if n is None or not SERIALS[0] <= min(n) <= max(n) <= SERIALS[1]:
        return ""
    return (f" (numbers like {labels[0].strip()} may be a spreadsheet's date serials: format "
            f"the column as dates, YYYY-MM-DD, and the season is inferred)")


# the cycle whose rows make the season of a series that skips steps regularly
CYCLES = {"hourly": ("day", lambda t: t.date()), "daily": ("week", lambda t: t.isocalendar()[:2]),
          "monthly": ("year", lambda t: t.year), "quarterly": ("year", lambda t: t.year)}


def rows_per_cycle(times, name, season, same):
    """(cycle, k) where a series of ``name`` steps (``same`` (N-1,) bool: each step the usual
    one) skips steps at regular places, so that most of its whole cycles hold the same k rows,
    fewer than ``season`` (hourly bars of 09:00-15:00, 7 a day; April to October, 7 months a
    year): its pattern repeats every k rows, not every ``season``. Else None."""
    if name not in CYCLES or np.all(same):
        return None
    cycle, key = CYCLES[name]
    counts = list(Counter(map(key, times)).values())[1:-1]   # (the first and last: cut short)
    if len(counts) < 3:
        return None
    k, n = Counter(counts).most_common(1)[0]
    return (cycle, k) if 2 <= k < season and n >= 0.8 * len(counts) else None
