"""Test MASE of the untrained forecaster (the chosen transform, baseline and linear part, no
recurrent training) on the benchmark's series, in seconds: the quick check of a change to
:mod:`rnnkit.tasks.forecast_choice`. The full benchmark (``quality_tasks.py``) trains the GRU too.

    python benchmarks/forecast_choice_eval.py --group forecast-tuning [--holt-winters]
    python benchmarks/forecast_choice_eval.py --short folds ...   # no short-series rule

``--json FILE`` writes each series' figures, and whether the short-series rule applied
(``short_rule``: the series to train when a change concerns short series, e.g. ``quality_tasks.py
--only $(python -c "import json; r = json.load(open('FILE')); print(*[n for n in r if
r[n]['short_rule']])")``).
``--holt-winters`` adds statsmodels' Holt-Winters and ETSModel's prediction intervals at the
same test origins (as ``quality_tasks.py`` scores them), kept in
``$RNNKIT_DATA/bench-series/holt-winters.json`` and ``ets-intervals.json`` by the series' name,
split, season and horizon (refitting them at every origin takes minutes). ``--forms`` adds two
more forms of Holt-Winters (cached in ``holt-winters-forms.json``): additive trend and season on
the log scale (the form of rnnkit's log/ets-seasonal candidate, fitted as statsmodels fits:
initial states and parameters optimised) and a damped trend with the benchmark's season, with
their geometric means over the series where the short-series rule applies and the others, and
the Theta method (statsmodels' ThetaModel, cached in ``theta.json``).
"""
import argparse
import dataclasses
import json
import math
import re
import time
from pathlib import Path

import torch

from forecast_series import resolve_args
from quality_tasks import (GROUPS, RUNS, ets_intervals, holt_winters_mase, interval_summary,
                           ratio_line)
from rnnkit.data.datasets import cache_dir
from rnnkit.models.forecaster import ForecasterConfig
from rnnkit.outputs import atomic_write
from rnnkit.tasks import forecast_choice
from rnnkit.tasks.forecast import ForecastData, build_forecast_task
from rnnkit.tasks.forecast_scores import LEVELS


def data_config(args):
    """ForecastData from a run's ``forecast --data X [--val-fraction F --season M ...]``
    arguments (the trainer's own, such as --max-steps, are left out)."""
    opts = dict(zip(args[1::2], args[2::2]))
    fields = {f.name: type(f.default) for f in dataclasses.fields(ForecastData)}   # int, float, str
    kw = {}
    for flag, value in opts.items():
        key = flag[2:].replace("-", "_")
        if key in fields:
            kw[key] = fields[key](value)
    return ForecastData(**kw)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--group", nargs="*", choices=sorted(GROUPS), default=[])
    p.add_argument("--only", nargs="*", default=[])
    p.add_argument("--holt-winters", action="store_true", help="beside Holt-Winters (cached)")
    p.add_argument("--short", choices=["history", "folds"], default=forecast_choice.SHORT,
                   help="the choice where the folds hold fewer origins than the horizon")
    p.add_argument("--no-refit", action="store_true",
                   help="keep the smoothing's training-part parameters at every origin")
    p.add_argument("--forms", action="store_true",
                   help="beside Holt-Winters on the log scale and damped, and Theta (cached)")
    p.add_argument("--json", type=Path, default=None,
                   help="write each series' figures here (compare_forecasts.py reads two)")
    a = p.parse_args()
    if a.json and not a.json.parent.is_dir():   # checked before the run, not after it
        p.error(f"--json {a.json}: no folder {a.json.parent}")
    forecast_choice.SHORT = a.short
    a.group = a.group or ([] if a.only else ["forecast-tuning"])
    torch.set_num_threads(1)
    groups = [("only", a.only)] * bool(a.only) + [(g, GROUPS[g]) for g in a.group]
    every, every_iv, every_form, record = [], [], [], {}
    for group, names in groups:
        logs, iv = run_group(names, a.holt_winters or a.forms, a.no_refit,
                             every_form if a.forms else None, record)
        every += logs
        every_iv += iv
        summary(group, logs, iv)
    if len(groups) > 1:
        summary("all", every, every_iv)
    if a.json:
        a.json.write_text(json.dumps(record, indent=1))
        print(f"-> {a.json}")
    for short in (True, False) if a.forms else ():
        rows = [r for s, r in every_form if s == short]
        g = ([math.exp(sum(math.log(r[i]) for r in rows) / len(rows)) for i in range(5)]
             if rows else [])
        print(f"{'short-series rule' if short else 'the folds ranking'}: {len(rows)} series, "
              f"geometric-mean MASE rnnkit {g[0]:.3f}, Holt-Winters {g[1]:.3f}, on the log scale "
              f"{g[2]:.3f}, damped {g[3]:.3f}, Theta {g[4]:.3f}" if rows else "", flush=True)
    if every_form:
        r, t = [row[0] for _, row in every_form], [row[4] for _, row in every_form]
        print(ratio_line(r, t, "Theta"), flush=True)


