"""Choosing a forecaster's transform (none, log), baseline (last value, window mean, drift, last
season, last value plus a season's change, exponential smoothing) and linear part (none, or a
ridge autoregression), by rolling origins over the history before the test part.

The history before the test part is cut into folds of the validation part's length, counted back
from its end: the validation part, then the same length before it, ... (up to :data:`FOLDS`,
while the data before a fold still holds the fits' windows). For each fold every candidate is
fitted on the data before the fold (scaling, the smoothing parameters, the ridge coefficients)
and forecasts K steps from each origin in it, scored by its mean absolute error in the data's
units (time-series cross-validation, Hyndman & Athanasopoulos 2021 §5.10).

Candidates: each transform × each baseline × (no linear part, or a ridge fit with each penalty in
RIDGES over the window relative to its last value, of what the baseline misses). The baselines:
the last value, the window's mean, the drift (the line through the window's first and last
values), the last season's values (1 < m ≤ W), the last value plus the change it made over the
same steps one, two and three seasons back (:func:`change_map`), and exponential smoothing with
a damped trend, without and (m > 1) with a season, run over the whole history before the origin
(:mod:`rnnkit.models.smoothing`: four parameters from a grid, chosen by the one-step error over
the fold's fit part, as Holt-Winters is fitted).
Where the folds hold at least K origins, the candidates are ranked by that error. Where they
hold fewer (a short series: one fold of a few origins whose K-step forecasts all overlap, one
independent comparison at most), a ranking of some 50 candidates by it is noise, and the ridge
fits are left out: the candidate without a ridge part (the window baselines and the smoothing,
:func:`untuned`) with the lowest error from every origin before the validation part's end is
taken (with the smoothing, below, where it is a window baseline), each error out of sample (the
smoothing refitted before each origin on the history before it; the window baselines fit
nothing).
Otherwise the model forecasts the mean of the COMBINE best candidates under the best one's
transform (averaging forecasts is steadier than picking one, Clemen 1989; of the two smoothings
only one takes part). Where none of the candidates taken (the one, or the COMBINE) is a
smoothing, the best smoothing without a ridge part under the same transform joins them with
weight SMOOTHING, and they share the rest (:func:`with_smoothing`): a window baseline or a ridge
fit chosen on a few origins is held near a forecaster fitted on the whole history. All are
fitted on the training part (the validation fold's fits): as the frozen
linear part, each window baseline's map of the window (:func:`base_map`: every one is the
window's last value plus a linear map of the window relative to it) and its ridge part, and the
smoothing's forecast less the last value with weight share (the smoothing's weight in the
mean). The test part is never looked at.
Shapes: N steps, F variables, W window, K horizon, n windows.
"""
import numpy as np
import torch

from rnnkit.data import DataError
from rnnkit.data.series_scale import Scaler, Transform
from rnnkit.models.smoothing import (fit_each_origin, fit_history, forecast_each,
                                     history_forecast, start_length)

RIDGES = (0.1, 1.0, 10.0, 100.0)   # L2 penalties tried for the linear forecaster (standardised units)
FOLDS = 3                          # folds of the validation part's length, the validation part last
COMBINE = 3                        # the best candidates (one transform) whose forecasts are averaged
SMOOTHING = 0.3                    # the smoothing's weight where none of those is one
CHANGE_SEASONS = 3                 # the seasons back whose changes the "change" baseline averages
# fewer fold origins than the horizon: "history", the best candidate without a ridge part over
# every origin before the validation part's end (:func:`untuned`); "folds", the folds' ranking
SHORT = "history"


