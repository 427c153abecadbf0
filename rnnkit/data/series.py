"""Time series from CSV for forecasting: the value columns and the time labels (the time
column's dates and season: :mod:`rnnkit.data.dates`; which columns are the time and the values:
:mod:`rnnkit.data.series_columns`; the cells' numbers:
:mod:`rnnkit.data.series_numbers`; the split, transform and scaling:
:mod:`rnnkit.data.series_scale`).

A CSV file with a header row (commas; tabs in a ``.tsv`` file, or a header separated by tabs or
semicolons, where numbers may have a decimal comma); every column named in ``columns``
(default: the last column, or a price file's close; ``all``: every column after the first) is a
variable, the first
column (after the unnamed row index pandas' ``to_csv`` writes, which is left out), if not a
variable, labels the time steps (a year, a date). In long form (``series_column``) rows of time,
series and value make one variable a series (:func:`read_long`). Missing or NaN values raise
DataError saying how many and on which lines (empty cells and the markers of :data:`MISSING`),
unless they are filled (:func:`fill_missing`); so do non-numbers, and numbers not finite in
float32 (inf, or beyond ±3.4e38), which they are stored as. The step between dates gives the
seasonal period (:func:`rnnkit.data.dates.infer_season`: monthly 12, quarterly 4, ...).

Shapes: N time steps, F variables.
"""
import itertools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rnnkit.data.dates import parse_date
from rnnkit.data.series_columns import (by_month, dated, default_column, is_number,
                                        month_columns, newest_first, time_column,
                                        year_and_period)
from rnnkit.data.series_numbers import (MISSING, check_finite, fill_missing, localised, number,
                                        thousands_grouped)
from rnnkit.data.text import (DataError, clip, csv_records, excel_sep, numbered_lines,
                              read_text)
from rnnkit.data.time_steps import falling


@dataclass
class SeriesFile:
    """One CSV series: values (N, F), column names, time labels (N,) and their line numbers."""
    path: Path
    values: np.ndarray
    names: list
    labels: list
    lines: list
    timed: bool          # the first column labels the steps (it is not a value column)
    filled: int = 0      # missing values filled (fill_missing)
    notes: list = field(default_factory=list)   # what the reading did that a user should know


def read_series(path, columns=""):
    """(values (N, F) float32, column names, time labels (N,)) from a CSV file."""
    f = read_series_file(path, columns)
    return f.values, f.names, f.labels


