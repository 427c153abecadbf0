"""The time column of a series: its labels read as dates, the seasonal period and frequency read
off their step (:func:`infer_season`: monthly 12, quarterly 4, weekly 52, daily 7, business
days (Monday to Friday) 5, hourly 24, yearly 1), and the check that a file continuing a series starts where it ends
(:func:`check_continues`). Dates: YYYY, YYYY-Qn, ISO dates and times (with a UTC offset, read in
UTC), a few month-name forms, and a spreadsheet's DD/MM/YYYY or MM/DD/YYYY where the column
tells the order (:func:`slash_order`). Errors name the file and line.
"""
import calendar
import re
from datetime import datetime, timedelta, timezone

import numpy as np

from rnnkit.data.text import DataError
from rnnkit.data.time_steps import check_steps_rise, rows_per_cycle, serials_hint

DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M",
                "%Y-%m-%d", "%Y/%m/%d", "%Y-%m", "%Y/%m", "%YM%m", "%Y %b", "%b %Y", "%b-%d-%Y",
                "%d %b %Y", "%Y %B", "%B %Y", "%b-%Y", "%B-%Y", "%Y-%b", "%m/%Y", "%m.%Y",
                "%b %d, %Y", "%B %d, %Y", "%d %B %Y", "%d-%b-%Y")
_QUARTER = re.compile(r"^(\d{4})[- ]?[Qq]([1-4])$")
_QUARTER_FIRST = re.compile(r"^[Qq]([1-4])[- /]?(\d{4})$")
_ISO_WEEK = re.compile(r"^(\d{4})-?W(\d\d)$")
_INTEGER = re.compile(r"^[-+]?\d+$")
_DECIMAL_YEAR = re.compile(r"^(\d{4})\.(\d+)$")           # R's time(ts): 1949.08333
_MIDNIGHT = re.compile(r"^\d{4}-\d\d-\d\d[T ]00:00(:00(\.0+)?)?(Z|[+-]\d\d:?\d\d)$")
# seconds since 1970 (or milliseconds): integers of this size, every step whole minutes
EPOCHS = {"unix": (1e8, 1e11, 1), "unix_ms": (1e11, 1e14, 1000)}
_YEAR = re.compile(r"^(\d{4})(\.0*)?$")
_DMY = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})( \d\d?:\d\d(?::\d\d)?)?"
                  r"(?: ?([AaPp][Mm]))?$")                # 1/1/2023 5:00:00 AM
_ZONE = re.compile(r"(Z|[+-]\d\d:?\d\d)$")
_ISO = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?$")
_DATELIKE = re.compile(r"\d{4}[-/ ]\S|\d[-/.]\d{1,2}[-/.]\d|\d:\d\d|^[A-Za-z]{3}[-/ ]?\d")
# name: (season, step in seconds, or 0 and a calendar step in months)
FREQUENCIES = {"hourly": (24, 3600, 0), "daily": (7, 86400, 0), "weekly": (52, 7 * 86400, 0),
               "monthly": (12, 0, 1), "quarterly": (4, 0, 3), "yearly": (1, 0, 12)}
FORMATS_TEXT = ("YYYY, YYYY-MM, YYYY-Qn, Qn YYYY, YYYY-Www, YYYY-MM-DD, YYYY-MM-DD "
                "HH:MM[:SS][.fff][+HH:MM], Jan 2020, January 2020, MM/YYYY, Unix seconds or "
                "milliseconds, or DD/MM/YYYY and MM/DD/YYYY where a day past 12 or a fixed day "
                "tells which")


def epoch_form(labels):
    """"unix" or "unix_ms" where every label is a whole number of seconds (milliseconds) since
    1970 of a plausible size, each step whole minutes; else ""."""
    if not labels or not all(_INTEGER.match(x) for x in labels):
        return ""
    v = np.array([int(x) for x in labels], dtype=np.float64)
    for name, (low, high, unit) in EPOCHS.items():
        if (low <= np.abs(v)).all() and (np.abs(v) < high).all() and (
                len(v) < 2 or not (np.diff(v) % (60 * unit)).any()):
            return name
    return ""


