"""Which columns of a series file label its time and which hold its values (read by
:mod:`rnnkit.data.series`): the time column (the first, or a later column of dates or step
numbers named as the time: ``id,date,value``, ``value,date``, ``sales,day``), rows newest first,
``year,month`` columns, a ``Year,Jan,...,Dec`` table, and the value column when none is named.
"""
import re

from rnnkit.data.dates import label_form, parse_date
from rnnkit.data.series_numbers import MISSING
from rnnkit.data.text import DataError


def newest_first(labels):
    """Whether every date of ``labels`` comes before the one above it (INSEE's files). Whole
    numbers that fall row by row and are no dates (a countdown, ages before present) are read
    in file order (:func:`rnnkit.data.time_steps.falling`)."""
    form = label_form(labels) or ""
    times = [parse_date(x, form) for x in labels]
    return len(times) > 1 and None not in times and all(a > b for a, b in zip(times, times[1:]))


def year_and_period(header, body, cols):
    """``YYYY-MM`` or ``YYYY-Qn`` labels where the time is a year column and a month or quarter
    column (``year,month,...``, as NOAA and statsmodels write it), else None."""
    names = [h.strip().lower() for h in header[:2]]
    if len(header) < 3 or 0 in cols or 1 in cols or names[0] not in ("year", "yr"):
        return None
    form = {"month": "{}-{:02d}", "mo": "{}-{:02d}", "quarter": "{}-Q{}", "qtr": "{}-Q{}",
            "q": "{}-Q{}"}.get(names[1])
    cells = [(r[0].strip().removesuffix(".0"), r[1].strip().removesuffix(".0")) for _, r in body]
    if form is None or not all(y.isdigit() and p.isdigit() for y, p in cells):
        return None
    return [form.format(y, int(p)) for y, p in cells]


TIME_NAMES = {"date", "time", "datetime", "timestamp", "ds", "period", "month", "week", "day",
              "date_time", "dt", "time_stamp", "quarter", "hour"}   # a header naming the time


def time_column(header, body, cols):
    """The column that labels the steps: the first one, if not a value column, unless its labels
    are no dates and another column's (not a value column) are (``id,date,value``), or the
    header names another column as the time (``date``, ``time``, ...) and not the first; None
    where every column is a value column."""
    names = [h.strip().lower() for h in header]
    if 0 in cols:    # value,date: a later column named as the time that holds dates or steps
        return next((j for j in range(1, len(header)) if j not in cols
                     and names[j] in TIME_NAMES and timed(body, j)), None) if body else None
    if names and names[0] not in TIME_NAMES:   # id,date,value: ids 1000-9999 read as years
        named = next((j for j in range(1, len(names)) if j not in cols  # (newest first too)
                      and names[j] in TIME_NAMES and dated(body, j, forward=None)),
                     None) if body else None
        if named is not None:
            return named
    if body and not dated(body, 0):
        return next((j for j in range(1, len(header)) if j not in cols and dated(body, j)), 0)
    return 0


def timed(body, j):
    """Whether column ``j`` (named as the time) labels the steps: dates in any order (rows out
    of order are refused later, by their line), or step numbers, whole numbers one way in order
    (a ``day`` of 1, 2, 3, ...; a ``month`` of 1..12 again and again beside a year is none), of
    the first 50 rows."""
    cells = [r[j].strip() if j < len(r) else "" for _, r in body[:50]]
    if all(re.fullmatch(r"[+-]?\d+", c) for c in cells):
        n = [int(c) for c in cells]
        steps = list(zip(n, n[1:]))
        return all(a < b for a, b in steps) or all(a > b for a, b in steps)
    return dated(body, j, forward=False)


def dated(body, j, forward=True):
    """Whether column ``j`` of the first 50 rows holds dates (read as :func:`parse_date` reads a
    column); with ``forward``, a column after the first must also run forward in time (a
    ``year`` column beside month and day columns, a pressure of 1013 hPa, do not label the
    steps); with None, forward or backward (newest first, turned round later)."""
    cells = [r[j].strip() if j < len(r) else "" for _, r in body[:50]]
    form = label_form(cells) or ""
    times = [parse_date(c, form) for c in cells]
    pairs = list(zip(times, times[1:]))
    return None not in times and (
        j == 0 or forward is False or all(a < b for a, b in pairs)
        or forward is None and all(a > b for a, b in pairs))


PRICE_COLUMNS = ("adj close", "adj_close", "adjusted close", "close")


def default_column(header, body=()):
    """The value column when none is named: a price file's (Open, High, Low, Close, Volume, as
    Yahoo Finance writes it) adjusted or plain close, the one before a last column of dates
    named as the time (``value,date``), else the last column, unless it holds
    codes or flags (no digit in any cell: INSEE's "A", PJM's "True"): then the last before it
    that holds digits."""
    names = [h.strip().lower() for h in header]
    if "open" in names:
        for name in PRICE_COLUMNS:
            if name in names:
                return header[names.index(name)].strip()
    last = len(header) - 1
    if body and last > 0 and names[last] in TIME_NAMES and timed(body, last):
        return header[last - 1].strip()          # value,date (sales,day): the time comes last
    codes = lambda j: all(not any(c.isdigit() for c in r[j]) and r[j].strip().lower()
                          not in MISSING for _, r in body[:50] if j < len(r))
    if body and codes(len(header) - 1):
        j = next((j for j in range(len(header) - 2, 0, -1) if not codes(j)), len(header) - 1)
        return header[j].strip()
    return header[-1].strip()


MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def month_columns(header):
    """The columns of January to December where the header is a year-by-month table
    (``Year,Jan,...,Dec[,Annual]``, as statistics offices publish them), else None."""
    names = [h.strip().lower()[:3] for h in header]
    if len(header) < 13 or names[0] not in ("yea", "yr", "") or not all(m in names for m in MONTHS):
        return None
    return [names.index(m) for m in MONTHS]


def by_month(header, body, months, path):
    """A year-by-month table's rows as a monthly series: (header, rows of ``YYYY-MM`` and the
    value), other columns (an annual mean) left out; the months after the last value of the
    last year (not yet published) are left out too."""
    rows = []
    for lineno, row in body:
        year = row[0].strip()
        if not re.fullmatch(r"\d{4}", year):
            raise DataError(f"{path}:{lineno}: a year-by-month table, expected a year first, got "
                            f"{year!r}")
        if len(row) != len(header):
            raise DataError(f"{path}:{lineno}: expected {len(header)} fields like the header, got "
                            f"{len(row)}")
        rows += [(lineno, [f"{year}-{k + 1:02d}", row[j]]) for k, j in enumerate(months)]
    while rows and not is_number(rows[-1][1][1]):
        rows.pop()                                   # a year not yet over
    return [header[0].strip() or "year", "value"], rows


def is_number(cell):
    """Whether a cell reads as a number (not an empty one)."""
    try:
        float(cell)
    except ValueError:
        return False
    return bool(cell.strip())
