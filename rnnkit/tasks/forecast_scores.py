"""The forecaster's scores: rolling-origin MAE, RMSE and MASE against the naive and
seasonal-naive baselines, and the prediction intervals' offsets (split-conformal ranks, else
Student's t), coverage and MSIS (:mod:`rnnkit.tasks.forecast_trained` forecasts with them).
Shapes: N steps, F variables, K horizon, L interval levels."""
import warnings
from statistics import NormalDist

import numpy as np

from rnnkit.data import DataError


def baselines(y, t, K, m):
    """Naive and seasonal-naive forecasts of y[t:t+K] from y[:t]: each (K, F)."""
    h = np.arange(K)
    return np.repeat(y[t - 1:t], K, 0), y[t + h - m * (h // m + 1)]


def score(pred, truth, scale):
    """MAE, RMSE and MASE of forecasts against truth (same shapes, (..., F)), in the data's
    units; ``scale`` (F,): each variable's MASE scale, the MASE the mean of the variables'."""
    err = np.asarray(pred, np.float64) - np.asarray(truth, np.float64)  # float32 squares overflow
    mae = float(np.abs(err).mean())
    mase = float((np.abs(err).reshape(-1, err.shape[-1]).mean(0) / scale).mean())
    return {"mae": mae, "rmse": float(np.sqrt((err ** 2).mean())), "mase": mase}


def rolling_scores(predict, y, start, end, W, K, m, scale, prefix):
    """Rolling-origin scores over y[start:end] of ``predict`` (origins -> (B, K, F) forecasts)
    and of the naive and seasonal-naive baselines, keyed ``{prefix}_mae``,
    ``{prefix}_naive_mae``, ``{prefix}_seasonal_naive_mae``, ..."""
    origins = list(range(max(start, W, m), end - K + 1))
    if not origins:
        raise DataError(f"no forecast origin in steps [{start}, {end}): the part must hold the "
                        f"horizon {K} after a window of {W}")
    truth = np.stack([y[t:t + K] for t in origins])                           # (B, K, F)
    naive, seasonal = zip(*(baselines(y, t, K, m) for t in origins))
    out = {}
    for name, p in (("", predict(origins)), ("naive_", np.stack(naive)),
                    ("seasonal_naive_", np.stack(seasonal))):
        out.update({f"{prefix}_{name}{k}": v for k, v in score(p, truth, scale).items()})
    return out, len(origins)


LEVELS = (80, 95)      # the prediction intervals' nominal coverage, percent
MAX_PAST = 500         # past origins whose errors set the intervals, evenly spaced; fewer
PAST_STEPS = 50_000    # for a long forecast: at most this many steps forecast in all, with
MIN_PAST = 40          # at least this many origins (a 95% rank needs 39)


MIN_ERRORS = 5         # fewer known errors at a step: no interval there


def t_quantile(p, df):
    """Student's t quantile at probability p with df degrees of freedom: the normal quantile's
    Cornish-Fisher expansion to 1/df³ (within 1.3% of the exact value for df >= 4 at p <= 0.995,
    0.3% for df >= 6; Abramowitz & Stegun 26.7.5)."""
    z = NormalDist().inv_cdf(p)
    return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))


def check_levels(levels):
    """``levels`` as a tuple of floats, each a percent in (0, 100); ValueError (DataError)
    otherwise. All of them at 1 or below reads as fractions meant as percents (0.8 for 80%): a
    warning says so."""
    try:
        out = tuple(float(v) for v in levels)
    except (TypeError, ValueError):
        raise DataError(f"levels must be percents such as (80, 95), got {levels!r}") from None
    bad = [v for v in out if not 0 < v < 100]
    if bad:
        raise DataError(f"each interval level must be a percent in (0, 100), got {bad[0]:g}")
    if out and max(out) <= 1:
        warnings.warn(f"interval levels are percents: {', '.join(f'{v:g}' for v in out)} asks "
                      f"for {', '.join(f'{v:g}%' for v in out)} intervals; write 80 for 80%",
                      stacklevel=3)
    return out


def interval_offsets(errors, levels):
    """Lower and upper offsets (L, S, F) of prediction intervals at each step from the signed
    errors (truth - forecast) known at each step: errors[h] (n_h, F). The split-conformal order
    statistics where n_h holds the rank; with fewer errors (from MIN_ERRORS), a normal prediction
    interval from their mean and standard deviation (Student's t, × sqrt(1 + 1/n)); NaN below.
    The two can cross: a level's interval is widened to hold each lower level's."""
    S, F = len(errors), errors[0].shape[1]
    lo, hi = np.full((2, len(levels), S, F), np.nan)
    for h, e in enumerate(errors):
        e, n = np.sort(e, 0), len(e)
        for i, level in enumerate(levels):
            k = int(np.ceil((n + 1) * (1 + level / 100) / 2))    # the upper rank, 1-based
            if k <= n:
                lo[i, h], hi[i, h] = e[n - k], e[k - 1]
            elif n >= MIN_ERRORS:
                half = t_quantile((1 + level / 100) / 2, n - 1) * e.std(0, ddof=1) * (1 + 1 / n) ** .5
                lo[i, h], hi[i, h] = e.mean(0) - half, e.mean(0) + half
    for i, level in enumerate(levels):   # a level's interval holds every narrower one's
        for j, other in enumerate(levels):   # (the order statistics and the normal one can cross)
            if other < level:   # fmin/fmax: a narrower level without an interval changes nothing
                lo[i] = np.where(np.isnan(lo[i]), lo[i], np.fmin(lo[i], lo[j]))
                hi[i] = np.where(np.isnan(hi[i]), hi[i], np.fmax(hi[i], hi[j]))
    return lo, hi


def interval_scores(lo, hi, truth, scale, levels, prefix):
    """Coverage and the mean scaled interval score (MSIS, Gneiting & Raftery 2007; as the M4
    competition scores intervals) of bounds lo, hi (L, B, K, F) against truth (B, K, F); a
    level with any step left without an interval is left out."""
    out = {}
    for i, level in enumerate(levels):
        l, u = lo[i], hi[i]
        if np.isnan(l).any() or np.isnan(u).any():
            continue
        a = 1 - level / 100
        score = u - l + 2 / a * (np.maximum(l - truth, 0) + np.maximum(truth - u, 0))
        ulp = 1e-6 * np.maximum(np.abs(truth), 1e-30)   # float32 rounding: a zero-width interval
        inside = (l - ulp <= truth) & (truth <= u + ulp)  # of an exact forecast holds its truth
        out[f"{prefix}_coverage_{level:g}"] = float(inside.mean())
        per = score.reshape(-1, score.shape[-1]).mean(0)                      # (F,)
        out[f"{prefix}_msis_{level:g}"] = float((per / scale).mean())
    return out


def seasonal_naive_error(train, m):
    """(F,) (or a number) the mean absolute error of the seasonal-naive forecast (the value m
    steps back) over ``train`` (N, F)."""
    return np.abs(train[m:] - train[:-m]).astype(np.float64).mean(0)


def mase_scale(train, m):
    """(F,) the MASE scale of each variable: the mean absolute seasonal-naive error over the
    training part train (N, F) (1 where it is 0: a constant part); several variables are
    several series, each scored on its own scale. A number for a series train (N,)."""
    scale = seasonal_naive_error(train, m)
    scale = np.where(scale > 0, scale, 1.0)
    return float(scale) if scale.ndim == 0 else scale