def read_series_file(path, columns="", series_column="", fill="none"):
    """A :class:`SeriesFile` read from a CSV file with a header row (the first non-blank line);
    line numbers are those where records start (a quoted field may span lines). With
    ``series_column`` the file is in long form (:func:`read_long`). ``fill`` (:data:`rnnkit.data.series_numbers.FILLS`)
    fills missing values (:func:`fill_missing`) instead of refusing them."""
    path = Path(path)
    hint, text = excel_sep(read_text(path))
    sep = hint or delimiter(text, path)
    rows = [(i, r) for i, r in csv_records(text, path, sep) if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path}: no header and no values (only empty fields)")
    notes = []
    head_line, header, body = header_and_body(rows, notes)
    if pandas_index(header, body):   # pandas' to_csv: an unnamed first column of row numbers
        header, body = header[1:], [(i, r[1:]) for i, r in body]
    while (len(header) > 1 and not header[-1].strip()
           and all(len(r) == len(header) and not r[-1].strip() for _, r in body)):
        header, body = header[:-1], [(i, r[:-1]) for i, r in body]   # a trailing separator
    years = [h.strip() for h in header if parse_date(h.strip())]      # 1960, 2023Q4, ...
    if len(years) >= 3 and len(years) >= len(header) // 2 and body and not dated(body, 0):
        raise DataError(f"{path}:{head_line}: the header names times ({years[0]!r}, "
                        f"{years[1]!r}, ... {years[-1]!r}): a wide table, a row per series; "
                        f"write a row per time instead (pandas: df.set_index(NAME).T.to_csv())")
    months = month_columns(header)
    if months and not series_column:
        header, body = by_month(header, body, months, path)
    if series_column:
        return read_long(path, head_line, header, body, columns, series_column, sep, fill, notes)
    if columns.strip() == "all":   # every column after the first (the dates or step labels)
        if len(header) < 2:
            raise DataError(f"{path}:{head_line}: --columns all takes every column after the "
                            f"first; the header has {len(header)}")
        columns = ",".join(header[1:])
    names = [c.strip() for c in columns.split(",") if c.strip()] or [default_column(header, body)]
    if not names[0]:
        raise DataError(f"{path}:{head_line}: the last column of the header has no name; name it "
                        f"or choose columns with --columns")
    index = {h.strip(): j for j, h in enumerate(header)}
    twice = [n for n in dict.fromkeys(names)
             if names.count(n) > 1 or [h.strip() for h in header].count(n) > 1]
    if twice:
        raise DataError(f"{path}:{head_line}: column {twice[0]!r} is named more than once (in "
                        f"the header or in --columns); each value column needs its own name")
    missing = [n for n in names if n not in index]
    if missing:
        raise DataError(f"{path}:{head_line}: no column {missing[0]!r} in the header; columns: "
                        f"{header}")
    cols = [index[n] for n in names]
    for j, name in zip(cols, names):
        body = localised(body, j, path, name) if sep == ";" else \
            thousands_grouped(body, j, name, notes)
    values = np.full((len(body), len(cols)), np.nan, dtype=np.float64)       # (N, F)
    for k, (lineno, row) in enumerate(body):
        if len(row) != len(header):
            raise DataError(f"{path}:{lineno}: expected {len(header)} fields like the header "
                            f"(line {head_line}), got {len(row)}: {clip(row)}")
        for f, j in enumerate(cols):
            values[k, f] = number(row[j], path, lineno, names[f])
    values, filled = fill_missing(values, fill, names, path)
    check_finite(values, [ln for ln, _ in body], names, path)
    labels = year_and_period(header, body, cols)
    t = time_column(header, body, cols) if labels is None else 0
    if labels is None:
        labels = [r[t].strip() for _, r in body] if t is not None else \
            [str(i) for i in range(len(body))]
    lines = [ln for ln, _ in body]
    if t is not None and newest_first(labels):
        values, labels, lines = values[::-1], labels[::-1], lines[::-1]
        notes.append(f"its rows run newest first ({labels[-1]!r} on line {lines[-1]}): read "
                     f"in time order")
    elif t is not None and falling(labels):
        notes.append(f"its time column falls row by row ({labels[0]!r}, {labels[1]!r}, ...): "
                     f"read in file order, as a countdown; if its rows run newest first, sort "
                     f"them oldest first")
    notes += float32_notes(values, names, lines)
    return SeriesFile(path, values.astype(np.float32), names, labels, lines, t is not None,
                      filled, notes)


def float32_notes(values, names, lines):
    """Notes for value columns (N, F) float64 whose steps float32 (7 significant digits, what
    the series is kept in) rounds coarsely against the column's spread: 123456818.95 reads
    123456816, where the values move by tens."""
    lost = np.abs(values.astype(np.float32).astype(np.float64) - values)      # (N, F)
    spread = np.nanstd(values, axis=0)
    out = []
    for j, name in enumerate(names):
        i = int(np.nanargmax(lost[:, j])) if len(values) else 0
        if len(values) and spread[j] > 0 and lost[i, j] > 1e-3 * spread[j]:
            unit = 10.0 ** math.ceil(math.log10(100 * spread[j]))   # what is left: 7 digits do
            offset = round(float(np.nanmedian(values[:, j])) / unit) * unit
            out.append(f"column {name!r}: values such as {float(values[i, j])!r} (line "
                       f"{lines[i]}) are kept to float32's 7 significant digits "
                       f"({float(np.float32(values[i, j]))!r}), coarse against the series' "
                       f"spread ({spread[j]:.3g}); subtract a constant such as {offset:.15g} "
                       f"first to keep their detail")
    return out


