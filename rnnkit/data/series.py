"""Time series from CSV for forecasting: value columns, a time split, train-only normalisation.

A CSV file with a header row; every column named in ``columns`` (default: the last column) is a
variable, the first column, if not a variable, labels the time steps (a year, a date). Missing
or NaN values raise DataError saying how many and on which lines; so do non-numbers.

Shapes: N time steps, F variables.
"""
import csv
import io
import math
from pathlib import Path

import numpy as np

from rnnkit.data.text import DataError, read_text


def read_series(path, columns=""):
    """(values (N, F) float32, column names, time labels (N,)) from a CSV file."""
    path = Path(path)
    rows = list(csv.reader(io.StringIO(read_text(path))))
    header, body = rows[0], [(i, r) for i, r in enumerate(rows[1:], 2) if any(c.strip() for c in r)]
    names = [c.strip() for c in columns.split(",") if c.strip()] or [header[-1].strip()]
    index = {h.strip(): j for j, h in enumerate(header)}
    missing = [n for n in names if n not in index]
    if missing:
        raise DataError(f"{path}:1: no column {missing[0]!r} in the header; columns: {header}")
    cols = [index[n] for n in names]
    values = np.full((len(body), len(cols)), np.nan, dtype=np.float64)       # (N, F)
    for k, (lineno, row) in enumerate(body):
        if len(row) != len(header):
            raise DataError(f"{path}:{lineno}: expected {len(header)} fields like the header, "
                            f"got {len(row)}: {row}")
        for f, j in enumerate(cols):
            values[k, f] = _number(row[j], path, lineno, names[f])
    _check_finite(values, [ln for ln, _ in body], names, path)
    labels = [r[0] for _, r in body] if cols != [0] else [str(i) for i in range(len(body))]
    return values.astype(np.float32), names, labels


def _number(cell, path, lineno, name):
    cell = cell.strip()
    if cell == "" or cell.lower() in ("nan", "na", "null"):
        return math.nan
    try:
        return float(cell)
    except ValueError:
        raise DataError(f"{path}:{lineno}: column {name!r} holds {cell!r}, expected a number") from None


def _check_finite(values, linenos, names, path):
    bad = ~np.isfinite(values)                                                # (N, F)
    if bad.any():
        rows = np.nonzero(bad.any(1))[0]
        where = ", ".join(str(linenos[i]) for i in rows[:8]) + (", ..." if len(rows) > 8 else "")
        per_col = ", ".join(f"{n}: {int(c)}" for n, c in zip(names, bad.sum(0)) if c)
        raise DataError(f"{path}: {int(bad.sum())} missing or NaN value(s) ({per_col}) on line(s) "
                        f"{where}; fill or drop them first")
    if len(values) < 2:
        raise DataError(f"{path}: a series needs at least 2 rows, got {len(values)}")


def split_series(n, test_fraction, val_fraction):
    """(train_end, val_end): steps [0, train_end) train, [train_end, val_end) validate, rest test."""
    n_test = max(1, round(n * test_fraction))
    n_val = max(1, round(n * val_fraction))
    return n - n_test - n_val, n - n_test


class Scaler:
    """Per-variable standardisation, fitted on the training part only (no look-ahead)."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float32)                        # (F,)
        self.std = np.asarray(std, dtype=np.float32)                          # (F,)

    @classmethod
    def fit(cls, train):
        std = train.std(0)
        return cls(train.mean(0), np.where(std > 0, std, 1.0))

    def transform(self, x):
        return (x - self.mean) / self.std

    def inverse(self, z):
        return z * self.std + self.mean

    def to_dict(self):
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d):
        return cls(d["mean"], d["std"])


# ----------------------------------------------------------------- named data set builders
def monthly_table(files):
    """statsmodels' sunspots_monthly.dat (a year and up to 12 monthly means a row) -> CSV
    ``month,value``; notes and the incomplete last year's missing months are left out."""
    out = ["month,sunspots\n"]
    for line in Path(files[0]).read_text(encoding="ascii").splitlines():
        cells = line.split()
        if len(cells) >= 2 and cells[0].isdigit() and len(cells[0]) == 4:
            out += [f"{cells[0]}-{m:02d},{v}\n" for m, v in enumerate(cells[1:13], 1)]
    return "".join(out).encode("ascii")


def weekly_to_monthly(files):
    """statsmodels' co2.csv (weekly Mauna Loa CO2, 59 empty weeks) -> CSV ``month,co2``: the gaps
    are filled by linear interpolation in time, then each month is the mean of its weeks."""
    rows = list(csv.reader(io.StringIO(Path(files[0]).read_text(encoding="ascii"))))[1:]
    days = np.array([np.datetime64(f"{d[:4]}-{d[4:6]}-{d[6:8]}") for d, _ in rows])
    vals = np.array([float(v) if v else np.nan for _, v in rows])
    t = (days - days[0]).astype(np.int64).astype(float)
    ok = np.isfinite(vals)
    vals = np.interp(t, t[ok], vals[ok])
    months = [str(d)[:7] for d in days]
    out = ["month,co2\n"]
    for m in dict.fromkeys(months):
        sel = [v for mm, v in zip(months, vals) if mm == m]
        out.append(f"{m},{sum(sel) / len(sel):.3f}\n")
    return "".join(out).encode("ascii")
