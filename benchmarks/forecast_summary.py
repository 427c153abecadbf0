"""The forecasting groups' figures from runs already trained by ``quality_tasks.py`` (their
``metrics.json`` and ``best.pt`` in ``--out``), without training again: per group and over all,
the geometric-mean MASE of rnnkit, seasonal-naive and Holt-Winters, the ratio rnnkit /
Holt-Winters (and / seasonal-naive) with its 90% bootstrap interval over the series, and the
series where rnnkit is not below seasonal-naive.

    python benchmarks/forecast_summary.py --group forecast-tuning forecast-fresh5 [--out runs/bench]
    python benchmarks/forecast_summary.py --group ... --json runs.json   # for compare_forecasts.py

Holt-Winters' figure comes from the cache that ``forecast_choice_eval.py --holt-winters`` keeps
(``$RNNKIT_DATA/bench-series/holt-winters.json``), computed and cached where a series is not in
it, at the same test origins as the run's (its split, season, window and horizon, read from
best.pt). A run trained before a change keeps that change's figures: re-run the group first.
"""
import argparse
import json
import math
import signal
import types
from pathlib import Path

import numpy as np

from forecast_choice_eval import holt_winters
from quality_tasks import GROUPS, ratio_line
from rnnkit.train import load_checkpoint


def run_task(folder):
    """What :func:`forecast_choice_eval.holt_winters` reads of a task, from a run's best.pt."""
    ckpt = load_checkpoint(folder / "best.pt")
    train_end, val_end = ckpt["split"]
    config = types.SimpleNamespace(window=ckpt["data_config"]["window"],
                                   horizon=ckpt["data_config"]["horizon"])
    return types.SimpleNamespace(y=np.asarray(ckpt["series"]), train_end=train_end,
                                 val_end=val_end, season=ckpt["season"], data_config=config)


def group_rows(names, out):
    """[(name, rnnkit's test MASE, seasonal-naive's, Holt-Winters')] of the trained runs."""
    rows = []
    for name in names:
        folder = out / name
        if not (folder / "metrics.json").is_file():
            raise SystemExit(f"forecast_summary: no trained run of {name} in {out} "
                             f"(python benchmarks/quality_tasks.py --only {name})")
        m = json.loads((folder / "metrics.json").read_text())
        rows.append((name, m["test_mase"], m["test_seasonal_naive_mase"],
                     holt_winters(name, run_task(folder))))
    return rows


def summary(label, rows):
    g = [math.exp(sum(math.log(r[i]) for r in rows) / len(rows)) for i in (1, 2, 3)]
    print(f"{label}: {len(rows)} series, geometric-mean MASE rnnkit {g[0]:.3f}, seasonal-naive "
          f"{g[1]:.3f}, Holt-Winters {g[2]:.3f}")
    r, sn, hw = ([row[i] for row in rows] for i in (1, 2, 3))
    print("  " + ratio_line(r, hw, "Holt-Winters"))
    print("  " + ratio_line(r, sn, "seasonal-naive"))
    above = [f"{n} {a:.3f} / {s:.3f}" for n, a, s, _ in rows if a >= s]
    if above:
        print(f"  not below seasonal-naive: {', '.join(above)}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--group", nargs="+", choices=sorted(g for g in GROUPS if "forecast" in g),
                   required=True)
    p.add_argument("--out", type=Path, default=Path("runs/bench"))
    p.add_argument("--json", type=Path, default=None,
                   help="write each series' figures here (compare_forecasts.py reads two)")
    a = p.parse_args()
    if a.json and not a.json.parent.is_dir():
        p.error(f"--json {a.json}: no folder {a.json.parent}")
    every = []
    for group in a.group:
        rows = group_rows(GROUPS[group], a.out)
        summary(group, rows)
        every += rows
    if len(a.group) > 1:
        summary("all", every)
    if a.json:
        record = {}
        for name, *_ in every:
            m = json.loads((a.out / name / "metrics.json").read_text())
            record[name] = {k[5:]: v for k, v in m.items() if k.startswith("test_")}
            record[name]["holt_winters_mase"] = next(r[3] for r in every if r[0] == name)
        a.json.write_text(json.dumps(record, indent=1))
        print(f"-> {a.json}")


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)   # quiet when piped into head
    main()
