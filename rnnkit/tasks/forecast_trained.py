"""A trained forecaster: rolling-origin scores with the naive and seasonal-naive baselines
(computed in :mod:`rnnkit.tasks.forecast_scores`), forecasts from a checkpoint (:class:`Forecast`) with prediction intervals, and a file that
continues the series scored (``rnnkit eval``). Shapes: N steps, F variables, W window, K
horizon, B batch, L interval levels.

Prediction intervals are empirical: the model forecasts from every past origin whose truth is
known before the forecast's origin (its smoothing refitted before each, as before the forecast
itself), and the interval at step h is the forecast plus the
order statistics of those forecasts' signed errors at step h (split-conformal ranks: the
⌊(n+1)α/2⌋-th and ⌈(n+1)(1−α/2)⌉-th of n errors), taken on the transformed, standardised scale
and mapped back, so a log-scale series gets multiplicative intervals. Where fewer errors are
known than a level's rank needs (39 for 95%, 9 for 80%), the interval is a normal one from their
mean and standard deviation (Student's t); below 5 errors, none (NaN).
"""
import operator

import numpy as np
import torch

from rnnkit.data import DataError
from rnnkit.data.series_continues import HOLDS, check_continues
from rnnkit.data.series import read_series_file, same_series
from rnnkit.data.series_scale import Scaler, Transform
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.models.smoothing import (fit_each_origin, forecast_each, history_forecast,
                                     start_length)
from rnnkit.tasks.common import warn
from rnnkit.tasks.forecast_scores import (check_levels, interval_offsets,
                                        interval_scores, LEVELS, mase_scale, MAX_PAST, MIN_PAST,
                                        PAST_STEPS, rolling_scores)
from rnnkit.train.checkpoint import built_from, load_checkpoint

LEGACY = {"relative": False, "window": 0, "history": False,   # checkpoints without these fields
          "refit": False}


def check_stored(ckpt, config):
    """TypeError or ValueError (a CheckpointError under built_from) where a forecaster's stored
    series, its names, labels, split, window, season or scaler do not fit together: a checkpoint
    edited by hand or by another program failed later, inside a forecast, as an internal
    error."""
    count = lambda v: isinstance(v, int) and not isinstance(v, bool)          # noqa: E731
    y = np.asarray(ckpt["series"], dtype=np.float64)
    names, labels, split = ckpt["names"], ckpt["labels"], ckpt["split"]
    if y.ndim != 2 or not isinstance(names, list) or y.shape[1] != len(names) or \
            not all(isinstance(n, str) for n in names):
        raise ValueError(f"its series ({'x'.join(map(str, y.shape))} values) and names do not "
                         f"fit: expected one column a name")
    if not isinstance(labels, list) or len(labels) != len(y):
        raise ValueError(f"its time labels are not one a step of its {len(y)} steps")
    if not (isinstance(split, (list, tuple)) and len(split) == 2 and all(map(count, split))
            and 0 < split[0] <= split[1] <= len(y)):
        raise ValueError(f"its split {split!r} is not two step counts within its {len(y)} steps")
    window, season = ckpt["data_config"]["window"], ckpt.get("season", 1)
    if not count(window) or window < 1 or not count(season) or season < 1:
        raise ValueError(f"its window {window!r} and season {season!r} must be counts >= 1")
    scaler = ckpt["scaler"]
    for key in ("mean", "std"):
        v = np.asarray(scaler[key], dtype=np.float64)
        if v.shape != (y.shape[1],) or not np.isfinite(v).all():
            raise ValueError(f"its scaler's {key} is not one finite number a series")


