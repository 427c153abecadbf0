"""Whether a file's rows go on from the end of a series (``--val-data``, ``--test-data`` and
``rnnkit eval``'s file of a forecaster): dated rows after the series' last date, by no longer a
step than its own, or the step numbers that follow its last; a file that overlaps the series or
leaves a gap after it would be scored as its next steps.
"""
import re

from rnnkit.data.dates import _DMY, CONTINUE_STEPS, _duration, label_form, parse_date
from rnnkit.data.text import DataError
from rnnkit.data.time_steps import whole_numbers

HOLDS = (" (a run's series holds the rows of its --val-data and --test-data files too: their "
         "scores are in its metrics.json)")


def check_counted(labels, part, hint=""):
    """check_continues for a time column of step numbers: the file's must go on from the
    series' last one by the series' own step, one row a step (a file that overlaps the series,
    repeats rows or skips some was scored as its next steps). Labels that are not numbers, or
    a series without an even step, are not checked."""
    def numbers(texts):
        try:
            return [float(t) for t in texts]
        except ValueError:
            return None
    before, after = numbers(labels[-CONTINUE_STEPS - 1:]), numbers(part.labels)
    if before is None or after is None or len(before) < 2:
        return
    steps = {b - a for a, b in zip(before, before[1:])}
    if len(steps) != 1 or next(iter(steps)) <= 0:
        return
    step, prev, last = steps.pop(), before[-1], labels[-1]
    for label, line, value in zip(part.labels, part.lines, after):
        where = f"{part.path}:{line}: {label!r}"
        if value <= prev:
            raise DataError(f"{where} does not come after {last!r}; expected the rows that "
                            f"follow it, one a step{hint if prev == before[-1] else ''}")
        if abs(value - prev - step) > 1e-9 * max(1.0, abs(step)):
            raise DataError(f"{where} comes {value - prev:g} after {last!r}, where the series "
                            f"steps by {step:g}; expected {prev + step:g} (one row a step, "
                            f"without a gap)")
        prev, last = value, label


def check_continues(labels, part, hint=""):
    """DataError unless the dated rows of ``part`` (a SeriesFile) start after the time labels
    ``labels`` of the series they continue, run in time order, and step no further (after the
    series' last date, and between their own) than the longest of its last
    :data:`CONTINUE_STEPS` steps (in calendar months where every step is
    1, 3 or 12 of them; a trading-day series may skip a weekend). A file that overlaps the
    series, or leaves a gap after it, would be scored as its next steps. Slashed dates whose
    order nothing in either tells are read in the order that follows the series."""
    if not part.timed or len(labels) < 2:
        return
    both = list(labels) + list(part.labels)
    order = label_form(both) or ""
    before = [parse_date(label, order) for label in labels[-CONTINUE_STEPS - 1:]]
    if order in ("dmy", "mdy") and None not in before and not any(
            int(m[1]) > 12 or int(m[2]) > 12 for m in map(_DMY.match, both) if m):
        other = "mdy" if order == "dmy" else "dmy"
        firsts = {o: parse_date(part.labels[0], o) for o in (order, other)}
        after = [o for o, t in firsts.items() if t is not None and t > before[-1]]
        order = min(after, key=firsts.get) if after else order   # a guess: the one that follows
    first = parse_date(part.labels[0], order)
    counted = lambda label: re.fullmatch(r"[+-]?\d+", label.strip())        # noqa: E731
    if first is None and None not in before and not (
            counted(part.labels[0]) and all(map(counted, labels[-CONTINUE_STEPS - 1:]))):
        # step numbers 9999 read as years, 10000 not: counted; any other label of a dated
        # series must be a date (a spreadsheet's date serial, 40179, says no month)
        raise DataError(f"{part.path}:{part.lines[0]}: cannot read the date {part.labels[0]!r} "
                        f"like the series' last, {labels[-1]!r}")
    counted_run = whole_numbers(labels[-CONTINUE_STEPS - 1:]) is not None and \
        list(labels) != [str(i) for i in range(len(labels))]   # (0, 1, ...: a file without times)
    if first is not None and None in before and counted_run and \
            whole_numbers(part.labels[:1]) is None:
        raise DataError(f"{part.path}:{part.lines[0]}: {part.labels[0]!r} is a date, where the "
                        f"series' time column counts steps (its last {labels[-1]!r}); expected "
                        f"the step numbers that follow it")
    if first is None or None in before:   # no dates: step numbers (0, 1, 2, ...) are checked
        return check_counted(labels, part, hint)
    where = f"{part.path}:{part.lines[0]}: {part.labels[0]!r}"
    if first <= before[-1]:
        raise DataError(f"{where} does not come after the series' last step {labels[-1]!r}; "
                        f"expected the rows that follow it{hint}")
    months = lambda a, b: 12 * (b.year - a.year) + b.month - a.month
    pairs = list(zip(before, before[1:]))
    if all(months(a, b) in (1, 3, 12) and (b - a).days >= 28 for a, b in pairs):
        longest, gap = max(months(a, b) for a, b in pairs), months(before[-1], first)
        unit = True
    else:
        longest, gap = max(b - a for a, b in pairs), first - before[-1]
        unit = False
    show = (lambda n: f"{n} month(s)") if unit else (lambda t: _duration(t.total_seconds()))
    if gap > longest:
        raise DataError(f"{where} comes {show(gap)} after the series' last step {labels[-1]!r}, "
                        f"more than any of its steps ({show(longest)} at most); expected the "
                        f"rows that follow it, without a gap")
    prev = first
    for label, line, last in zip(part.labels[1:], part.lines[1:], part.labels):
        t, where = parse_date(label, order), f"{part.path}:{line}: {label!r}"
        if t is None:
            raise DataError(f"{where}: cannot read the date like {part.labels[0]!r} on line "
                            f"{part.lines[0]}")
        if t <= prev:
            raise DataError(f"{where} does not come after {last!r}; a series must be in time "
                            f"order, one row per step")
        step = months(prev, t) if unit else t - prev
        if step > longest:
            raise DataError(f"{where} comes {show(step)} after {last!r}, more than any step of "
                            f"the series ({show(longest)} at most); expected one row per step, "
                            f"without gaps")
        prev = t