def label_form(labels):
    """How a column of time labels reads, for :func:`parse_date`: "dmy" or "mdy"
    (:func:`slash_order`), "local" (every label a local midnight with its UTC offset: read as the
    date), "unix" or "unix_ms" (:func:`epoch_form`), "" (each label by its own form), or None
    where slashed dates read either way."""
    order = slash_order(labels)
    if order != "":
        return order
    if labels and all(_MIDNIGHT.match(x) for x in labels):
        return "local"      # dates at local midnight (yfinance): the date, not the UTC time
    return epoch_form(labels)


def slash_order(labels):
    """How a column of dates like ``01/02/2020`` (slashes, dots or dashes, the year last) reads:
    "dmy" where some first number exceeds 12, "mdy" where some second one does; else the one
    that never changes while the other does is the day (monthly dates on a fixed day), or,
    where a date comes back with several times of day (hours within one month), the month;
    None where nothing tells (ambiguous), "" where the labels are no such dates."""
    found = [m for m in map(_DMY.match, labels) if m]
    if not found:
        return ""
    if any(int(m[1]) > 12 for m in found):
        return "dmy"
    if any(int(m[2]) > 12 for m in found):
        return "mdy"
    firsts, seconds = {m[1] for m in found}, {m[2] for m in found}
    days = [m[0].split()[0] for m in found]
    hours = len(set(days)) < len(days)          # several times a day: the fixed one is the month
    if len(seconds) == 1 < len(firsts):
        return "dmy" if hours else "mdy"
    if len(firsts) == 1 < len(seconds):
        return "mdy" if hours else "dmy"
    return None


def parse_date(label, order=""):
    """A time label -> datetime, or None where it is no date rnnkit reads (year 0 included).
    ``order`` ("dmy" or "mdy", :func:`slash_order`) reads dates like ``31/01/2020``; "unix" and
    "unix_ms" (:func:`epoch_form`) read whole numbers as seconds (milliseconds) since 1970."""
    if order in EPOCHS:
        if not _INTEGER.match(label):
            return None
        return datetime(1970, 1, 1) + timedelta(seconds=int(label) / EPOCHS[order][2])
    m = _DMY.match(label)
    if m and order:
        day, month = (m[1], m[2]) if order == "dmy" else (m[2], m[1])
        hms = [int(x) for x in m[4].split(":")] + [0] if m[4] else [0, 0, 0]
        if m[5]:                                      # a 12-hour clock
            if not 1 <= hms[0] <= 12:
                return None
            hms[0] = hms[0] % 12 + 12 * (m[5].lower() == "pm")
        try:
            return datetime(int(m[3]), int(month), int(day), *hms[:3])
        except ValueError:
            return None
    m = _QUARTER.match(label)                         # (datetime starts at year 1)
    if m:
        return datetime(int(m[1]), 3 * int(m[2]) - 2, 1) if int(m[1]) >= 1 else None
    m = _QUARTER_FIRST.match(label)
    if m:
        return datetime(int(m[2]), 3 * int(m[1]) - 2, 1) if int(m[2]) >= 1 else None
    m = _ISO_WEEK.match(label)
    if m:
        try:
            return datetime.strptime(f"{m[1]}-W{m[2]}-1", "%G-W%V-%u")
        except ValueError:
            return None
    m = _YEAR.match(label)
    if m:
        return datetime(int(m[1]), 1, 1) if int(m[1]) >= 1 else None
    m = _DECIMAL_YEAR.match(label)
    if m:                                             # a month's start as a fraction of a year
        month = float("0." + m[2]) * 12
        ok = abs(month - round(month)) < 0.01 and round(month) < 12 and int(m[1]) >= 1
        return datetime(int(m[1]), round(month) + 1, 1) if ok else None
    if _INTEGER.match(label):   # a step number: no format below reads digits alone (a 200,000
        return None             # step file took 34 s in their strptime, 5 s as dates)
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(label, fmt)
        except ValueError:
            pass
    if _ISO.match(label):   # ISO 8601 with a UTC offset or fractions of a second (pandas writes
        try:                # a time-zone-aware index so): the time in UTC, without its zone
            d = datetime.fromisoformat(label.replace("Z", "+00:00"))
        except ValueError:
            return None
        if order == "local":
            return d.replace(tzinfo=None)
        return d.astimezone(timezone.utc).replace(tzinfo=None) if d.tzinfo else d
    return None


