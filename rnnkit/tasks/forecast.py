"""Forecasting as a trainer task: windows over a time split, train-only scaling, baselines.

The series is split in time: the first part trains, the next validates (model selection), the
last ``test_fraction`` is the held-out tail (or the parts come from ``--val-data``/``--test-data``
files that continue the series). The season m comes from the dates (monthly 12, quarterly 4, ...)
unless given. Where set to ``auto``, the transform (log or none), the model's baseline (the last
value, the last season's, or exponential smoothing with a damped trend) and its linear part (none
or a ridge fit) are the ones with the lowest error over rolling origins in folds before the test
part (:mod:`rnnkit.tasks.forecast_choice`). Several columns (``--columns a,b,c``) are several
series: each column's transform, baseline, smoothing and linear part are chosen on it alone
(:func:`~rnnkit.tasks.forecast_choice.choose_columns`), and the GRU reads them all.
Scores are rolling-origin: from every origin in a part, forecast the next K steps from the W
before it and compare in the data's own units. MASE divides the MAE by the in-sample MAE of the
seasonal-naive forecast on the training part (Hyndman & Koehler 2006).
A model whose recurrent part has been trained is kept (best.pt) over the untrained one (the chosen
baseline plus the linear part) only where its validation MSE is lower by more than ``rnn_margin``:
its ``val_loss`` is the validation MSE × (1 + rnn_margin). A validation part of a few overlapping
windows is noisy, and on small series a GRU that edges ahead there often loses on later data: on
the benchmark's 32 tuning series, of the 8 GRUs (200 steps) that lowered the validation MSE by
19-56%, 4 were worse on test, the worst (US unemployment) three times worse. The default 1.5
keeps a GRU only where it cuts the validation MSE below 40%. Where the validation part holds
fewer forecast origins than the horizon, the GRU is not trained at all (``trainable``): every
GRU the margin kept on the benchmark's 173 tuning series was on such a series, and 4 of those 7
were worse on test.
Shapes: N steps, F variables, W window, K horizon, B batch.
"""
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from rnnkit.config import MAX_BATCH, MAX_STEPS, ConfigError, check, check_fractions
from rnnkit.data import DataError, resolve
from rnnkit.data.dates import infer_season
from rnnkit.data.series_continues import check_continues
from rnnkit.data.series import read_series_file, same_series
from rnnkit.data.series_numbers import FILLS, far_value
from rnnkit.data.series_scale import Scaler, Transform, split_series
from rnnkit.models.forecaster import Forecaster
from rnnkit.models.smoothing import start_length
from rnnkit.tasks.common import warn
from rnnkit.tasks.forecast_choice import choose, choose_columns
from rnnkit.tasks.forecast_scores import (LEVELS, interval_scores, mase_scale, rolling_scores,
                                          seasonal_naive_error)
from rnnkit.tasks.forecast_trained import Forecast, history_part
from rnnkit.train import distributed

SEASONS = {"sunspots": 11, "sunspots-monthly": 12, "co2": 12}   # named sets: cycle length
CHOICES = {"transform": ("auto", "none", "log"), "baseline": ("auto", "last", "seasonal", "ets")}


