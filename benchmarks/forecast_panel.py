"""Several series in one file: ``rnnkit train forecast --data panel.csv --columns a,b,...`` (each
column's classical forecast chosen on it alone, one GRU over all) against each series run alone
from the same file and against Holt-Winters, per series, at the same test origins.

    python benchmarks/forecast_panel.py --group forecast-fresh9          # its series that share dates
    python benchmarks/forecast_panel.py --only usretail usleisure --steps 200 --out runs/panel

The panel holds the dates all the chosen series share (their CSVs from forecast_series.py, the
rows of the common dates, in order); series with undated rows (row numbers) are joined by row.
Prints each series' test MASE in the panel run, alone and for Holt-Winters, their geometric
means and the ratios with 90% bootstrap intervals over the series.

    python benchmarks/forecast_panel.py --score RUN   # a trained run's MASE, series by series

``--score`` reads a run already trained (by any version of rnnkit whose checkpoints load) and
scores it per series at its test origins, each on its own MASE scale: how a run of the code
before each column was its own series (one choice for all the columns) was scored.
"""
import argparse
import csv
import json
import math
import shlex
from pathlib import Path

import numpy as np

from forecast_series import SERIES, series_path
from quality_tasks import GROUPS, holt_winters_mase, ratio_line
from rnnkit.cli.main import main
from rnnkit.train import load_checkpoint


def write_panel(names, path):
    """The series' common rows as one CSV (time, one column per series); returns its length."""
    tables = []
    for name in names:
        rows = list(csv.reader(series_path(name).open(encoding="utf-8")))[1:]
        tables.append({r[0]: r[1] for r in rows})
    common = [t for t in tables[0] if all(t in table for table in tables[1:])]
    with path.open("w", encoding="utf-8") as f:
        f.write("time," + ",".join(names) + "\n")
        for t in common:
            f.write(t + "," + ",".join(table[t] for table in tables) + "\n")
    return len(common)


def train(panel, columns, extra, steps, folder):
    """A training run on the panel's ``columns``; its metrics."""
    argv = ["train", "forecast", "--data", str(panel), "--columns", ",".join(columns),
            "--max-steps", str(steps), *extra, "--out", str(folder), "--quiet"]
    print(f"$ rnnkit {shlex.join(argv)}", flush=True)
    if main(argv) != 0:
        raise SystemExit(f"training failed: rnnkit {shlex.join(argv)}")
    return json.loads((folder / "metrics.json").read_text())


def geo(values):
    return math.exp(sum(map(math.log, values)) / len(values))


def score_run(run):
    """Each series' test MASE of a trained run (rolling origins after the validation part, the
    MASE scale of each series' training part), printed with their geometric mean."""
    from rnnkit.tasks.forecast_scores import mase_scale
    from rnnkit.tasks.forecast_trained import Forecast
    f = Forecast.load(run)
    y, K = f.y, f.model.config.horizon
    origins = list(range(max(f.split[1], f.window, f.season), len(y) - K + 1))
    err = np.abs(f.predict(y, origins, K) - np.stack([y[t:t + K] for t in origins]))
    mase = err.reshape(-1, y.shape[1]).mean(0) / mase_scale(y[:f.split[0]], f.season)
    for name, v in zip(f.names, mase):
        print(f"{name}: {v:.3f}")
    print(f"geometric mean over {len(mase)} series: {geo(mase):.3f}")


def main_bench():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--group", choices=sorted(g for g in GROUPS if g.startswith("forecast")))
    p.add_argument("--only", nargs="*", default=[])
    p.add_argument("--min-length", type=int, default=48,
                   help="leave out series whose rows would cut the panel below this many")
    p.add_argument("--steps", type=int, default=200, help="training steps of every run")
    p.add_argument("--out", type=Path, default=Path("runs/panel"))
    p.add_argument("--score", type=Path, help="only score this trained run, series by series")
    a = p.parse_args()
    if a.score:
        return score_run(a.score)
    if not (a.group or a.only):
        p.error("give --group, --only or --score")
    names = a.only or [n for n in GROUPS[a.group] if n in SERIES]
    # one kind of series: those from the first one's source file, whose train arguments
    # (season, fractions) serve them all
    source, extra = SERIES[names[0]][1], list(SERIES[names[0]][3])
    names = [n for n in names if SERIES[n][1] == source and list(SERIES[n][3]) == extra]
    a.out.mkdir(parents=True, exist_ok=True)
    panel = a.out / "panel.csv"
    n = write_panel(names, panel)
    if n < a.min_length:
        raise SystemExit(f"the series share {n} rows, fewer than --min-length {a.min_length}")
    print(f"{len(names)} series, {n} common rows -> {panel}", flush=True)
    joint = train(panel, names, extra, a.steps, a.out / "panel")
    ckpt = load_checkpoint(a.out / "panel" / "best.pt")
    y, split, m = np.asarray(ckpt["series"]), ckpt["split"], ckpt["season"]
    W, K = ckpt["data_config"]["window"], ckpt["data_config"]["horizon"]
    rows = []
    for f, name in enumerate(names):
        alone = train(panel, [name], extra, a.steps, a.out / name)
        hw = holt_winters_mase(y[:, f], split, m, W, K)["holt_winters_mase"]
        rows.append((name, joint[f"test_mase:{name}"], alone["test_mase"], hw,
                     alone["test_seasonal_naive_mase"]))
    print("\n| series | panel | alone | Holt-Winters | seasonal-naive |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | " + " | ".join(f"{v:.3f}" for v in r[1:]) + " |")
    cols = list(zip(*rows))[1:]
    print("| geometric mean | " + " | ".join(f"{geo(c):.3f}" for c in cols) + " |")
    print(f"panel best.pt step {joint['best_step']} (0: no GRU kept)")
    print(ratio_line(cols[0], cols[1], "alone"))
    print(ratio_line(cols[0], cols[2], "Holt-Winters"))


if __name__ == "__main__":
    main_bench()