def summary(group, logs, intervals):
    cols = len(logs[0])
    g = [math.exp(sum(math.log(r[i]) for r in logs) / len(logs)) for i in range(cols)]
    hw = f", Holt-Winters {g[2]:.3f}" if cols > 2 else ""
    print(f"{group}: geometric mean over {len(logs)}: {g[0]:.3f} (seasonal-naive {g[1]:.3f}{hw});"
          f" below seasonal-naive on {sum(r[0] < r[1] for r in logs)}", flush=True)
    if cols > 2 and len(logs) > 1:
        print("  " + ratio_line([r[0] for r in logs], [r[2] for r in logs], "Holt-Winters"))
    for level in LEVELS:   # the series where every test step has an interval at this level
        cov = [m[f"test_coverage_{level}"] for m in intervals if f"test_coverage_{level}" in m]
        msis = [m[f"test_msis_{level}"] for m in intervals if f"test_msis_{level}" in m]
        if cov:
            print(f"  {level}% intervals on {len(cov)} series: mean coverage "
                  f"{sum(cov) / len(cov):.3f}, median {sorted(cov)[len(cov) // 2]:.3f}; "
                  f"geometric-mean MSIS {math.exp(sum(map(math.log, msis)) / len(msis)):.3f}",
                  flush=True)
    if any("ets_msis_80" in m for m in intervals):
        interval_summary(intervals)


def cached(name, task, file, compute):
    """compute(y, (train_end, val_end), season, window, horizon) on the task's series, kept in
    the cache file ``file`` under the series and its split (read again and written whole
    before the write: two runs at once each add their series, neither reads half a file)."""
    path = cache_dir() / "bench-series" / file
    cache = json.loads(path.read_text()) if path.is_file() else {}
    d = task.data_config
    key = f"{name} {task.train_end} {task.val_end} {len(task.y)} {task.season} {d.horizon}"
    if key not in cache:
        cache[key] = compute(task.y[:, 0].astype(float), (task.train_end, task.val_end),
                             task.season, d.window, d.horizon)
        value = cache[key]
        cache = json.loads(path.read_text()) if path.is_file() else {}
        cache[key] = value
        atomic_write(path, lambda f: f.write(json.dumps(cache, indent=0).encode()))
    return cache[key]


def holt_winters(name, task):
    """Holt-Winters' test MASE on the task's series, from the cache or computed and cached."""
    return cached(name, task, "holt-winters.json",
                  lambda *a: holt_winters_mase(*a)["holt_winters_mase"])


def ets(name, task):
    """ETSModel's interval figures on the task's series ({ets_coverage_80: ...}), cached."""
    return cached(name, task, "ets-intervals.json", ets_intervals)


def hw_forms(name, task):
    """{log, damped}: Holt-Winters' test MASE on the log scale (additive trend and season; the
    benchmark's form where the series is not positive) and with a damped trend, refitted at
    each test origin as :func:`quality_tasks.holt_winters_mase` is; cached."""
    def compute(y, split, m, W, K):
        import warnings

        import numpy as np
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        from rnnkit.tasks.forecast_scores import mase_scale
        pos = bool((y > 0).all())
        period = m if m > 1 else None
        season = ("mul" if pos else "add") if period else None   # the benchmark's form
        log_season = ("add" if pos else season) if period else None
        errs = {"log": [], "damped": []}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for t in range(max(split[1], W, m), len(y) - K + 1):
                fit = ExponentialSmoothing(np.log(y[:t]) if pos else y[:t], trend="add",
                                           seasonal=log_season, seasonal_periods=period).fit()
                fc = np.exp(fit.forecast(K)) if pos else fit.forecast(K)
                errs["log"].append(np.abs(fc - y[t:t + K]).mean())
                fit = ExponentialSmoothing(y[:t], trend="add", damped_trend=True, seasonal=season,
                                           seasonal_periods=period).fit()
                errs["damped"].append(np.abs(fit.forecast(K) - y[t:t + K]).mean())
        scale = mase_scale(y[:split[0]], max(m, 1))
        return {k: float(np.mean(v)) / scale for k, v in errs.items()}
    return cached(name, task, "holt-winters-forms.json", compute)


