"""The feature vectors a conditional generator's first column may hold (``0.1,0.5``,
``0.1;0.5``, ``[0.1, 0.5]``): read as numbers, checked line by line, and refused where they read
two ways (a spreadsheet's decimal commas, thousands separators)."""
import re

import numpy as np

from rnnkit.data.text import DataError


_COMMA_PAIRS = re.compile(r"\s*[-+]?\d+,\d+\s*(;\s*[-+]?\d+,\d+\s*)+")   # 0,71;0,31
_ONE_COMMA = re.compile(r"\s*[-+]?\d+,\d\d+\s*")   # 0,71 or 1,000: one number, or two
# (single digits, 1,0 and 0,1, read as a vector: one-hot pairs, not fractions of a tenth)


def numbers(source):
    """The numbers of a feature vector as written (``0.1,0.5 -2``, ``0.1;0.5``, ``[0.1, 0.5]``:
    commas, semicolons or spaces between them, in square brackets or not), or None if it is not
    one."""
    s = source.strip()
    if s[:1] + s[-1:] == "[]":
        s = s[1:-1]
    try:
        return [float(v) for v in s.replace(",", " ").replace(";", " ").split()] or None
    except ValueError:
        return None


def feature_rows(sources, path, lines, ambiguous=True):
    """Feature vectors (N, F) float32 when every source is a list of numbers of one length
    (:func:`numbers`), else None (the sources are labels). ``lines`` are the sources' line
    numbers in ``path``: numbers not finite in float32 (nan, inf, or beyond ±3.4e38) and rows of
    another length raise DataError naming file and line, and so does a line that is not numbers
    where nine in ten are vectors (two numbers or more, or one with a fraction). ``ambiguous``:
    refuse a file whose every line reads two ways (decimal commas, thousands separators); False
    where the vectors' size is known already (a model's own, line by line)."""
    rows = [numbers(s) for s in sources]
    if not rows:
        return None
    if ambiguous and all(_COMMA_PAIRS.fullmatch(s) for s in sources):
        raise DataError(f"{path}:{lines[0]}: {sources[0][:80]!r} reads two ways: decimal commas "
                        f"between semicolons (a spreadsheet's) or numbers between commas and "
                        f"semicolons; write decimal points (0.71;0.31), or the vector in square "
                        f"brackets ([0,71;0,31]: {len(rows[0])} numbers)")
    if ambiguous and all(_ONE_COMMA.fullmatch(s) for s in sources):
        raise DataError(f"{path}:{lines[0]}: {sources[0][:80]!r} reads three ways: a decimal "
                        f"comma, a thousands separator or two numbers, and every line is so; "
                        f"write decimal points ({sources[0].strip().replace(',', '.')}), numbers "
                        f"without separators, or the vector in square brackets "
                        f"([{sources[0].strip()}]: 2 numbers)")
    if not all(rows):                                 # "," is a label, not a vector of none
        vectors = sum(r is not None and (len(r) > 1 or not r[0].is_integer()) for r in rows)
        if vectors >= 0.9 * len(rows):
            i = next(i for i, r in enumerate(rows) if r is None)
            raise DataError(f"{path}:{lines[i]}: expected a feature vector of numbers, as "
                            f"{vectors:,} of the {len(rows):,} lines hold, got "
                            f"{sources[i][:80]!r}")
        return None
    lengths = [len(r) for r in rows]
    for i, n in enumerate(lengths):
        if n != lengths[0]:
            raise DataError(f"{path}:{lines[i]}: a feature vector of {n} numbers, expected "
                            f"{lengths[0]} like line {lines[0]}")
    with np.errstate(over="ignore"):
        values = np.array(rows, dtype=np.float64).astype(np.float32)           # (N, F)
    bad = np.nonzero(~np.isfinite(values).all(1))[0]
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{path}:{lines[i]}: feature vector {sources[i][:80]!r} holds a number "
                        f"that is not finite as float32 (nan, inf, or beyond ±3.4e38); "
                        f"{len(bad)} such line(s) in all")
    return values
