"""Test MASE of the untrained forecaster (the chosen transform, baseline and linear part, no
recurrent training) on the benchmark's series, in seconds: the quick check of a change to
:mod:`rnnkit.tasks.forecast_choice`. The full benchmark (``quality_tasks.py``) trains the GRU too.

    python benchmarks/forecast_choice_eval.py --group forecast-tuning
"""
import argparse
import math
import time

import torch

from forecast_series import resolve_args
from quality_tasks import GROUPS, RUNS
from rnnkit.models.forecaster import ForecasterConfig
from rnnkit.tasks.forecast import ForecastData, build_forecast_task


def data_config(args):
    """ForecastData from a run's ``forecast --data X [--val-fraction F ...]`` arguments."""
    opts = dict(zip(args[1::2], args[2::2]))
    kw = {"data": opts["--data"]}
    for flag in ("--val-fraction", "--test-fraction"):
        if flag in opts:
            kw[flag[2:].replace("-", "_")] = float(opts[flag])
    return ForecastData(**kw)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--group", nargs="*", choices=sorted(GROUPS), default=[])
    p.add_argument("--only", nargs="*", default=[])
    a = p.parse_args()
    a.group = a.group or ([] if a.only else ["forecast-tuning"])
    torch.set_num_threads(1)
    groups = [("only", a.only)] * bool(a.only) + [(g, GROUPS[g]) for g in a.group]
    for group, names in groups:
        logs = run_group(names)
        g = [math.exp(sum(math.log(r[i]) for r in logs) / len(logs)) for i in (0, 1)]
        print(f"{group}: geometric mean over {len(logs)}: {g[0]:.3f} (seasonal-naive {g[1]:.3f});"
              f" below seasonal-naive on {sum(r < s for r, s in logs)}", flush=True)


def run_group(names):
    """[(test MASE, seasonal-naive test MASE)] of the untrained model on each series."""
    logs = []
    for name in names:
        t0 = time.time()
        note = []
        task = build_forecast_task(data_config(resolve_args(RUNS[name][0])), ForecasterConfig(),
                                   log=note.append)
        m = task.test_metrics()
        logs.append((m["test_mase"], m["test_seasonal_naive_mase"]))
        print(f"{name:24s} {m['test_mase']:.3f} (seasonal-naive {m['test_seasonal_naive_mase']:.3f})"
              f" {time.time() - t0:.1f}s  {m['transform']}/{m['baseline']}: "
              f"{note[0].split('; transform ')[1][:150]}", flush=True)
    return logs


if __name__ == "__main__":
    main()