def theta(name, task):
    """The Theta method's test MASE (statsmodels' ThetaModel: simple exponential smoothing with
    half the linear trend's slope as drift, Assimakopoulos & Nikolopoulos 2000, Hyndman & Billah
    2003; the season divided out first where a test finds one), refitted at each test origin as
    :func:`quality_tasks.holt_winters_mase` is; cached."""
    def compute(y, split, m, W, K):
        import warnings

        import numpy as np
        from statsmodels.tsa.forecasting.theta import ThetaModel

        from rnnkit.tasks.forecast_scores import mase_scale
        errs = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for t in range(max(split[1], W, m), len(y) - K + 1):
                fit = ThetaModel(y[:t], period=max(m, 1), deseasonalize=m > 1).fit()
                errs.append(np.abs(np.asarray(fit.forecast(K)) - y[t:t + K]).mean())
        return float(np.mean(errs)) / mase_scale(y[:split[0]], max(m, 1))
    return cached(name, task, "theta.json", compute)


def fold_count(note):
    """``3f/27o `` from the log's "MAE over 3 fold(s) (27 origins)" (empty if not there)."""
    found = re.search(r"MAE over (\d+) fold\(s\)(?: \((\d+) origins\))?", note)
    return f"{found.group(1)}f/{found.group(2) or '?'}o " if found else ""


def run_group(names, with_hw=False, no_refit=False, forms=None, record=None):
    """[(test MASE, seasonal-naive test MASE[, Holt-Winters' test MASE])] of the untrained model
    on each series, and its prediction intervals' test figures ({test_coverage_80: ...}).
    ``forms``: a list to which (short-series rule taken, (rnnkit, Holt-Winters, on the log
    scale, damped, Theta)) is appended for each series, the forms printed; ``record``: a dict that
    gets each series' test figures by its name."""
    logs, intervals = [], []
    for name in names:
        t0 = time.time()
        note = []
        task = build_forecast_task(data_config(resolve_args(RUNS[name][0])),
                                   ForecasterConfig(refit=not no_refit), log=note.append)
        m = task.test_metrics()
        hw = (holt_winters(name, task),) if with_hw else ()
        if forms is not None:
            f = hw_forms(name, task) | {"theta": theta(name, task)}
            forms.append(("fewer fold origins than the horizon" in note[0],
                          (m["test_mase"], hw[0], f["log"], f["damped"], f["theta"])))
            print(f"{name:24s} Holt-Winters on the log scale {f['log']:.3f}, damped "
                  f"{f['damped']:.3f}; Theta {f['theta']:.3f}", flush=True)
        logs.append((m["test_mase"], m["test_seasonal_naive_mase"], *hw))
        if record is not None:   # short_rule: the folds held fewer origins than the horizon
            record[name] = {k[5:]: v for k, v in m.items() if k.startswith("test_")} | (
                {"holt_winters_mase": hw[0]} if hw else {}) | {
                "short_rule": "fewer fold origins than the horizon" in note[0]}
        intervals.append({k: v for k, v in m.items() if "_coverage_" in k or "_msis_" in k}
                         | (ets(name, task) if with_hw else {}))
        cover = " ".join(f"{level}%: {m[f'test_coverage_{level}']:.2f}" for level in LEVELS
                         if f"test_coverage_{level}" in m)
        print(f"{name:24s} {m['test_mase']:.3f} (seasonal-naive {m['test_seasonal_naive_mase']:.3f}"
              f"{f', HW {hw[0]:.3f}' if hw else ''})"
              f" {time.time() - t0:.1f}s  covered {cover or '-'}  {m['transform']}/{m['baseline']}: "
              f"{fold_count(note[0])}{note[0].split('; transform ')[1][:150]}", flush=True)
    return logs, intervals


if __name__ == "__main__":
    main()