class Forecast:
    """A trained forecaster with its series: forecasts from any point in the series, in its units."""

    def __init__(self, model, scaler, series, labels, names, split, window, transform=None,
                 season=1, long_form=("", ""), fill="none"):
        self.model, self.scaler, self.y = model.eval(), scaler, np.asarray(series, dtype=np.float32)
        self.labels, self.names, self.split, self.window = labels, names, split, window
        self.transform, self.season = transform or Transform("none"), season
        # (series column, value column) where the series was read in long form, as the files
        # that continue it are
        self.long_form = tuple(long_form)
        self.fill = fill   # how the run filled missing values: so are those of the files it reads

    @classmethod
    def from_task(cls, task):
        return cls(task.model, task.scaler, task.y, task.labels, task.names,
                   [task.train_end, task.val_end], task.data_config.window, task.transform,
                   task.season, (task.data_config.series_column, task.data_config.columns),
                   task.data_config.fill)

    @classmethod
    def load(cls, path):
        ckpt = load_checkpoint(path, kind="forecast")
        with built_from(path):
            model = Forecaster(ForecasterConfig(**{**LEGACY, **ckpt["model_config"]}))
            model.load_state_dict(ckpt["model"])
            d = ckpt["data_config"]
            check_stored(ckpt, model.config)
            return cls(model, Scaler.from_dict(ckpt["scaler"]), ckpt["series"], ckpt["labels"],
                       ckpt["names"], ckpt["split"], d["window"],
                       Transform.from_dict(ckpt.get("transform")), ckpt.get("season", 1),
                       (d.get("series_column", ""), d.get("columns", "")), d.get("fill", "none"))

    def read(self, path):
        """A file continuing the series, read as the series was (its columns; its value column
        in long form), its variables in the series' order."""
        series_column, value_column = self.long_form
        if series_column:
            part = read_series_file(path, value_column, series_column, self.fill)
            return same_series(part, list(self.names), "the run's series")
        return read_series_file(path, ",".join(self.names), fill=self.fill)

    def standardised(self, y):
        return torch.from_numpy(self.scaler.transform(self.transform.forward(y)))

    def to_units(self, z):
        return self.transform.inverse(self.scaler.inverse(z))

    def predict_standardised(self, z, origins, steps, refit_from=None):
        """Forecasts (B, steps, F) of z[t:t+steps] from the window before each origin t, on the
        transformed, standardised scale z (N, F); the smoothing refitted before each origin from
        ``refit_from`` on (default: the validation part's end, as :func:`history_part`)."""
        dtype = next(self.model.parameters()).dtype            # float32, or the model's own
        x = torch.stack([z[t - self.window:t] for t in origins]).to(dtype)    # (B, W, F)
        hist = None
        if self.model.uses_history():
            refit_from = self.split[1] if refit_from is None else refit_from
            hist = history_part(self.model, z, steps, origins, refit_from)[1]  # (B, steps, F)
            hist = hist.to(dtype)
        out = self.model.forecast(x, steps, hist)                             # (B, steps, F)
        return (out.float() if out.dtype == torch.bfloat16 else out).numpy()   # (numpy has none)

    def predict(self, y, origins, steps):
        """Forecasts (B, steps, F) of y[t:t+steps] from the window before each origin t."""
        y, origins, steps = self.checked(y, origins, steps)
        return self.to_units(self.predict_standardised(self.standardised(y), origins, steps))

    def checked(self, y, origins, steps):
        """``y`` as (N, F) float32 (a one-variable run also takes (N,)), ``origins`` as a list
        of ints and ``steps`` as an int; ValueError (DataError) saying what was expected where
        one is not: y of the run's F variables, at least one origin, each in [the least one,
        N] (the window before it, and the smoothing's start, must lie in y), steps >= 1."""
        F = len(self.names)
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 1 and F == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[1] != F:
            raise DataError(f"y must be an array (steps, {F}) of the run's series "
                            f"({', '.join(self.names)}), got shape {y.shape}")
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise DataError(f"steps must be a count of steps >= 1, got {steps!r}")
        try:
            origins = [operator.index(t) for t in np.asarray(origins).reshape(-1).tolist()]
        except TypeError:
            raise DataError(f"origins must be whole numbers (steps into y), got {origins!r}") \
                from None
        if not origins:
            raise DataError("origins is empty: give at least one step of y to forecast from")
        least = max(self.window, start_length(len(y), self.season)
                    if self.model.uses_history() else 1)
        bad = [t for t in origins if not least <= t <= len(y)]
        if bad:
            raise DataError(f"forecast origin must lie in [{least}, {len(y)}] (the model reads "
                            f"the {self.window} steps before it), got {bad[0]}")
        missing = np.flatnonzero(~np.isfinite(y[:max(origins)]).all(1))
        if len(missing):   # NaN in a window made every forecast NaN
            raise DataError(f"y holds {len(missing)} step(s) with a value that is not finite "
                            f"before the last origin (the first: step {missing[0]}); fill them "
                            f"first")
        return y, origins, int(steps)

    def first_origin(self, n):
        m = self.season
        first = max(self.window, m)
        return max(first, start_length(n, m)) if self.model.uses_history() else first

    def past_errors(self, z, end, steps):
        """Signed errors (truth - forecast) on the standardised scale of the forecasts from past
        origins t whose truth z[t:t+h] lies before ``end``: every origin, or evenly spaced ones
        ending at end - 1 on a longer history (MAX_PAST; fewer for a long forecast, so that at
        most PAST_STEPS steps are forecast, but at least MIN_PAST). The smoothing is refitted
        before each of them on the history before it, as it is before the forecasts the
        intervals are for, so its errors are out of sample (with the training part's fit, short
        series' intervals covered 69% at 80%). A list over the steps h = 1..steps of (n_h, F)
        arrays."""
        first = self.first_origin(len(z))
        count = max(MIN_PAST, min(MAX_PAST, PAST_STEPS // steps))
        stride = max(1, -(-(end - first) // count))
        origins = list(range(end - 1, first - 1, -stride))[::-1]
        if not origins:
            return [np.zeros((0, z.shape[1]))] * steps
        pred = self.predict_standardised(z, origins, steps, refit_from=0)     # (B, steps, F)
        z, t = z.numpy(), np.asarray(origins)
        return [z[t[t + h <= end] + h - 1] - pred[t + h <= end, h - 1] for h in range(1, steps + 1)]

    def intervals(self, y, origins, steps, levels=LEVELS, end=None):
        """Forecasts (B, steps, F) and prediction interval bounds lo, hi (L, B, steps, F) in the
        data's units from each origin, the errors known before ``end`` (default: the first
        origin) setting the intervals. ``levels`` are percents in (0, 100): 80 for 80%."""
        y, origins, steps = self.checked(y, origins, steps)
        levels = check_levels(levels)
        z = self.standardised(y)
        end = min(origins) if end is None else end
        if isinstance(end, bool) or not isinstance(end, (int, np.integer)) or not \
                self.first_origin(len(y)) <= end <= len(y):
            raise DataError(f"end must be a step of y from its first forecast origin on, in "
                            f"[{self.first_origin(len(y))}, {len(y)}], got {end!r}")
        pred = self.predict_standardised(z, origins, steps)                    # (B, steps, F)
        if not levels:
            empty = np.zeros((0, *pred.shape))
            return self.to_units(pred), empty, empty
        lo, hi = interval_offsets(self.past_errors(z, end, steps), levels)      # (L, steps, F)
        return (self.to_units(pred), self.to_units(pred + lo[:, None]),
                self.to_units(pred + hi[:, None]))

    def forecast(self, steps, origin=None):
        """(steps, F) forecast of the steps after y[:origin] (default: the held-out tail's start)."""
        origin = self.split[1] if origin is None else origin
        return self.predict(self.y, [origin], steps)[0]


def history_part(model, z, steps, origins=None, refit_from=None):
    """(origins, forecasts (B, steps, F)) of the model's smoothing run over the whole standardised
    series z (N, F) before each origin (default: every origin from the first the smoothing can
    start at to N). Where the model refits (``config.refit``), each origin from ``refit_from``
    on (the validation part's end) gets the parameters fitted on the one-step errors of all the
    history before it, as Holt-Winters is refitted at each origin; the origins before it (the
    training and validation parts, where the smoothing was chosen and scored) the stored ones,
    fitted on the training part."""
    m = model.config.period
    if origins is None:
        origins = list(range(start_length(len(z), m), len(z) + 1))
    origins = list(origins)
    z = z.double()
    refit = refit_from if model.config.refit else None
    if model.config.per_column:   # each variable its own smoothing, fitted on it alone
        part = torch.cat([smoothing_part(z[:, f:f + 1], model.smoothing[f].double(), m, steps,
                                         origins, model.config.window, refit)
                          for f in range(z.shape[1])], -1)
    else:
        part = smoothing_part(z, model.smoothing.double(), m, steps, origins,
                              model.config.window, refit)
    return origins, part.to(torch.float32)


def smoothing_part(z, params, m, steps, origins, window, refit_from):
    """The smoothing's forecasts (n, steps, F) of z (N, F) from each origin with the parameters
    ``params`` (5,), refitted before each origin from ``refit_from`` on (None: never)."""
    part = history_forecast(z, params, m, steps, origins)
    first = max(window, m, start_length(len(z), m))
    late = [i for i, t in enumerate(origins) if refit_from is not None and t >= refit_from
            and t > first]
    if late:
        fits = fit_each_origin(z, [origins[i] for i in late], first, m,
                               bool(params[4] > 0))                            # (n, 5)
        part[late] = forecast_each(z, fits, m, steps, [origins[i] for i in late])
    return part



def evaluate_file(run, path, **options):
    """Rolling-origin scores of a trained forecaster on a CSV file that continues its series (the
    same columns): every origin in the file, the stored series before it as context. Returns
    mae, rmse, mase and the naive and seasonal-naive baselines' figures, in the data's units."""
    f = Forecast.load(run)
    part = f.read(path)
    if part.filled:
        warn(f"{path}: {part.filled} missing value(s) filled ({f.fill}, as the run was trained); "
             f"the scores count filled values as truth")
    check_continues(f.labels, part, HOLDS)
    y = np.concatenate([f.y, part.values])                                    # (N, F)
    logged = np.broadcast_to(f.transform.logged(), part.values.shape[1:])     # (F,)
    if (part.values[:, logged] <= 0).any():
        i = int(np.nonzero((part.values[:, logged] <= 0).any(1))[0][0])
        raise DataError(f"{path}:{part.lines[i]}: a value <= 0 in a series forecast on the log scale")
    K, start = f.model.config.horizon, len(f.y)
    if len(part.values) < K:
        raise DataError(f"{path}: {len(part.values)} rows, fewer than the horizon {K}")
    scale = mase_scale(f.y[:f.split[0]], f.season)
    scores, n = rolling_scores(lambda o: f.predict(y, o, K), y, start, len(y), f.window, K,
                               f.season, scale, "x")
    origins = list(range(max(start, f.window, f.season), len(y) - K + 1))
    _, lo, hi = f.intervals(y, origins, K, end=start)     # set by the stored series' errors
    truth = np.stack([y[t:t + K] for t in origins])
    scores |= interval_scores(lo, hi, truth, scale, LEVELS, "x")
    return {**{k[2:]: v for k, v in scores.items()}, "origins": float(n), "file": str(path),
            "kind": "forecast", "size": len(part.values)}