@dataclass
class ForecastData:
    data: str = field(default="sunspots", metadata={
        "help": "data set name (rnnkit data list) or a CSV file with a header row"})
    columns: str = field(default="", metadata={
        "help": "value columns a,b,... (each its own series), all (after the first) or the last"})
    # long form: rows of (time, series, value), one variable per series (data.series.read_long)
    series_column: str = field(default="", metadata={
        "help": "long form: the column naming each row's series (time first; --columns: value)"})
    # 0: the longest up to 48 with at least W training windows (see auto_window)
    window: int = field(default=0, metadata={
        "help": "past steps W the model sees (0: up to 48, fewer on a short series)",
        "range": (1, MAX_STEPS), "or": (0,)})
    horizon: int = field(default=12, metadata={
        "help": "steps K ahead that are forecast (trained on and scored)", "range": (1, MAX_STEPS)})
    # season 0: a named set's, else read off the first column's dates (monthly 12, quarterly 4,
    # weekly 52, daily 7, hourly 24, yearly or no dates 1)
    season: int = field(default=0, metadata={
        "help": "seasonal period m (0: from the dates, e.g. monthly 12, quarterly 4)",
        "range": (0, MAX_STEPS)})
    # auto: the transform, baseline and linear part with the lowest error over rolling origins
    # in folds before the test part (forecast_choice)
    transform: str = field(default="auto", metadata={
        "help": "auto, none or log (positive series; multiplicative growth and season)",
        "choices": CHOICES["transform"]})
    baseline: str = field(default="auto", metadata={
        "help": "forecast the model corrects: auto, last, seasonal or ets (damped smoothing)",
        "choices": CHOICES["baseline"]})
    batch: int = field(default=32, metadata={"help": "windows per training batch",
                                              "range": (1, MAX_BATCH)})
    test_fraction: float = field(default=0.1, metadata={
        "help": "fraction of the series held out as the test tail", "range": "(0, 1)"})
    # the step-0 model (baseline + linear part) is the simpler one: training must beat it clearly
    rnn_margin: float = field(default=1.5, metadata={
        "help": "keep a trained RNN only if its val MSE × (1 + this) < the classical forecast's",
        "range": "[0, 10]"})
    val_fraction: float = field(default=0.1, metadata={
        "help": "fraction of the series, before the test tail, for validation",
        "range": "(0, 1)"})
    fill: str = field(default="none", metadata={
        "help": "missing values: none (an error), linear (interpolated) or previous",
        "choices": FILLS})
    # for a series: rows continuing --data (and --val-data) in the same columns
    val_data: str = field(default="", metadata={
        "help": "a file continuing --data, the validation part (needs --test-data)"})
    test_data: str = field(default="", metadata={
        "help": "a file continuing --data (or --val-data), used as the test part"})

    def __post_init__(self):
        check(self)
        check_fractions(self)
        if self.val_data and not self.test_data:
            raise ConfigError("val_data for a series needs test_data as well: the parts follow "
                              "each other in time (data, then validation, then test)")