def read_both_ways(labels, order):
    """Whether slashed dates that ``order`` reads (no number past 12 decided it) read as a
    series of even steps the other way too (01/02 .. 12/02: monthly on the 2nd, or February's
    first twelve days)."""
    found = [m for m in map(_DMY.match, labels) if m]
    if not found or any(int(m[1]) > 12 or int(m[2]) > 12 for m in found):
        return False
    other = [parse_date(x, "mdy" if order == "dmy" else "dmy") for x in labels]
    if not all(other):
        return False
    return len({b - a for a, b in zip(other, other[1:])}) == 1 and other[0] < other[-1]


def infer_season(f, warn, given=False):
    """(season, frequency name) from the dates in a SeriesFile's time column: monthly 12,
    quarterly 4, weekly 52, daily 7, hourly 24, yearly 1; (1, "") where the column holds no dates
    or their step is none of these. A label that looks like a date but does not read as one,
    or time running backwards, raises DataError with the file and line; gaps and uneven steps
    are passed to ``warn`` with the first line where they occur. ``given``: the season is
    --season's, so dates that do not read are no error, but dates out of order still are."""
    if not f.timed or not f.labels:
        return 1, ""
    order = label_form(f.labels)
    if order is None and given:   # day/month or month/day: in time order one way at least
        at = {o: next((k for k, (a, b) in enumerate(zip(ts, ts[1:]), 1) if not a < b), None)
              for o in ("dmy", "mdy") for ts in [[parse_date(x, o) for x in f.labels]]
              if None not in ts}
        if at and None not in at.values():
            k = max(at.values())
            raise DataError(f"{f.path}:{f.lines[k]}: {f.labels[k]!r} does not come after "
                            f"{f.labels[k - 1]!r}, read as day/month or as month/day; a series "
                            f"must be in time order, one row per step")
        return 1, ""
    if order is None:
        at = next((k for k, x in enumerate(f.labels) if _DMY.match(x)), 0)
        raise DataError(f"{f.path}:{f.lines[at]}: dates like {f.labels[at]!r} read as day/month "
                        f"or as month/day (no day past 12, nor a fixed day, tells which); write "
                        f"them YYYY-MM-DD or give --season N")
    if order in ("dmy", "mdy") and read_both_ways(f.labels, order):
        read = "day/month" if order == "dmy" else "month/day"
        other = "month/day" if order == "dmy" else "day/month"
        warn(f"{f.path}:{f.lines[0]}: dates like {f.labels[0]!r} read as {read} (no number past "
             f"12: the one that never changes was taken for the day, or for the month of "
             f"hours), but read as {other} they are as regular a series; if they are, write "
             f"them YYYY-MM-DD")
    first = parse_date(f.labels[0], order)
    if first is None:
        check_steps_rise(f)   # step numbers, date serials: in order as dates must be
        if given:
            return 1, ""
        if _DATELIKE.search(f.labels[0]):
            raise DataError(f"{f.path}:{f.lines[0]}: cannot read the date {f.labels[0]!r} (rnnkit "
                            f"reads {FORMATS_TEXT}); rewrite the dates or give --season N")
        warn(f"{f.path}:{f.lines[0]}: the time column ({f.labels[0]!r}, ...) holds no dates: no "
             f"season inferred; give --season N if the series has one, or write its dates"
             + serials_hint(f.labels))
        return 1, ""
    times = [first]
    for label, line in zip(f.labels[1:], f.lines[1:]):
        t = parse_date(label, order)
        if t is None and given:
            return 1, ""
        if t is None:
            hint = "fix it or give --season N" if any(map(str.isdigit, label)) else \
                "a row of the series has a date there: remove the row, or fix its date"
            raise DataError(f"{f.path}:{line}: cannot read the date {label!r} like "
                            f"{f.labels[0]!r} on line {f.lines[0]}; {hint}")
        if t <= times[-1]:
            clock = " (a clock set back an hour for daylight saving? write the times in UTC, " \
                "or with their offset: +01:00)" if t.tzinfo is None and 1 <= t.hour <= 3 and \
                t.month in (3, 4, 9, 10, 11) and timedelta(0) <= times[-1] - t <= \
                timedelta(hours=1) else ""
            raise DataError(f"{f.path}:{line}: {label!r} "
                            f"{'repeats' if t == times[-1] else 'does not come after'} "
                            f"{f.labels[len(times) - 1]!r}; a series must be in time order, "
                            f"one row per step{clock}")
        times.append(t)
    return _frequency(f, times, warn)


