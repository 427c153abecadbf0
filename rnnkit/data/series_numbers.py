"""The numbers in a series file's cells: missing-value markers, decimal commas and thousands
separators, float32's range, and filling the missing values (:mod:`rnnkit.data.series` reads
the files).

Shapes: N time steps, F variables.
"""
import math
import re

import numpy as np

from rnnkit.data.text import DataError, clip


FLOAT32_MAX = float(np.finfo(np.float32).max)
FILLS = ("none", "linear", "previous")


def fill_missing(values, fill, names, path):
    """(values (N, F) with their missing (NaN) values filled, how many were): ``linear``
    interpolates between the values either side (a run at the start or end takes the nearest
    value), ``previous`` carries the last value forward (the first values take the first
    known one); ``none`` leaves them (the caller refuses them). A column with no value at all
    raises DataError."""
    missing = np.isnan(values)                                               # (N, F)
    if fill == "none" or not missing.any():
        return values, 0
    values = values.copy()
    steps = np.arange(len(values))
    for f in range(values.shape[1]):
        known = ~missing[:, f]
        if not known.any():
            raise DataError(f"{path}: column {names[f]!r} holds no value to fill from")
        if fill == "linear":
            values[:, f] = np.interp(steps, steps[known], values[known, f])
        else:
            last = np.maximum.accumulate(np.where(known, steps, -1))           # (N,)
            values[:, f] = values[np.where(last >= 0, last, np.argmax(known)), f]
    return values, int(missing.sum())


_COMMA_NUMBER = re.compile(r"^\s*[-+]?\d{1,3}(\.\d{3})*,\d+\s*$|^\s*[-+]?\d+,\d+\s*$")
_GROUPED = re.compile(r"^\s*[-+]?[1-9]\d{0,2}(\.\d{3})+\s*$")      # 1.000, 12.345.678
_WHOLE = re.compile(r"^\s*[-+]?\d+\s*$")


_THOUSANDS = re.compile(r"^\s*[-+]?[1-9]\d{0,2}(,\d{3})+(\.\d+)?\s*$")   # 1,234.50
_DECIMAL = re.compile(r"^\s*[-+]?\d+,\d+\s*$")                            # 0,512


def thousands_grouped(body, j, name, notes):
    """``body`` with column ``j`` of a comma file read in the decimal point's form, where a
    spreadsheet quoted its cells: every cell holding a comma a number grouped in thousands
    (``"1,234.50"``: the commas are left out), or every one a number with one comma and some
    that no thousands could be (``"0,512"``, ``"12,5"``: a decimal comma, as a spreadsheet in
    much of Europe writes it; ``"1,109"`` beside them is 1.109). A column whose every number
    reads both ways (``"1,085"`` alone, no ``999`` or ``1.5`` beside it) is read as thousands,
    as comma files write them, with a note in ``notes``."""
    cells = [r[j] for _, r in body if j < len(r)]
    commas = [c for c in cells if "," in c]
    if commas and all(_THOUSANDS.match(c) for c in commas):
        plain = [c for c in cells if "," not in c and c.strip().lower() not in MISSING]
        if not plain and all(_DECIMAL.match(c) for c in commas):
            notes.append(f"column {name!r}: {commas[0].strip()!r} and every number like it read "
                         f"with a comma between thousands ({commas[0].strip().replace(',', '')}"
                         f"), not a decimal comma; write decimal points if it is one")
        convert = lambda c: c.replace(",", "")                                # noqa: E731
    elif commas and all(_DECIMAL.match(c) for c in commas):
        convert = lambda c: c.replace(",", ".")                               # noqa: E731
    else:
        return body
    return [(i, r[:j] + [convert(r[j])] + r[j + 1:] if j < len(r) else r) for i, r in body]