class ForecastTask:
    unit = "window"
    loss_label = "MSE (standardised; ×(1+rnn_margin) once trained)"
    eval_at_start = True   # step 0 is the chosen baseline + linear part: best.pt may keep it

    def __init__(self, model, series, labels, names, data_config, split, season, transform):
        self.data_config = data_config
        self.model, self.y, self.labels, self.names = model, series, labels, names   # y (N, F)
        self.train_end, self.val_end = split
        self.season, self.transform = season, transform
        self.scaler = Scaler.fit(transform.forward(series[:self.train_end]))
        self.z = torch.from_numpy(self.scaler.transform(transform.forward(series)))  # (N, F)
        self.mase_scale = mase_scale(series[:self.train_end], season)
        zero = seasonal_naive_error(series[:self.train_end], season) == 0
        still = [n for n, col, z in zip(names, series.T, np.atleast_1d(zero))
                 if z and np.ptp(col) > 0]   # (a column constant throughout: warned as such)
        if still:
            warn(f"{data_config.data}: column {still[0]!r}: its training part repeats every "
                 f"{season} step(s) (or holds one value), so its "
                 f"seasonal-naive error there is 0: its MASE and MSIS are on the data's scale "
                 f"(divided by 1), not relative to that error")
        self.hist = None   # {origin: the history smoothing's forecast (K, F)}, filled on use

    @property
    def trainable(self):
        """The GRU is trained only where the validation part can judge it: with fewer origins
        than the horizon, its forecasts all overlap (one comparison or so)."""
        return self.val_origins() >= self.data_config.horizon

    def val_origins(self):
        """The validation part's forecast origins."""
        return len(self.origins(self.train_end, self.val_end))

    def windows(self, origins):
        """Inputs (B, W, F), targets (B, K, F) and the history smoothing's forecasts (B, K, F)
        or None, for forecasts starting at each origin."""
        W, K = self.data_config.window, self.data_config.horizon
        x = torch.stack([self.z[t - W:t] for t in origins])
        hist = None
        if self.model.uses_history():
            if self.hist is None:   # every origin's, from one pass over the series
                self.hist = dict(zip(*history_part(self.model, self.z, K,
                                                   refit_from=self.val_end)))
            hist = torch.stack([self.hist[t] for t in origins])
        return x, torch.stack([self.z[t:t + K] for t in origins]), hist

    def train_batch(self, step):
        g = torch.Generator().manual_seed(step)
        W, K = self.data_config.window, self.data_config.horizon
        origins = torch.randint(self.least_origin(W), self.train_end - K + 1,
                                (self.data_config.batch,), generator=g)
        return self.windows(distributed.shard(origins.tolist()))   # a data-parallel rank's share

    def loss(self, batch):
        return self.model.loss(*batch), len(batch[0])

    def origins(self, start, end):
        W, K = self.data_config.window, self.data_config.horizon
        return list(range(max(start, self.least_origin(max(W, self.season))), end - K + 1))

    def least_origin(self, least):
        """``least``, or later where the history smoothing takes part: its states start on the
        series' first steps (:func:`rnnkit.models.smoothing.start_length`)."""
        if not self.model.uses_history():
            return least
        return max(least, start_length(len(self.z), self.season))

    def evaluate(self):
        """Validation figures; val_loss (what best.pt is chosen by) is the MSE, times
        (1 + rnn_margin) once the recurrent part is no longer zero."""
        x, target, hist = self.windows(self.origins(self.train_end, self.val_end))
        mse = float(self.model.loss(x, target, hist))
        penalty = 1.0 if self.model.rnn_is_zero() else 1.0 + self.data_config.rnn_margin
        return {"val_loss": mse * penalty, "val_mse": mse,
                **self.metrics(self.train_end, self.val_end, "val")}

    def predict(self, origins):
        """Forecasts (B, K, F) in the data's units from each origin."""
        x, _, hist = self.windows(origins)
        z = self.model.forecast(x, self.data_config.horizon, hist).numpy()    # (B, K, F)
        return self.transform.inverse(self.scaler.inverse(z))

    def metrics(self, start, end, prefix, predict=None):
        """Rolling-origin scores of the model (``predict``, default :meth:`predict`) and both
        baselines over y[start:end]."""
        d = self.data_config
        return rolling_scores(predict or self.predict, self.y, start, end, d.window, d.horizon,
                              self.season, self.mase_scale, prefix)[0]

    def test_metrics(self):
        origins = self.origins(self.val_end, len(self.y))
        pred = self.predict(origins)                                          # (B, K, F)
        return {**self.metrics(self.val_end, len(self.y), "test", lambda _: pred),
                "season": self.season, "test_origins": len(origins),
                **self.interval_metrics(origins), **self.column_metrics(origins, pred),
                "transform": self.transform.kind, "baseline": self.model.config.base}

    def column_metrics(self, origins, pred):
        """Several columns: each one's test MAE and MASE (``test_mase:NAME``; the test MASE is
        their mean) from the forecasts ``pred`` (B, K, F) at the test origins."""
        if self.y.shape[1] == 1:
            return {}
        K = self.data_config.horizon
        truth = np.stack([self.y[t:t + K] for t in origins])
        err = np.abs(np.asarray(pred, np.float64) - truth)                    # as score() does
        mae = err.reshape(-1, err.shape[-1]).mean(0)                          # (F,)
        return {f"test_{k}:{name}": float(v)
                for name, a, s in zip(self.names, mae, self.mase_scale)
                for k, v in (("mae", a), ("mase", a / s))}

    def interval_metrics(self, origins):
        """Coverage and MSIS of the prediction intervals at the test origins, set by the
        errors known before the test part."""
        K = self.data_config.horizon
        _, lo, hi = Forecast.from_task(self).intervals(self.y, origins, K, end=self.val_end)
        truth = np.stack([self.y[t:t + K] for t in origins])                  # (B, K, F)
        return interval_scores(lo, hi, truth, self.mase_scale, LEVELS, "test")

    def checkpoint_extras(self):
        return {"kind": "forecast", "model_config": asdict(self.model.config),
                "data_config": asdict(self.data_config), "scaler": self.scaler.to_dict(),
                "transform": self.transform.to_dict(),
                "series": self.y.tolist(), "labels": list(self.labels), "names": list(self.names),
                "split": [self.train_end, self.val_end], "season": self.season}


