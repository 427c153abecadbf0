"""Choosing a forecaster's baseline (last value, last season) and transform (none, log), and
fitting its linear autoregression.

The baseline has no parameters, so every origin before the test part scores it: the one with the
lower rolling-origin MAE over the training and validation parts (K steps from each origin, in the
data's units) is the baseline, a choice made on the whole history rather than on the few windows
of the validation part. Then a ridge-regression forecaster of the model's shape (window W, horizon
K, that baseline, inputs relative to the window's last value) is fitted on the training part for
each transform and each penalty in RIDGES, and the one with the lowest validation MAE, in the
data's units, wins; its coefficients become the model's linear part. Cheap (one least-squares
solve each) and honest: the test part is never looked at.
Shapes: N steps, F variables, W window, K horizon, n windows.
"""
import numpy as np

from rnnkit.data import DataError
from rnnkit.data.series import Scaler, Transform

RIDGES = (0.1, 1.0, 10.0, 100.0)   # L2 penalties tried for the linear forecaster (standardised units)


def candidates(y, W, m, transform, baseline):
    """The (transform, baseline) settings to compare: the given ones, or all that fit the data."""
    if baseline == "seasonal" and (m < 2 or W < m):
        raise DataError(f"--baseline seasonal needs a season > 1 and a window of at least one "
                        f"season; got season {m}, window {W}")
    ts = [transform] if transform != "auto" else ["none"] + (["log"] if (y > 0).all() else [])
    bs = [baseline] if baseline != "auto" else ["last"] + (["seasonal"] if 1 < m <= W else [])
    return [(t, b) for t in ts for b in bs]


def baseline_errors(y, end, W, K, m, bases):
    """{baseline: MAE of its K-step forecasts from every origin in [max(W, m), end - K]}, in the
    data's units (a baseline copies past values, so its forecast is the same on any scale)."""
    origins = list(range(max(W, m), end - K + 1))
    truth = np.stack([y[t:t + K] for t in origins])                           # (n, K, F)
    return {b: float(np.abs(base_forecast(y, origins, K, m, b) - truth).mean()) for b in bases}


def choose(y, split, W, K, m, transform="auto", baseline="auto"):
    """(transform, baseline, (weight (K*F, W*F), bias (K*F,)), note): the baseline with the lower
    error over all origins before the test part, then the transform and ridge fit that score best
    on the validation part; ``note`` gives the scores for the log."""
    settings = candidates(y, W, m, transform, baseline)
    note = ""
    bases = sorted({b for _, b in settings})
    if len(bases) > 1:
        errs = baseline_errors(y.astype(np.float64), split[1], W, K, m, bases)
        settings = [s for s in settings if s[1] == min(errs, key=errs.get)]
        note = "; baseline MAE over the history: " + ", ".join(f"{b} {v:.4g}"
                                                              for b, v in errs.items())
    fits = {(t, b, lam): linear_fit(y, split, W, K, m, t, b, lam)
            for t, b in settings for lam in RIDGES}
    t, b, lam = min(fits, key=lambda k: fits[k][1])
    best = {s: min(fits[(*s, r)][1] for r in RIDGES) for s in settings}
    shown = ", ".join(f"{st}/{sb} {v:.4g}" for (st, sb), v in best.items())
    beta = fits[(t, b, lam)][0]
    return t, b, (beta[:-1].T, beta[-1]), (f"{note}; linear part: ridge {lam:g}, validation MAE "
                                         f"of the linear forecast with each transform/baseline: "
                                         f"{shown}")


def base_forecast(z, origins, K, m, baseline):
    """The baseline's forecast (n, K, F) of z[t:t+K] from z[:t] for each origin t."""
    h = np.arange(K)
    if baseline == "seasonal":
        return np.stack([z[t - m + h % m] for t in origins])
    return np.stack([np.repeat(z[t - 1:t], K, 0) for t in origins])


def linear_fit(y, split, W, K, m, transform, baseline, ridge=1.0):
    """(coefficients (W*F + 1, K*F), validation MAE) of a ridge forecaster of the baseline's
    error, fitted on the training part; the last row of the coefficients is the bias."""
    train_end, val_end = split
    tr = Transform(transform)
    x = tr.forward(y.astype(np.float64))
    scaler = Scaler.fit(x[:train_end])
    z = (x - scaler.mean) / scaler.std                                        # (N, F)
    fit = list(range(max(W, m), train_end - K + 1))
    val = list(range(max(train_end, W, m), val_end - K + 1))
    if not fit:
        return np.zeros((W * y.shape[1] + 1, K * y.shape[1])), np.inf

    def features(origins):   # the window relative to its last value, and a bias
        win = np.stack([z[t - W:t] - z[t - 1] for t in origins])              # (n, W, F)
        return np.concatenate([win.reshape(len(origins), -1), np.ones((len(origins), 1))], 1)

    X = features(fit)
    Y = (np.stack([z[t:t + K] for t in fit]) - base_forecast(z, fit, K, m, baseline))
    beta = np.linalg.solve(X.T @ X + ridge * np.eye(X.shape[1]), X.T @ Y.reshape(len(fit), -1))
    if not val:
        return beta, np.inf
    pred = base_forecast(z, val, K, m, baseline) + (features(val) @ beta).reshape(len(val), K, -1)
    pred = tr.inverse(pred * scaler.std + scaler.mean)                        # (n, K, F)
    truth = np.stack([y[t:t + K] for t in val])
    return beta, float(np.abs(pred - truth).mean())