def localised(body, j, path, name):
    """``body`` with column ``j`` of a semicolon file in the decimal point's form. Spreadsheets
    in much of Europe write a decimal comma and dots between thousands (``1.234,5``): a column
    holding a decimal comma is read so, and so is one whose dotted numbers are all thousands
    (``1.000``) beside whole numbers under 1,000 (``990``); a column of such dotted numbers
    alone reads either way and raises DataError."""
    cells = [r[j] if j < len(r) else "" for _, r in body]
    grouped = [c for c in cells if _GROUPED.match(c)]
    if any(_COMMA_NUMBER.match(c) for c in cells):
        convert = lambda c: (c.replace(".", "").replace(",", ".")
                             if _COMMA_NUMBER.match(c) or _GROUPED.match(c) else c)
    elif grouped and all(_GROUPED.match(c) or "." not in c for c in cells):
        whole = [c for c in cells if _WHOLE.match(c)]
        if not whole:
            i = cells.index(grouped[0])
            raise DataError(f"{path}:{body[i][0]}: column {name!r} holds {grouped[0].strip()!r} "
                            f"and only numbers like it: dots between thousands or decimal points? "
                            f"write the numbers without thousands separators (or with a decimal "
                            f"comma)")
        if max(len(c.strip().lstrip("+-")) for c in whole) > 3:
            return body                     # 1234 beside 1.000: the dots are decimal points
        convert = lambda c: c.replace(".", "") if _GROUPED.match(c) else c
    else:
        return body
    return [(i, r[:j] + [convert(r[j])] + r[j + 1:] if j < len(r) else r) for i, r in body]


# how files mark a missing value: empty, NaN, R's NA, FRED's ".", Excel's #N/A and its other
# error cells, UCI's "?", Eurostat's ":", a dash
MISSING = {"", "nan", "na", "null", "none", "n/a", "#n/a", ".", "?", ":", "-", "--", "#value!",
           "#div/0!", "#ref!", "#num!", "#name?", "#null!", "#n/a n/a"}


def number(cell, path, lineno, name):
    """The number in a cell; NaN where it is missing. Numbers that would not be finite as the
    float32 they are stored as (inf, 1e308) raise DataError."""
    cell = cell.strip()
    if cell.lower() in MISSING:
        return math.nan
    try:
        x = float(cell)
    except ValueError:
        raise DataError(f"{path}:{lineno}: column {name!r} holds {clip(cell)!r}, expected a "
                        f"number") from None
    if abs(x) > FLOAT32_MAX:                          # inf too; NaN is missing
        raise DataError(f"{path}:{lineno}: column {name!r} holds {clip(cell)!r}, which is "
                        f"{'infinite' if math.isinf(x) else 'beyond the float32 range'}; expected a "
                        f"finite number within ±{FLOAT32_MAX:.4g} (values are stored as float32)")
    return x


def check_finite(values, linenos, names, path):
    bad = ~np.isfinite(values)                                                # (N, F)
    if bad.any():
        rows = np.nonzero(bad.any(1))[0]
        where = ", ".join(str(linenos[i]) for i in rows[:8]) + (", ..." if len(rows) > 8 else "")
        per_col = ", ".join(f"{n}: {int(c)}" for n, c in zip(names, bad.sum(0)) if c)
        raise DataError(f"{path}: {int(bad.sum())} missing or NaN value(s) ({per_col}) on line(s) "
                        f"{where}; fill or drop them first, or train with --fill linear (or previous)")
    if len(values) < 2:
        raise DataError(f"{path}: a series needs at least 2 rows, got {len(values)}")


FAR = 1e6   # a value this many median absolute deviations from the median is warned about


def far_value(f, main):
    """A warning about the first value of ``f`` more than :data:`FAR` median absolute deviations
    from its column's median in ``main`` (a typo such as 1e30 in a series of hundreds: the model
    scales by the series' spread, so the other values all look the same to it and the errors
    blow up), or None."""
    for k, name in enumerate(f.names):
        col = main.values[:, k].astype(np.float64)
        centre = np.nanmedian(col)
        spread = np.nanmedian(np.abs(col - centre))
        if not spread > 0:
            continue
        away = np.abs(f.values[:, k].astype(np.float64) - centre) / spread
        i = int(np.nanargmax(away)) if np.isfinite(away).any() else 0
        if away[i] > FAR:
            return (f"{f.path}:{f.lines[i]}: column {name!r} holds {f.values[i, k]:.6g}, "
                    f"{away[i]:.2g} times the series' median absolute deviation ({spread:.4g}) "
                    f"from its median ({centre:.4g}): a data error? The model scales by the "
                    f"series' spread, so its forecasts and errors will be dominated by it")
    return None