def read_parts(d, log):
    """The series of --data, then of --val-data and --test-data where given: (SeriesFile,
    values (N, F), labels, split (train_end, val_end))."""
    main = read_series_file(resolve(d.data), d.columns, d.series_column, d.fill)
    parts = [same_series(read_series_file(p, d.columns, d.series_column, d.fill), main.names,
                         main.path) for p in (d.val_data, d.test_data) if p]
    flat = [n for n, col in zip(main.names, main.values.T) if np.ptp(col) == 0]
    if flat:
        warn(f"{main.path}: column {flat[0]!r} holds the same value on every row: its forecast is "
             f"that value; choose another column with --columns if that is not the series")
    for f in [main] + parts:
        for note in f.notes:
            warn(f"{f.path}: {note}")
        far = far_value(f, main)
        if far:
            warn(far)
        if f.filled:
            warn(f"{f.path}: {f.filled} missing value(s) filled ({d.fill}); scores on the test "
                 f"part count filled values as truth")
    if d.transform == "log":   # the file and line of the first value the log cannot take
        for f in [main] + parts:
            bad = np.nonzero((f.values <= 0).any(1))[0]
            if len(bad):
                raise DataError(f"{f.path}:{f.lines[bad[0]]}: a value <= 0 ({len(bad)} such "
                                f"row(s) in the file); --transform log needs a positive series")
    labels = list(main.labels)
    for p in parts:
        check_continues(labels, p)
        labels += p.labels
    y = np.concatenate([main.values] + [p.values for p in parts])
    n = len(main.values)
    if d.val_data:
        split = (n, n + len(parts[0].values))
    elif d.test_data:
        split = (n - max(1, round(n * d.val_fraction)), n)
    else:
        split = split_series(n, d.test_fraction, d.val_fraction)
    return main, y, labels, split


def resolve_season(d, main, n_train, log):
    """The season m: --season, a named set's, or the dates'; a season the training part cannot
    hold twice is refused (given) or dropped with a warning (inferred)."""
    if d.season:   # the dates' order is checked all the same
        dated, freq = infer_season(main, lambda *_: None, given=True)
        m, how = d.season, "given"
        if freq and m > 1 and m % dated:   # (a multiple: a longer cycle of the same steps)
            log(f"{main.path}: --season {m}, where the {freq} dates' season is {dated}")
    elif d.data in SEASONS:
        m, how = SEASONS[d.data], f"{d.data}'s"
    else:
        m, freq = infer_season(main, warn)
        how = f"{freq} dates" if freq else "no dated steps"
    if m > 1 and n_train < 2 * m:
        msg = (f"{main.path}: the training part has {n_train} steps, fewer than two seasons of "
               f"{m} ({how})")
        if d.season:
            raise DataError(msg + "; give a smaller --season or a longer series")
        warn(msg + "; forecasting without a season (season 1)")
        m, how = 1, "too short for its season"
    return m, how


MAX_WINDOW = 48   # the longest window --window 0 chooses