CONTINUE_STEPS = 400   # the series' last steps whose longest one a continuing file may take


def _frequency(f, times, warn):
    """The most common step between dates, named; uneven steps are warned about."""
    if len(times) < 2:
        return 1, ""
    secs = np.diff([t.timestamp() if t.tzinfo else (t - datetime(1970, 1, 1)).total_seconds()
                    for t in times])                                          # (N-1,)
    months = np.diff([12 * t.year + t.month - 1 for t in times])              # (N-1,)
    if all(t.weekday() < 5 for t in times) and secs.min() > 0 and (secs == 3 * 86400).any():
        same = np.array([b - a == timedelta(days=3 if a.weekday() == 4 else 1)
                         for a, b in zip(times, times[1:])])     # the next weekday
        if same.mean() > 0.5:
            return _uneven(f, same, "business-day", 5, warn, times)
    for name, (season, step, cal) in FREQUENCIES.items():
        same = months == cal if cal else secs == step
        if cal and same.any():   # a calendar step: the same day of the month (or near it)
            same &= np.array([abs(a.day - b.day) <= 3 or b.day >= 28 for a, b in zip(times, times[1:])])
        if same.mean() > 0.5:
            return _uneven(f, same, name, season, warn, times)
    warn(f"{f.path}: the time column steps by {_duration(np.median(secs))} (not hourly, daily, "
         f"weekly, monthly, quarterly or yearly): no season inferred; give --season N")
    return 1, ""


def _uneven(f, same, name, season, warn, times):
    """(season, name) of a series whose steps are mostly ``same`` (N-1,) bool; the first step
    that is not is passed to ``warn``, unless the steps skipped recur in every day, week or year
    (:func:`rows_per_cycle`): then the season is the rows of one."""
    bad = np.nonzero(~same)[0]
    cycle = rows_per_cycle(times, name, season, same)
    if cycle is not None:
        i = bad[0] + 1
        warn(f"{f.path}: {name} rows, {cycle[1]} a {cycle[0]} (the file skips the others: "
             f"{f.labels[i]!r} follows {f.labels[i - 1]!r} on line {f.lines[i]}): season "
             f"{cycle[1]}, the rows of a {cycle[0]}; give --season N for another")
        return cycle[1], f"{name} ({cycle[1]} a {cycle[0]})"
    if len(bad):
        i = bad[0] + 1
        warn(f"{f.path}:{f.lines[i]}: {f.labels[i]!r} follows {f.labels[i - 1]!r}: not one "
             f"{name} step ({len(bad)} uneven step(s) in all, a gap or an irregular "
             f"series); season {season} taken from the usual step (to fill a gap, add its "
             f"rows with empty values and give --fill linear)")
    return season, name


def _duration(seconds):
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}(s)"
    return f"{seconds:g} second(s)"


