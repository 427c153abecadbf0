"""Two runs of the forecasting benchmark side by side, series by series: is a change's effect more
than the spread between series? Reads the per-series JSON that ``forecast_choice_eval.py --json``
(the untrained model) or ``forecast_summary.py --json`` (trained runs) writes, for the same
series before (A) and after (B) a change:

    python benchmarks/forecast_choice_eval.py --group ... --json /tmp/a.json
    (change the code)
    python benchmarks/forecast_choice_eval.py --group ... --json /tmp/b.json
    python benchmarks/compare_forecasts.py /tmp/a.json /tmp/b.json

For the MASE (and each interval level's MSIS where both runs have it) it prints the geometric
mean of B / A over the series both hold, with a 90% bootstrap interval over the series
(:func:`quality_tasks.ratio_interval`; paired: each series is compared with itself), how many
series moved by more than 1% either way, and the series that moved most.
"""
import argparse
import json
import math
import signal
from pathlib import Path

from quality_tasks import ratio_interval

MOVED = 0.01   # a relative change below this counts as unchanged
SHOWN = 5      # the series that moved most, each way


def compare(a, b, key):
    """The lines for one figure ``key`` over the series both runs hold with it (None if none)."""
    names = [n for n in a if n in b and key in a[n] and key in b[n]
             and a[n][key] > 0 and b[n][key] > 0]
    if not names:
        return None
    before, after = [a[n][key] for n in names], [b[n][key] for n in names]
    r, lo, hi = ratio_interval(after, before)
    logs = sorted((math.log(y / x), n) for n, x, y in zip(names, before, after))
    better = sum(d < -MOVED for d, _ in logs)
    worse = sum(d > MOVED for d, _ in logs)
    lines = [f"{key}: {len(names)} series, B / A geometric mean {r:.3f} (90% bootstrap interval "
             f"{lo:.3f}-{hi:.3f}); better on {better}, worse on {worse}, within 1% on "
             f"{len(names) - better - worse}"]
    for label, part in (("  better most", logs[:SHOWN]), ("  worse most", logs[::-1][:SHOWN])):
        moved = [f"{n} {a[n][key]:.3f} -> {b[n][key]:.3f}" for d, n in part
                 if abs(d) > MOVED and (d < 0) == (label == "  better most")]
        if moved:
            lines.append(f"{label}: " + ", ".join(moved))
    return lines


def read(parser, path):
    """{series: {figure: value}} from a per-series JSON file, or a one-line error."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        parser.error(f"{path}: cannot read it as a per-series JSON file ({e})")
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        parser.error(f"{path}: expected {{series: {{figure: value}}}}, as --json writes")
    return data


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", type=Path, help="per-series JSON before the change")
    p.add_argument("b", type=Path, help="per-series JSON after it")
    args = p.parse_args()
    a, b = (read(p, f) for f in (args.a, args.b))
    only = sorted(set(a) ^ set(b))
    if only:
        more = f" and {len(only) - 10} more" if len(only) > 10 else ""
        print(f"in one run only (left out): {len(only)} series, {', '.join(only[:10])}{more}")
    for key in ("mase", "msis_80", "msis_95"):
        for line in compare(a, b, key) or []:
            print(line)


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)   # quiet when piped into head
    main()