def header_and_body(rows, notes):
    """(header line, header, body rows) of a file's non-blank records: ``#`` comment lines and a
    title or preamble of one field before a header of names (Google Trends' "Category: ...")
    are passed over, and so are a second and third header row holding no number (yfinance's
    "Ticker" and "Date" rows); a first row of data (a date, or a number other than the column
    numbers 0, 1, 2, ... that numpy's arrays get, first, a value last) is no header: its
    columns are named column1, column2, ...; a footer after the rows (a line of
    words, of another width, where the rows start with a date or number: a title or source) is
    left out, and so is a last row of the same width whose first cell holds words and no digit
    ("Total", "Source: ..."). What was passed over is told in ``notes``."""
    while len(rows) > 1 and rows[0][1][0].lstrip().startswith("#"):
        rows = rows[1:]                                   # comments before the header
    while (len(rows) > 2 and len(rows[0][1]) == 1 and len(rows[1][1]) > 1
           and all(_is_text(c) or not c.strip() for c in rows[1][1])):
        rows = rows[1:]                                   # a title above a header of names
    while (len(rows) > 2 and 1 < len(rows[0][1]) and _is_text(rows[-1][1][0])
           and (len(rows[0][1]) != len(rows[-1][1]) or not any(map(str.isdigit, rows[-1][1][0])))
           and not _is_text(rows[-2][1][0])):
        notes.append(f"line {rows[-1][0]} ({clip(rows[-1][1][0], 40)!r}) is no row of the "
                     f"table: left out")
        rows = rows[:-1]
    (head_line, header), body = rows[0], rows[1:]
    if len(header) > 1 and _is_value(header[-1]) and (_looks_dated(header[0]) or (
            is_number(header[0]) and [h.strip() for h in header] not in (
                [str(j) for j in range(len(header))], [str(j + 1) for j in range(len(header))]))):
        names = [f"column{j + 1}" for j in range(len(header))]
        notes.append(f"line {head_line} holds data, not column names: the columns are named "
                     f"{', '.join(names[:3])}{', ...' if len(names) > 3 else ''}")
        return head_line, names, rows
    for _ in range(2):          # words and empty cells only, no date first: another header
        if body and len(body) > 1 and len(body[0][1]) == len(header) \
                and all(_is_text(c) or not c.strip() for c in body[0][1]) \
                and not _looks_dated(body[0][1][0]):
            notes.append(f"line {body[0][0]} ({clip(','.join(body[0][1]), 40)!r}) is a further "
                         f"header row: left out")
            body = body[1:]
    return head_line, header, body


def _is_value(cell):
    """A number or a missing-value marker (not an empty cell)."""
    return is_number(cell) or (cell.strip().lower() in MISSING and bool(cell.strip()))


def _looks_dated(cell):
    """A date, read alone (a slashed date in either order)."""
    cell = cell.strip()
    return any(parse_date(cell, o) is not None for o in ("", "dmy", "mdy"))


def _is_text(cell):
    """Whether a cell is neither a number nor a date: words, as a title or a source line."""
    return not is_number(cell) and parse_date(cell.strip()) is None and any(
        c.isalpha() for c in cell)


def same_series(part, names, like):
    """``part`` (a :class:`SeriesFile`) with its variables in the order ``names``, where it
    holds the same ones (long-form files may list their series in another order)."""
    if sorted(part.names) != sorted(names):
        raise DataError(f"{part.path}: columns {part.names}, expected {names} like {like}")
    order = [part.names.index(n) for n in names]
    return replace(part, values=part.values[:, order], names=list(names))


def delimiter(text, path):
    """The file's field separator: a tab in a ``.tsv`` file; a semicolon where every one of the
    first lines holds as many (a spreadsheet's export, whose names may hold a comma); else a
    comma, or where the header line holds no comma, a tab or a semicolon if it holds one."""
    if path.name.lower().endswith((".tsv", ".tsv.gz")):
        return "\t"
    lines = [line for _, line in itertools.islice(numbered_lines(text), 200)
             if line.strip()][:50]
    head = lines[0] if lines else ""
    if len({line.count(";") for line in lines} - {0}) == 1 and all(";" in l for l in lines):
        return ";"            # the same semicolons on every line, a comma in the header's names
    if "," not in head:
        for sep in ("\t", ";"):
            if sep in head:
                return sep
    return ","


