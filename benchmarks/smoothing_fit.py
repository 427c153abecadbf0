"""Where rnnkit's exponential smoothing and statsmodels' Holt-Winters of the same form part ways
on a series: the parameters or the initial states. For each series whose untrained forecaster
is the log-scale seasonal smoothing alone (the short-series rule's log/ets-seasonal candidate),
the test MASE (rolling origins, as ``quality_tasks.py`` scores them) of

- rnnkit's forecast with the training part's parameters (``--no-refit``),
- statsmodels' ExponentialSmoothing on the log scale, additive (damped where rnnkit's φ < 1)
  trend and additive season, refitted at each test origin with:
  everything optimised; rnnkit's α, β, γ, φ fixed and the initial states optimised; rnnkit's
  parameters fixed and heuristic initial states.

    python benchmarks/smoothing_fit.py tasaccom arrivals-nz vicaccom souvenirs

Needs the ``bench`` extra (statsmodels). rnnkit's β and γ are the error-correction form's, so
statsmodels gets β/α and γ/(1 - α).
"""
import warnings

import numpy as np

from forecast_choice_eval import data_config
from forecast_series import resolve_args
from quality_tasks import RUNS
from rnnkit.models.forecaster import ForecasterConfig
from rnnkit.tasks.forecast import build_forecast_task
from rnnkit.tasks.forecast_scores import mase_scale

FITS = ("optimised", "rnnkit's parameters, optimised start", "rnnkit's parameters, heuristic start")


def statsmodels_mase(y, origins, K, m, params, fit, scale):
    """Test MASE of statsmodels' log-scale Holt-Winters under one of FITS."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing
    a, b, g, phi, _ = params
    errs = []
    for t in origins:
        model = ExponentialSmoothing(np.log(y[:t]), trend="add", damped_trend=phi < 1,
                                     seasonal="add", seasonal_periods=m,
                                     initialization_method="heuristic" if "heuristic" in fit
                                     else "estimated")
        if fit == FITS[0]:
            res = model.fit()
        else:
            fixed = dict(smoothing_level=a, smoothing_trend=b / a,
                         smoothing_seasonal=g / (1 - a) if a < 1 else 0.0)
            if phi < 1:
                fixed["damping_trend"] = phi
            res = model.fit(**fixed, optimized="optimised start" in fit)
        errs.append(np.abs(np.exp(res.forecast(K)) - y[t:t + K]).mean())
    return float(np.mean(errs)) / scale


def main(names):
    warnings.simplefilter("ignore")
    for name in names:
        task = build_forecast_task(data_config(resolve_args(RUNS[name][0])),
                                   ForecasterConfig(refit=False), log=lambda *a: None)
        params = task.model.smoothing.tolist()
        if not (task.transform.kind == "log" and task.model.config.base == "ets"
                and float(task.model.share) == 1.0 and params[4] == 1.0):
            print(f"{name}: not the log-scale seasonal smoothing alone; skipped")
            continue
        y, m, K = task.y[:, 0].astype(float), task.season, task.data_config.horizon
        origins = task.origins(task.val_end, len(y))
        scale = mase_scale(y[:task.train_end], m)
        truth = np.stack([y[t:t + K] for t in origins])
        ours = float(np.abs(task.predict(origins)[..., 0] - truth).mean()) / scale
        shown = ", ".join(f"{f} {statsmodels_mase(y, origins, K, m, params, f, scale):.3f}"
                          for f in FITS)
        print(f"{name}: {len(origins)} test origins; α β γ φ "
              f"{' '.join(f'{p:.3g}' for p in params[:4])}; rnnkit {ours:.3f}; statsmodels: "
              f"{shown}", flush=True)


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", metavar="SERIES", choices=sorted(RUNS),
                        help="series of quality_tasks.py's forecasting runs")
    main(parser.parse_args().names)