def next_labels(labels, k):
    """The time labels of the ``k`` steps after ``labels`` (a series' time column), where its
    last steps say them: step numbers of one even step, or dates a whole number of months apart
    (monthly, quarterly, yearly) or a fixed time apart, written as the series writes its own
    (:func:`_written_as`: ``YYYY-MM``, ``YYYY-Qn``, ``YYYY-Www``, ISO dates with the time of day
    where it is not midnight, and the UTC offset that every one of its last labels carries);
    else None (uneven steps, a trading-day series, offsets that change, labels that are no
    dates)."""
    last = [x.strip() for x in labels[-CONTINUE_STEPS - 1:]]
    if len(last) < 2:
        return None
    if all(re.fullmatch(r"[+-]?\d+", x) for x in last):   # step numbers
        numbers = [int(x) for x in last]
        steps = {b - a for a, b in zip(numbers, numbers[1:])}
        if len(steps) != 1 or min(steps) <= 0:
            return None
        step = steps.pop()
        return [str(numbers[-1] + i * step) for i in range(1, k + 1)]
    zones = {m[0] if m and _ISO.match(x) else "" for x, m in zip(last, map(_ZONE.search, last))}
    if len(zones) != 1:
        return None   # offsets that change (a clock change): the next ones are not known
    zone = zones.pop()
    last = [x[:len(x) - len(zone)] for x in last]   # the local times, their offset kept aside
    order = label_form(last) or ""
    times = [parse_date(x, order) for x in last]
    if None in times:
        return None
    months = {12 * (b.year - a.year) + b.month - a.month for a, b in zip(times, times[1:])}
    if len(months) == 1 and next(iter(months)) > 0 and len({t.day for t in times}) == 1 \
            and all(t.time() == times[0].time() for t in times):   # whole months apart
        m, t = next(iter(months)), times[-1]
        ahead = []
        for i in range(1, k + 1):
            y, mo = divmod(t.month - 1 + i * m, 12)
            if t.year + y > 9999 or t.day > calendar.monthrange(t.year + y, mo + 1)[1]:
                return None   # the 30th in February, or past the year 9999: no such date
            ahead.append(t.replace(year=t.year + y, month=mo + 1))
    else:
        steps = {b - a for a, b in zip(times, times[1:])}
        if len(steps) != 1 or next(iter(steps)) <= timedelta(0):
            return None
        step, t = steps.pop(), times[-1]
        if k and t.max - t < k * step:   # past the year 9999
            return None
        ahead = [t + i * step for i in range(1, k + 1)]
    return _written_as(last, times, ahead, zone)


def _written_as(last, times, ahead, zone):
    """The datetimes ``ahead`` written as the labels ``last`` (read as ``times``) are: a quarter
    or ISO week in its own spelling, the date format that writes every one of them back (month
    names, ``YYYY-MM``, ``YYYY-MM-DD HH:MM``), else an ISO date, with the time of day where the
    labels have one; then the UTC offset ``zone`` they all carry."""
    x = last[-1]
    if all(map(_QUARTER.match, last)):             # "2000-Q1", "2000Q1", "2000 q1"
        return [f"{t.year:04d}{x[4:-2]}{x[-2]}{(t.month + 2) // 3}" for t in ahead]
    if all(map(_QUARTER_FIRST.match, last)):       # "Q1 2000", "q1-2000"
        return [f"{x[0]}{(t.month + 2) // 3}{x[2:-4]}{t.year:04d}" for t in ahead]
    if all(map(_ISO_WEEK.match, last)):            # "2000-W05", "2000W05"
        weeks = [t.isocalendar() for t in ahead]
        return [f"{y:04d}{x[4:-3]}W{w:02d}" for y, w, _ in weeks]
    for fmt in DATE_FORMATS + ("%d/%m/%Y", "%m/%d/%Y"):   # "Jan 2020", "2020-01", "31/01/2020"
        if all(_strftime(t, fmt) == label for label, t in zip(last, times)):
            return [_strftime(t, fmt) + zone for t in ahead]
    step = min((b - a for a, b in zip(times, times[1:])), default=timedelta(days=1))
    if zone or any(x.time() != datetime.min.time() for x in times) or step < timedelta(days=1):
        sep = "T" if "T" in last[-1] else " "
        return [t.isoformat(sep=sep) + zone for t in ahead]
    return [t.date().isoformat() for t in ahead]


def _strftime(t, fmt):
    """``t.strftime(fmt)`` with its year in four digits, as the labels write a year before 1000
    ("0999-01"; the C library's %Y writes "999")."""
    return t.strftime(fmt.replace("%Y", f"{t.year:04d}"))