def pandas_index(header, body):
    """Whether the first column is the row index pandas writes (``DataFrame.to_csv``): no name
    (or ``Unnamed: 0``, a file read and written again), the numbers 0, 1, 2, ..., with more
    columns after it; it is then left out."""
    return (len(header) > 2 and header[0].strip() in ("", "Unnamed: 0") and bool(body)
            and all(len(r) > 0 and r[0].strip() == str(i) for i, (_, r) in enumerate(body)))


def read_long(path, head_line, header, body, column, series_column, sep=",", fill="none",
              notes=None):
    """A :class:`SeriesFile` from rows in long form: the time in the first column of dates (or
    the first column), which series
    a row belongs to in ``series_column``, its value in ``column`` (default: the last column
    that is not the series'); one variable per series, named by it, in the order the series
    first appear. Every series must hold the same times, each once (the rows of a series in
    time order)."""
    index = {h.strip(): j for j, h in enumerate(header)}
    if series_column not in index:
        raise DataError(f"{path}:{head_line}: no column {series_column!r} (--series-column) in "
                        f"the header; columns: {header}")
    sid = index[series_column]
    column = column.strip() or next((h.strip() for h in reversed(header)
                                     if h.strip() != series_column), "")
    if "," in column or column == "all":
        raise DataError(f"{path}: with --series-column, --columns names the one value column; "
                        f"got {column!r}")
    if column not in index:
        raise DataError(f"{path}:{head_line}: no value column {column!r} in the header; "
                        f"columns: {header}")
    vid = index[column]
    if sep == ";":
        body = localised(body, vid, path, column)
    tid = next((j for j in range(len(header)) if j not in (sid, vid)
                and dated(body, j, forward=False)), 0)
    if sid == tid:       # (SDMX-CSV's TIME_PERIOD, OWID's Year: the dated column, or the first)
        raise DataError(f"{path}:{head_line}: the first column holds the times; "
                        f"--series-column {series_column!r} is the first")
    if vid in (tid, sid):
        raise DataError(f"{path}:{head_line}: column {column!r} holds the "
                        f"{'times' if vid == tid else 'series'}; --columns names the value column")
    series = {}                                  # name: {time: (line, value)}
    for lineno, row in body:
        if len(row) != len(header):
            raise DataError(f"{path}:{lineno}: expected {len(header)} fields like the header "
                            f"(line {head_line}), got {len(row)}: {clip(row)}")
        name, t = row[sid].strip(), row[tid].strip()
        if not name:
            raise DataError(f"{path}:{lineno}: no series named in column {series_column!r}")
        rows = series.setdefault(name, {})
        if t in rows:
            raise DataError(f"{path}:{lineno}: series {name!r} has time {t!r} twice (lines "
                            f"{rows[t][0]} and {lineno})")
        x = number(row[vid], path, lineno, column)
        if not math.isfinite(x) and fill == "none":
            raise DataError(f"{path}:{lineno}: series {name!r} at {t!r}: a missing or NaN "
                            f"value; fill or drop it first (or train with --fill linear)")
        rows[t] = (lineno, x)
    if not series:
        raise DataError(f"{path}: a header and no rows")
    names = list(series)
    first = series[names[0]]
    for name in names[1:]:
        other = series[name]
        lacks = [t for t in first if t not in other]
        extra = [t for t in other if t not in first]
        if lacks or extra:
            what = (f"lacks {len(lacks)} of the times of series {names[0]!r} (first: "
                    f"{lacks[0]!r}, line {first[lacks[0]][0]})" if lacks else
                    f"has {len(extra)} time(s) series {names[0]!r} lacks (first: {extra[0]!r}, "
                    f"line {other[extra[0]][0]})")
            raise DataError(f"{path}: series {name!r} {what}; every series needs the same "
                            f"times")
    labels = list(first)
    values = np.array([[series[n][t][1] for n in names] for t in labels])    # (N, F)
    values, filled = fill_missing(values, fill, names, path)
    check_finite(values, [first[t][0] for t in labels], names, path)
    return SeriesFile(path, values.astype(np.float32), names, labels,
                      [first[t][0] for t in labels], True, filled, notes or [])
