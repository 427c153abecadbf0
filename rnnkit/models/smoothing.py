"""Exponential smoothing with a damped additive trend and an optional additive season, run over a
window: a forecaster with four parameters, the low-parameter candidate beside the last value,
the last season and the window's linear autoregression (Gardner & McKenzie 1985; Hyndman et al.
2008, ETS(A,Ad,A)). For the one-step error e_t = z_t - (l_{t-1} + φ b_{t-1} + s_{t-m}):

    l_t = l_{t-1} + φ b_{t-1} + α e_t          level
    b_t = φ b_{t-1} + β e_t                    trend, damped by φ (φ = 0: no trend)
    s_t = s_{t-m} + γ e_t                      season (none where ``seasonal`` is 0)
    ẑ_{t+h} = l_t + (φ + φ² + ... + φ^h) b_t + s_{t+h-m⌈h/m⌉}

The states start from the window's first steps (level: the mean of the first season, or the first
p ≤ 4 values; trend: the change of that mean to the next season, per step; season: the first
season's deviations from the level) and are filtered over the rest of the window, so a forecast
depends on the window alone, like the model's other parts. Additive throughout, so the forecast
of a * z + c is a * ẑ + c: the parameters are the same in standardised and in the data's units;
on the log scale the season and trend act multiplicatively.
The parameters are chosen from a grid (:func:`grid`) by the mean absolute K-step error over the
given windows, every grid point at once. :func:`history_forecast` runs the same filter over the
whole series before each origin instead (states started on the series' first steps, one pass for
every origin), :func:`fit_history` fits it by the one-step error, as Holt-Winters is fitted, and
:func:`fit_each_origin` refits it before each of many origins from one pass (every origin's fit
reads the one-step errors before it); the forecaster uses these (checkpoints before them ran
over the window).
Shapes: B windows, W window, K horizon, F variables, G grid points, m season.
"""
import itertools

import numpy as np
import torch

from rnnkit import kernels

ALPHA = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
BETA = (0.0, 0.05, 0.15, 0.3)          # as a fraction of α
PHI = (0.0, 0.8, 0.9, 0.95, 0.98, 1.0)
GAMMA = (0.0, 0.05, 0.1, 0.2, 0.4)     # as a fraction of 1 - α


def grid(seasonal):
    """(G, 5) parameter sets [α, β, γ, φ, seasonal] tried by :func:`fit_smoothing`."""
    gammas = GAMMA if seasonal else (0.0,)
    rows = [(a, a * b, (1 - a) * g, p, float(seasonal))
            for a, b, p, g in itertools.product(ALPHA, BETA, PHI, gammas)]
    return torch.tensor(rows, dtype=torch.float64)


