"""Builders of the named series data sets: each turns a package's file into the CSV
``rnnkit train forecast`` reads (:mod:`rnnkit.data.datasets` names them)."""
import csv
import io
from pathlib import Path

import numpy as np


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


def year_by_month(files):
    """A table of a year and 12 monthly values a row (statsmodels' elnino.csv) -> CSV
    ``month,value``."""
    rows = list(csv.reader(io.StringIO(Path(files[0]).read_text(encoding="ascii"))))
    out = ["month,value\n"]
    for row in rows[1:]:
        if row and row[0].strip():
            year = int(float(row[0]))
            out += [f"{year}-{k:02d},{v.strip()}\n" for k, v in enumerate(row[1:13], 1)]
    return "".join(out).encode("ascii")


def columns_of(names, header=None):
    """A builder keeping the CSV columns ``names`` (in that order) under ``header``: the first
    is the time column."""
    def build(files):
        rows = list(csv.reader(io.StringIO(Path(files[0]).read_text(encoding="utf-8-sig"))))
        index = [[h.strip() for h in rows[0]].index(n) for n in names]
        lines = [",".join(header or names)] + [",".join(r[j] for j in index) for r in rows[1:] if r]
        return ("\n".join(lines) + "\n").encode("ascii")
    return build


def year_quarter(column):
    """A builder for statsmodels' macrodata.csv: ``quarter,<column>`` with ``YYYY-Qn`` labels."""
    def build(files):
        rows = list(csv.DictReader(io.StringIO(Path(files[0]).read_text(encoding="ascii"))))
        lines = [f"quarter,{column}"] + [f"{int(float(r['year']))}-Q{int(float(r['quarter']))},"
                                         f"{r[column]}" for r in rows]
        return ("\n".join(lines) + "\n").encode("ascii")
    return build