def auto_window(n_train, K, m):
    """The window W for --window 0: the longest up to MAX_WINDOW whose training part holds at
    least W windows (n_train - K - W + 1 >= W: the linear part has W coefficients per forecast
    step), widened to one season m where the training part holds a window of it."""
    return max(1, min(MAX_WINDOW, (n_train - K + 1) // 2), min(m, n_train - K))


def check_lengths(d, n, split, path):
    W, K = d.window, d.horizon
    train_end, val_end = split
    if train_end < W + K:
        raise DataError(f"{path}: the training part has {train_end} steps, fewer than "
                        f"window {W} + horizon {K}; use a shorter --window/--horizon or a "
                        f"longer series ({n} steps in all)")
    if n - val_end < K or val_end - train_end < K:
        for flag, file, size in (("--val-data", d.val_data, val_end - train_end),
                                 ("--test-data", d.test_data, n - val_end)):
            if file and size < K:   # a part from its own file: the fractions do not make it
                raise DataError(f"{file}: {size} steps ({flag}), fewer than the horizon {K}: "
                                f"give a file of at least {K} steps, or a --horizon of at most "
                                f"{size}")
        # the fractions that make a part (not one from its own file), of the --data file
        flags = [f"--{p}-fraction" for p, file in (("val", d.val_data), ("test", d.test_data))
                 if not file]
        own = n - (n - val_end if d.test_data else 0) - (val_end - train_end if d.val_data else 0)
        need = math.ceil(K / own * 100) / 100   # the fraction of the file that holds K
        longer = (f", or {' and '.join(flags)} of {need:g} ({own} steps in {path})"
                  if flags and need <= 0.3 else "")
        raise DataError(f"{path}: validation and test parts ({val_end - train_end}"
                        f" and {n - val_end} steps) must each hold the horizon {K}; use a "
                        f"--horizon of at most {min(val_end - train_end, n - val_end)}{longer}")


MAX_LINEAR = 30_000_000   # the linear part's weights at most (400 columns: 92 M, past 3 min)


def build_forecast_task(data_config, model_config, log=print, checkpoint=None):
    """Read the series, find its season, choose the transform, baseline and linear part on
    folds before the test part, scale it on the training part, build the model. Resuming
    ``checkpoint``, the run's own choices stand (its transform, baseline, season; the linear
    part and smoothing come with its weights): a version of rnnkit that chose otherwise
    rebuilt another model under the run's weights."""
    d = data_config
    main, y, labels, split = read_parts(d, log)
    m, how = resolve_season(d, main, split[0], log)
    if checkpoint is not None:
        m, how = checkpoint.get("season", m), "the run's"
    chosen = not d.window
    if chosen:   # stored resolved, so a resumed or loaded run uses the same window
        d.window = auto_window(split[0], d.horizon, m)
    check_lengths(d, len(y), split, main.path)
    if d.transform == "log" and (y <= 0).any():
        raise DataError(f"{main.path}: --transform log needs a positive series; it holds "
                        f"{int((y <= 0).sum())} value(s) <= 0")
    c = model_config
    c.history = c.history and c.linear and c.mode == "direct" and c.residual   # smoothing
    # several columns: each its own classical forecast (needs the linear part to hold each
    # column's baseline); the GRU reads them all
    c.per_column = y.shape[1] > 1 and c.linear and c.mode == "direct" and c.residual
    F = y.shape[1]
    if c.per_column and d.horizon * d.window * F * F > MAX_LINEAR:   # (K·F, W·F), held whole
        most = int((MAX_LINEAR / (d.horizon * d.window)) ** 0.5)
        raise DataError(f"{main.path}: {F} series make the linear part a {d.horizon * F:,} x "
                        f"{d.window * F:,} matrix ({d.horizon * d.window * F * F:,} weights; a "
                        f"column's forecast reads its own window, but the matrix is whole): at "
                        f"most {most} columns at window {d.window} and horizon {d.horizon}; "
                        f"train the columns in groups (--columns a,b,...), or a shorter --window")
    if len(y) * F > 20_000 and checkpoint is None:   # minutes on long series: said first
        log(f"{main.path}: choosing the forecast on folds of {len(y):,} steps x {F} column(s)")
    if checkpoint is not None:
        c.per_column = checkpoint["model_config"].get("per_column", c.per_column)
        kinds = Transform.from_dict(checkpoint.get("transform")).kind
        transform, base, smooth, linear = kinds, c.base, None, None
        note = " (the run's choices, resumed)"
    elif c.per_column:
        transform, base, smooth, linear, note = choose_columns(
            y, split, d.window, d.horizon, m, d.transform, d.baseline, smoothing=c.history,
            names=main.names)
    else:
        transform, base, smooth, linear, note = choose(   # (a linear part only where the
            y, split, d.window, d.horizon, m, d.transform, d.baseline,   # model holds one)
            linear=c.linear and c.mode == "direct" and d.window > 0, smoothing=c.history)
    c.features, c.horizon = y.shape[1], d.horizon
    c.base, c.period, c.window = base, m, d.window
    model = Forecaster(c)
    with torch.no_grad():
        if model.ar is not None and linear is not None:
            model.fit_linear(*linear)
        if smooth is not None:
            model.set_smoothing(*smooth)
    task = ForecastTask(model, y, labels, main.names, d, split, m, Transform(transform))
    log(f"{main.path}: {len(y):,} steps of {main.names}; train {split[0]}, validation "
        f"{split[1] - split[0]}, test {len(y) - split[1]} (held-out tail); window {d.window}"
        f"{' (auto)' if chosen else ''}, horizon {d.horizon}, season {m} ({how})"
        + ("" if c.per_column else f"; transform {transform}, baseline {base}") + note)
    if not task.trainable:
        log(f"the GRU is not trained: the validation part holds {task.val_origins()} forecast "
            f"origin(s), fewer than the horizon {d.horizon}, too few to tell a trained GRU from "
            f"noise; the classical forecast is the model (a longer --val-fraction trains it)")
    return task