def start_length(W, m):
    """p, the steps the states start from: one season m, or up to 4 steps without a season."""
    return m if m > 1 else max(1, min(4, W // 2))


def smoothing_forecast(z, params, m, K):
    """K-step forecasts after each window z (B, W, F) for the parameters (..., 5) [α, β, γ, φ,
    seasonal]: (..., B, K, F)."""
    lead = params.shape[:-1]
    a, b, g, phi, on = (p.reshape(*lead, 1, 1).to(z.dtype) for p in params.unbind(-1))
    W = z.shape[1]
    p = start_length(W, m)
    mean = z[:, :p].mean(1)                                                   # (B, F)
    if 2 * p <= W:   # trend: the next p steps' mean against the first p's, per step
        trend0 = (z[:, p:2 * p].mean(1) - mean) / p
    else:
        trend0 = torch.zeros_like(mean)
    level = mean + trend0 * (p - 1) / 2                                       # at step p - 1
    trend = trend0 * (phi > 0)                                                # (..., B, F)
    k = m if m > 1 else 1
    if m > 1:   # season[i]: the seasonal state of steps i, i + m, ... (i < m)
        dev = z[:, :m] - (mean[:, None] + trend0[:, None] * (torch.arange(m, dtype=z.dtype)
                                                             - (m - 1) / 2)[:, None])
        season = [on * dev[:, i] for i in range(m)]                           # m × (..., B, F)
    else:
        season = [torch.zeros_like(mean)]
    for t in range(p, W):
        s = season[t % k]
        err = z[:, t] - (level + phi * trend + s)                             # (..., B, F)
        level = level + phi * trend + a * err
        trend = phi * trend + b * err
        if m > 1:
            season[t % k] = s + on * g * err
    out, damp, power = [], torch.zeros_like(phi), torch.ones_like(phi)
    for h in range(1, K + 1):
        power = power * phi
        damp = damp + power
        out.append(level + damp * trend + season[(W - 1 + h) % k])
    return torch.stack(out, -2)                                               # (..., B, K, F)


def fit_smoothing(z, target, m, seasonal, chunk=4_000_000):
    """The grid point [α, β, γ, φ, seasonal] (5,) with the lowest mean absolute error of its
    forecasts after the windows z (B, W, F) against target (B, K, F), and that error."""
    params = grid(seasonal)
    z, target = z.double(), target.double()
    errs = []
    step = max(1, chunk // max(1, z.shape[0] * z.shape[2] * max(target.shape[1], m)))
    for i in range(0, len(params), step):   # a bounded number of grid points at once
        pred = smoothing_forecast(z, params[i:i + step], m, target.shape[1])  # (g, B, K, F)
        errs.append((pred - target).abs().mean((1, 2, 3)))
    errs = torch.cat(errs)
    best = int(errs.argmin())
    return params[best], float(errs[best])


def history_forecast(z, params, m, K, origins, errors=False):
    """K-step forecasts from each origin t of the series z (N, F), the filter run over all of
    z[:t] (p <= t <= N) from states started on the series' first steps (as
    :func:`smoothing_forecast` started at step 0: the trend reads the first 2p steps), for the
    parameters (..., 5): (..., n, K, F). One pass over the series serves every origin; the pass
    runs in the compiled filter (:func:`_in_kernel`), or where the kernels are off in numpy,
    whose operations on a few hundred grid points cost a fraction of torch's dispatch (the same
    IEEE operations in the same order in all three: the same numbers), and keeps each origin's
    states, whose forecasts are formed together after it. ``errors`` (K 1, origins
    before N): the one-step forecasts' absolute errors |z_t - ẑ_t| (..., n, F) instead, read
    off the filter as it passes (no states kept: what a fit by the one-step error needs)."""
    lead = tuple(params.shape[:-1])
    N = z.shape[0]
    p = start_length(N, m)
    end = N - 1 if errors else N   # (an error needs the step after its origin)
    if not origins or min(origins) < p or max(origins) > end:
        raise ValueError(f"history smoothing forecasts from origins in [{p}, {end}], got "
                         f"{min(origins, default=None)}..{max(origins, default=None)}")
    if params.numel() == 0 or K == 0:                                         # nothing asked
        return z.new_zeros(*lead, len(origins), *(() if errors else (K,)), z.shape[1])
    wide = z.dtype in (torch.bfloat16, torch.float16)   # numpy has no bfloat16: float32 then
    x = z.detach().cpu().float().numpy() if wide else z.detach().cpu().numpy()   # (N, F)
    dt = x.dtype
    a, b, g, phi, on = (q.detach().cpu().numpy().astype(dt).reshape(*lead, 1)
                        for q in params.unbind(-1))                           # (..., 1) each
    zf = z.float() if wide else z
    mean = zf[:p].mean(0).detach().cpu().numpy()                              # (F,) torch's
    trend0 = ((zf[p:2 * p].mean(0).detach().cpu().numpy() - mean) / p     # sums, as before
              if 2 * p <= N else np.zeros_like(mean))
    level = np.broadcast_to(mean + trend0 * (p - 1) / 2, (*lead, x.shape[1])).copy()  # (..., F)
    trend = trend0 * (phi > 0)
    k = m if m > 1 else 1
    if m > 1:
        dev = x[:m] - (mean + trend0 * (np.arange(m, dtype=dt) - (m - 1) / 2)[:, None])
        season = [on * dev[i] for i in range(m)]                              # m × (..., F)
    else:
        season = [np.zeros_like(level)]
    damps, power, damp = [], np.ones_like(phi), np.zeros_like(phi)
    for _ in range(K):
        power = power * phi
        damp = damp + power
        damps.append(damp)
    og = on * g
    done = _in_kernel(x, (a, b, og, phi), level, trend, season, damps, origins, p, m,
                      0 if errors else K)
    if done is not None:
        return torch.from_numpy(done).to(z.device, z.dtype)
    rows = list(x)
    wanted, last = set(origins), max(origins)
    kept = {}                     # origin -> its level, trend and K seasonal states (references)
    if errors:   # each origin's absolute error, written in place as the filter passes it
        slots = {}
        for j, t in enumerate(origins):
            slots.setdefault(t, []).append(j)
        out = np.empty((*level.shape[:-1], len(origins), level.shape[-1]), dtype=dt)  # (..., n, F)
    for t in range(p, last + 1):
        if t in wanted and not errors:   # the forecast after z[:t]
            kept[t] = (level, trend, [season[(t + h) % k] for h in range(K)])
        if t == last and not errors:
            break
        s = season[t % k]
        pt = phi * trend
        err = rows[t] - (level + pt + s)
        if errors:
            for j in slots.get(t, ()):
                np.abs(err, out=out[..., j, :])
            if t == last:
                break
        level = level + pt + a * err
        trend = pt + b * err
        if m > 1:
            season[t % k] = s + og * err
    if errors:
        return torch.from_numpy(out).to(z.device, z.dtype)
    levels = np.stack([kept[t][0] for t in origins], -2)[..., None, :]         # (..., n, 1, F)
    trends = np.stack([kept[t][1] for t in origins], -2)[..., None, :]         # (..., n, 1, F)
    seasons = np.stack([s for t in origins for s in kept[t][2]], -2)           # (..., n·K, F)
    seasons = seasons.reshape(*seasons.shape[:-2], len(origins), K, -1)       # (..., n, K, F)
    damps = np.stack(damps, -2)[..., None, :, :]                              # (..., 1, K, 1)
    out = levels + damps * trends + seasons                                   # (..., n, K, F)
    return torch.from_numpy(np.ascontiguousarray(out)).to(z.device, z.dtype)   # (no autograd:
    # the smoothing's parameters are buffers, chosen on a grid)


def _in_kernel(x, params, level, trend, season, damps, origins, p, m, K):
    """:func:`history_forecast`'s pass in the compiled filter (``rnnkit/kernels/smoothing.cpp``,
    the same operations in the same order: the same numbers, without a Python step per step):
    its forecasts (..., n, K, F), or with K 0 its one-step errors (..., n, F); None where the
    kernels are off (then the numpy loop runs)."""
    kern = kernels.get(torch.from_numpy(x[:0]))
    if kern is None:
        return None
    x = np.ascontiguousarray(x)
    lead, F = level.shape[:-1], level.shape[-1]
    W = level.size

    def lanes(v):   # (..., 1 or F) -> (W,), a copy the kernel reads (or steps)
        return torch.from_numpy(np.array(np.broadcast_to(v, level.shape)).reshape(W))
    a, b, og, phi = map(lanes, params)
    states = [lanes(level), lanes(trend),
              torch.from_numpy(np.stack([np.broadcast_to(s, level.shape) for s in season])
                               .reshape(len(season), W))]
    order = np.argsort(np.asarray(origins), kind="stable")
    at = torch.from_numpy(np.asarray(origins, dtype=np.int64)[order])
    n = len(origins)
    out = torch.empty((*lead, n, *((K,) if K else ()), F), dtype=states[0].dtype)
    kern.smoothing_filter(first=p, last=int(at[-1]), W=W, F=F, k=len(season),
                          seasonal=int(m > 1), K=K, n=n, x=torch.from_numpy(x), a=a, b=b,
                          og=og, phi=phi, level=states[0], trend=states[1], season=states[2],
                          damps=torch.stack([lanes(d) for d in damps]) if K else None,
                          at=at, slot=torch.from_numpy(order.astype(np.int64)), out=out)
    return out.numpy()


def fit_history(z, origins, m, seasonal, chunk=8_000_000):
    """The grid point (5,) whose one-step forecasts from ``origins`` over the history have the
    lowest mean absolute error on the series z (N, F), and that error (one-step fitting, as
    Holt-Winters is fitted). ``chunk``: the errors held at once (each pass over the series
    costs its steps' Python, whatever its grid points: as few passes as memory allows)."""
    params = grid(seasonal)
    z = z.double()
    errs = []
    step = max(1, chunk // max(1, len(origins) * z.shape[1]))
    for i in range(0, len(params), step):
        err = history_forecast(z, params[i:i + step], m, 1, origins, errors=True)   # (g, n, F)
        errs.append(err.mean((1, 2)))
    errs = torch.cat(errs)
    best = int(errs.argmin())
    return params[best], float(errs[best])


def fit_each_origin(z, origins, first, m, seasonal, chunk=8_000_000):
    """For each origin t: the grid point (5,) whose one-step forecasts from every step in
    [first, t) have the lowest mean absolute error on the series z (N, F): (n, 5), what
    :func:`fit_history` gives on z[:t] for those steps, from one pass over the series (the
    filter's one-step errors do not depend on t, so each origin's error is a prefix mean)."""
    params = grid(seasonal)
    z = z.double()
    if min(origins) <= first:
        raise ValueError(f"each origin must leave a step to fit on after {first}, got {min(origins)}")
    steps = list(range(first, max(origins)))
    before = [t - first - 1 for t in origins]   # each origin's last step in the prefix
    sums = []
    size = max(1, chunk // max(1, len(steps) * z.shape[1]))
    for i in range(0, len(params), size):   # each grid point's error summed up to each origin
        err = history_forecast(z, params[i:i + size], m, 1, steps, errors=True)  # (g, S, F)
        sums.append(err.mean(-1).cumsum(1)[:, before])                        # (g, n)
    return params[torch.cat(sums).argmin(0)]                                  # (n, 5)


def forecast_each(z, fits, m, K, origins):
    """K-step forecasts (n, K, F) of the series z (N, F) from each origin with that origin's
    parameters fits (n, 5) (:func:`fit_each_origin`'s): one pass over the series for all the
    distinct fits at once."""
    distinct, which = fits.unique(dim=0, return_inverse=True)                 # (G, 5), (n,)
    every = history_forecast(z, distinct, m, K, origins)                      # (G, n, K, F)
    return every[which, torch.arange(len(origins))]