def change_map(W, K, m):
    """(K, W): the "change" baseline's forecast less the window's last value, as a map of the
    window relative to it: for step h, the mean over the nearest CHANGE_SEASONS seasons back k
    (k m >= h, within the window) of the change from k seasons before the last step to k seasons
    before step h: the last value moved as it moved a season (or two, three) ago."""
    B = np.zeros((K, W))
    for h in range(1, K + 1):
        ks = [k for k in range(1, (W - 1) // m + 1) if k * m >= h][:CHANGE_SEASONS]
        for k in ks:
            B[h - 1, W - 1 + h - k * m] += 1.0 / len(ks)
            B[h - 1, W - 1 - k * m] -= 1.0 / len(ks)
    return B


def candidates(y, W, m, transform, baseline, smoothing=True, K=1):
    """The (transform, baseline) settings to compare: the given ones, or all that fit the data.
    Baselines: last, mean (the window's), drift (the last value plus the window's mean change
    per step), seasonal, change (the last value plus its change a season or more ago, where the
    window holds a season before the horizon's last step), ets (smoothing without a season),
    ets-seasonal; mean, drift and change only where chosen automatically."""
    if baseline == "seasonal" and (m < 2 or W < m):
        raise DataError(f"--baseline seasonal needs a season > 1 and a window of at least one "
                        f"season; got season {m}, window {W}")
    if baseline == "ets" and not smoothing:
        raise DataError("--baseline ets needs --mode direct, the residual forecast, the "
                        "linear part and --history (exponential smoothing is a fitted linear "
                        "forecaster; --no-linear drops both)")
    seasonal = 1 < m <= W
    ts = [transform] if transform != "auto" else ["none"] + (["log"] if (y > 0).all() else [])
    ets = ["ets"] + (["ets-seasonal"] if m > 1 else [])   # run over the history: any window
    if baseline == "auto":
        bs = (["last", "mean"] + (["drift"] if W > 1 else []) + (["seasonal"] if seasonal else [])
              + (["change"] if m > 1 and -(-K // m) * m <= W - 1 else [])
              + (ets if smoothing else []))
    else:
        bs = ets if baseline == "ets" else [baseline]
    return [(t, b) for t in ts for b in bs]


def folds(split, W, K, m, n_folds=FOLDS):
    """[(start, end)] of the folds, the validation part first: each holds a forecast origin and
    leaves at least W fit windows before it (the validation part is kept regardless)."""
    train_end, val_end = split
    v = val_end - train_end
    out = [(train_end, val_end)]
    for j in range(1, n_folds):
        start = train_end - j * v
        if start - K - max(W, m) + 1 < W or start - v < max(W, m):
            break
        out.append((start, start + v))
    return out


def base_forecast(z, origins, K, m, baseline, params=None, W=None):
    """The baseline's forecast (n, K, F) of z[t:t+K] from z[:t] for each origin t (``params``:
    the smoothing's (5,), for ets, run over all of z[:t]; ``W``: the window of mean and drift)."""
    h, o = np.arange(K), np.asarray(origins, dtype=np.int64)
    if baseline == "seasonal":
        return z[o[:, None] - m + h % m]
    if baseline == "mean":
        return np.stack([np.repeat(z[t - W:t].mean(0, keepdims=True), K, 0) for t in origins])
    if baseline == "change":
        B = change_map(W, K, m)                                               # (K, W)
        return np.stack([z[t - 1] + B @ (z[t - W:t] - z[t - 1]) for t in origins])
    if baseline == "drift":   # the line through the window's first and last values, extended
        return z[o - 1, None] + (h + 1)[:, None] * (z[o - 1] - z[o - W])[:, None] / (W - 1)
    if baseline.startswith("ets"):
        return history_forecast(torch.from_numpy(z), torch.as_tensor(params), m, K,
                                list(origins)).numpy()
    return np.repeat(z[o - 1, None], K, 1)


def steps_after(z, origins, K):
    """z[t:t+K] for each origin t: (n, K, F)."""
    return z[np.asarray(origins, dtype=np.int64)[:, None] + np.arange(K)]


def features(z, origins, W):
    """The window relative to its last value, and a bias: (n, W*F + 1)."""
    o = np.asarray(origins, dtype=np.int64)
    win = steps_after(z, o - W, W) - z[o - 1, None]                             # (n, W, F)
    return np.concatenate([win.reshape(len(origins), -1), np.ones((len(origins), 1))], 1)


def first_origin(N, W, m, bases):
    """The first forecast origin of a series of N steps: a window (and a season) before it, and
    where a smoothing takes part, the steps its states start from (up to 4 without a season,
    more than a window of 2 or 3 holds)."""
    first = max(W, m)
    return max(first, start_length(N, m)) if any(b.startswith("ets") for b in bases) else first


def fold_fits(y, t, fit_end, W, K, m, bases):
    """The fits of every baseline and linear part on y[:fit_end] under transform t: (transform,
    scaler, z (N, F) standardised, {baseline: smoothing params or None}, fit origins)."""
    tr = Transform(t)
    x = tr.forward(y.astype(np.float64))
    scaler = Scaler.fit(x[:fit_end])
    z = (x - scaler.mean) / scaler.std                                        # (N, F)
    first = first_origin(len(y), W, m, bases)
    fit = list(range(first, fit_end - K + 1))
    params = {}
    for b in bases:
        if b.startswith("ets") and fit:   # one-step errors over the fit part, as Holt-Winters
            p, _ = fit_history(torch.from_numpy(z[:fit_end]), list(range(first, fit_end)),
                               m, b == "ets-seasonal")
            params[b] = p.numpy()                   # [α, β, γ, φ, seasonal]
        else:
            params[b] = None
    return tr, scaler, z, params, fit


def choose(y, split, W, K, m, transform="auto", baseline="auto", linear=True, smoothing=True):
    """(transform, baseline, smoothing params (5,) or None, (weight (K*F, W*F), bias (K*F,)),
    note): the transform and baseline of the candidate with the lowest rolling-origin MAE over
    the folds, and the linear part that makes the model forecast the mean of the COMBINE best
    candidates under that transform (the best alone where ``linear`` is off: a model without
    the linear part, which holds the window baselines mean, drift and change, takes the last
    value, the season or the smoothing); ``note`` gives the scores for the log."""
    settings = candidates(y, W, m, transform, baseline, smoothing, K)
    if not linear:
        settings = [(t, b) for t, b in settings if b in ("last", "seasonal") or b.startswith("ets")]
    y = y.astype(np.float64)
    F = y.shape[1]
    lams = ((None,) + RIDGES) if linear else (None,)
    err, final = {}, {}
    parts = folds(split, W, K, m)
    for t in sorted({s[0] for s in settings}):
        bases = [b for s, b in settings if s == t]
        for j, (start, end) in enumerate(parts):
            tr, scaler, z, params, fit = fold_fits(y, t, start, W, K, m, bases)
            val = list(range(max(start, first_origin(len(y), W, m, bases)), end - K + 1))
            if not val:
                continue
            truth = steps_after(y, val, K)                                    # (n, K, F)
            Xv = features(z, val, W)
            Xf, ahead_f = (features(z, fit, W), steps_after(z, fit, K)) if fit else (None, None)
            for b in bases:
                if b.startswith("ets") and params[b] is None:
                    continue
                base_v = base_forecast(z, val, K, m, b, params[b], W)
                base_f = base_forecast(z, fit, K, m, b, params[b], W) if fit else None
                for lam in lams:
                    if lam is None:
                        beta = np.zeros((W * F + 1, K * F))
                    elif fit:
                        Y = (ahead_f - base_f).reshape(len(fit), -1)
                        beta = np.linalg.solve(Xf.T @ Xf + lam * np.eye(Xf.shape[1]), Xf.T @ Y)
                    else:
                        continue
                    pred = base_v + (Xv @ beta).reshape(len(val), K, F)
                    pred = tr.inverse(pred * scaler.std + scaler.mean)
                    key = (t, b, lam)
                    err.setdefault(key, []).append(np.abs(pred - truth).mean((1, 2)))
                    if j == 0:
                        final[key] = (params[b], beta)
    errs = {k: np.concatenate(v) for k, v in err.items() if k in final}      # {key: (n,)}
    n = max((len(v) for v in errs.values()), default=0)
    errs = {k: v for k, v in errs.items() if len(v) == n}
    if not errs:
        raise DataError(f"no forecast origin before the test part: the validation part must hold "
                        f"the horizon {K} after a window of {W}")
    scores = {k: float(v.mean()) for k, v in errs.items()}
    how, short = "", n < K and SHORT != "folds"
    if not short:   # the folds' ranking, the COMBINE best averaged
        ranked = sorted(errs, key=scores.get)
    else:        # too few origins to rank fits: the best untuned candidate over the history
        ranked, count = untuned(y, split, W, K, m, [k for k in errs if k[2] is None])
        how = (f"; fewer fold origins than the horizon: the best of the candidates without a "
               f"ridge part over the {count} origins before the validation part's end (the "
               f"smoothing refitted before each)")
    t = ranked[0][0]
    smoothed = next((k[1] for k in ranked if k[1].startswith("ets")), None)
    kept = [k for k in ranked if k[0] == t and (not k[1].startswith("ets") or k[1] == smoothed)]
    kept = kept[:1 if short or not linear else COMBINE]   # one smoothing (parameter set) at most
    ranked, wts = with_smoothing(kept, ranked, final) if linear else (kept, [1.0])
    b = ranked[0][1]
    base = "ets" if b.startswith("ets") else "seasonal" if b == "seasonal" else "last"
    used = [k for k in ranked if k[1].startswith("ets")]
    params = final[used[0]][0] if used else None
    maps = [base_map(k[1], W, K, m, F) + final[k][1][:-1].T for k in ranked]
    weight = np.tensordot(wts, maps, 1) - base_map(base, W, K, m, F)        # (K*F, W*F)
    bias = np.tensordot(wts, [final[k][1][-1] for k in ranked], 1)          # (K*F,)
    shown = ", ".join(f"{name(k)} {v:.4g}"
                      for k, v in sorted(scores.items(), key=lambda kv: kv[1])[:6])
    ets = "" if params is None else "; smoothing " + " ".join(
        f"{n}={v:g}" for n, v in zip(("α", "β", "γ", "φ", "seasonal"), params))
    share = sum(w for k, w in zip(ranked, wts) if k[1].startswith("ets"))
    smooth = None if params is None else (params, share)
    mean = (f"the mean of {', '.join(name(k) for k in ranked)}" if len(set(wts)) == 1 else
            " + ".join(f"{w:.3g} {name(k)}" for k, w in zip(ranked, wts)))
    return t, base, smooth, (weight, bias), (
        f"{ets}; forecast: {mean}; MAE over "
        f"{len(parts)} fold(s) ({n} origins) before the test part, best first: {shown}{how}")


def choose_columns(y, split, W, K, m, transform="auto", baseline="auto", smoothing=True,
                   names=None):
    """:func:`choose` on each column of y (N, F) alone, as F series: (transforms [F], "last",
    smoothing ((F, 5), (F,)) or None, (weight (K*F, W*F), bias (K*F,)), note). Each column's
    window baseline goes into its linear part (every one is a linear map of the window
    relative to its last value, :func:`base_map`), so the model's own baseline is the last
    value for all; the linear part is block-diagonal: a column's forecast reads its own
    window alone; the note gives each column (``names``) its line."""
    F = y.shape[1]
    names = names or [f"column {f + 1}" for f in range(F)]
    weight, bias = np.zeros((K * F, W * F)), np.zeros(K * F)
    params, shares, kinds, notes = [], [], [], []
    for f in range(F):
        t, base, smooth, (w, b), note = choose(y[:, f:f + 1], split, W, K, m, transform,
                                               baseline, True, smoothing)
        w = w + base_map(base, W, K, m, 1)                                    # (K, W)
        weight[f::F, f::F], bias[f::F] = w, b
        kinds.append(t)
        params.append(smooth[0] if smooth else np.array([1.0, 0.0, 0.0, 0.0, 0.0]))
        shares.append(smooth[1] if smooth else 0.0)
        notes.append(f"\n  {names[f]}: transform {t}, baseline {base}{note}")
    smooth = (np.stack(params), np.array(shares)) if any(shares) else None
    return kinds, "last", smooth, (weight, bias), "; each column its own choice:" + "".join(notes)


def with_smoothing(kept, ranked, final):
    """(candidates, weights) of the forecast: the kept candidates' mean where one of them is a
    smoothing; else they share 1 - SMOOTHING and the best smoothing without a ridge part under
    the same transform in ``ranked`` (where one was fitted on the training part) gets
    SMOOTHING."""
    if any(k[1].startswith("ets") for k in kept):
        return kept, [1.0 / len(kept)] * len(kept)
    extra = next((k for k in ranked if k[0] == kept[0][0] and k[1].startswith("ets")
                  and k[2] is None and k in final), None)
    if extra is None or SMOOTHING == 0:
        return kept, [1.0 / len(kept)] * len(kept)
    return kept + [extra], [(1 - SMOOTHING) / len(kept)] * len(kept) + [SMOOTHING]


def untuned(y, split, W, K, m, keys):
    """(keys best first, origins) of the candidates without a ridge part ((transform, baseline,
    None)) by the MAE of their K-step forecasts from every origin t before the validation part's
    end, in the data's units. Every error is out of sample: the window baselines fit nothing,
    and the smoothing's parameters are refitted for each origin t on the one-step errors of
    y[:t] alone (as Holt-Winters is refitted at each origin), never on what it forecasts."""
    q = start_length(len(y), m)   # origins leave q steps to start the states, q to fit them
    origins = list(range(max(W, m, 2 * q), split[1] - K + 1))
    if not origins:   # too short to fit a smoothing before any origin: the window baselines
        keys = [k for k in keys if not k[1].startswith("ets")]
        origins = list(range(max(W, m), split[1] - K + 1))
    if not origins or not keys:
        raise DataError(f"no forecast origin before the validation part's end (step {split[1]}) "
                        f"leaves a window of {W} before it and the horizon {K} after it: give "
                        f"a longer series, or a smaller --window or --horizon")
    truth = steps_after(y, origins, K)                                        # (n, K, F)
    scores = {}
    for key in keys:
        t, b, _ = key
        tr = Transform(t)
        x = tr.forward(y.astype(np.float64))
        scaler = Scaler.fit(x[:split[0]])
        z = (x - scaler.mean) / scaler.std                                    # (N, F)
        if b.startswith("ets"):   # refitted per origin on the history before it, in one pass
            zt = torch.from_numpy(z)
            fits = fit_each_origin(zt, origins, q, m, b == "ets-seasonal")   # (n, 5)
            base = forecast_each(zt, fits, m, K, origins).numpy()             # (n, K, F)
        else:
            base = base_forecast(z, origins, K, m, b, None, W)
        pred = tr.inverse(base * scaler.std + scaler.mean)
        scores[key] = float(np.abs(pred - truth).mean())
    return sorted(scores, key=scores.get), len(origins)


def name(key):
    """transform/baseline/linear part of a candidate, for the log."""
    t, b, lam = key
    return f"{t}/{b}/{'-' if lam is None else f'ridge {lam:g}'}"


def base_map(baseline, W, K, m, F):
    """A window baseline's forecast less the window's last value as a linear map of the window
    relative to its last value: (K*F, W*F), rows k*F + f, columns j*F + f (each baseline moves
    with the level and scales with the window, so this map is the whole baseline). The
    smoothing over the history is no map of the window: zero here, it enters the model as
    share × (its forecast - the last value)."""
    B = np.zeros((K, W))
    h = np.arange(K)
    if baseline == "seasonal":
        B[h, W - m + h % m] = 1.0
    elif baseline == "mean":    # mean(z_1..z_W) - z_W = mean of the relative window
        B[:] = 1.0 / W
    elif baseline == "change":
        B = change_map(W, K, m)
    elif baseline == "drift":   # z_W + h (z_W - z_1) / (W - 1): the first relative value
        B[h, 0] = -(h + 1) / (W - 1)
    return np.kron(B, np.eye(F))


def baseline_errors(y, end, W, K, m, bases):
    """{baseline: MAE of its K-step forecasts from every origin in [max(W, m), end - K]}, in the
    data's units (a parameter-free baseline copies past values: the same on any scale)."""
    origins = list(range(max(W, m), end - K + 1))
    truth = steps_after(y, origins, K)                                        # (n, K, F)
    return {b: float(np.abs(base_forecast(y, origins, K, m, b) - truth).mean()) for b in bases}


def linear_fit(y, split, W, K, m, transform, baseline, ridge=1.0):
    """(coefficients (W*F + 1, K*F), validation MAE) of a ridge forecaster of a parameter-free
    baseline's error, fitted on the training part; the last row of the coefficients is the bias."""
    train_end, val_end = split
    tr, scaler, z, _, fit = fold_fits(y, transform, train_end, W, K, m, [baseline])
    val = list(range(max(train_end, W, m), val_end - K + 1))
    if not fit:
        return np.zeros((W * y.shape[1] + 1, K * y.shape[1])), np.inf
    X = features(z, fit, W)
    Y = (steps_after(z, fit, K) - base_forecast(z, fit, K, m, baseline))
    beta = np.linalg.solve(X.T @ X + ridge * np.eye(X.shape[1]), X.T @ Y.reshape(len(fit), -1))
    if not val:
        return beta, np.inf
    pred = base_forecast(z, val, K, m, baseline) + (features(z, val, W) @ beta).reshape(len(val), K, -1)
    pred = tr.inverse(pred * scaler.std + scaler.mean)                        # (n, K, F)
    truth = steps_after(y, val, K)
    return beta, float(np.abs(pred - truth).mean())
