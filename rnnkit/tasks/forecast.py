"""Forecasting as a trainer task: windows over a time split, train-only scaling, baselines.

The series is split in time: the first part trains, the next validates (model selection), the
last ``test_fraction`` is the held-out tail (or the parts come from ``--val-data``/``--test-data``
files that continue the series). The season m comes from the dates (monthly 12, quarterly 4, ...)
unless given. Where set to ``auto``, the transform (log or none), the model's baseline (the last
value, the last season's, or exponential smoothing with a damped trend) and its linear part (none
or a ridge fit) are the ones with the lowest error over rolling origins in folds before the test
part (:mod:`rnnkit.tasks.forecast_choice`).
Scores are rolling-origin: from every origin in a part, forecast the next K steps from the W
before it and compare in the data's own units. MASE divides the MAE by the in-sample MAE of the
seasonal-naive forecast on the training part (Hyndman & Koehler 2006).
A model whose recurrent part has been trained is kept (best.pt) over the untrained one (the chosen
baseline plus the linear part) only where its validation MSE is lower by more than ``rnn_margin``:
its ``val_loss`` is the validation MSE × (1 + rnn_margin). A validation part of a few overlapping
windows is noisy, and on small series a GRU that edges ahead there often loses on later data: on
the benchmark's 32 tuning series, of the 8 GRUs (200 steps) that lowered the validation MSE by
19-56%, 4 were worse on test, the worst (US unemployment) three times worse. The default 1.5
keeps a GRU only where it cuts the validation MSE below 40%.
Shapes: N steps, F variables, W window, K horizon, B batch.
"""
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from rnnkit.config import MAX_BATCH, MAX_STEPS, ConfigError, check, check_fractions
from rnnkit.data import DataError, resolve
from rnnkit.data.series import Scaler, Transform, infer_season, read_series_file, split_series
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.models.smoothing import history_forecast, start_length
from rnnkit.tasks.forecast_choice import choose
from rnnkit.train import distributed
from rnnkit.train.checkpoint import built_from, load_checkpoint

SEASONS = {"sunspots": 11, "sunspots-monthly": 12, "co2": 12}   # named sets: cycle length
LEGACY = {"relative": False, "window": 0, "history": False}   # checkpoints without these fields
CHOICES = {"transform": ("auto", "none", "log"), "baseline": ("auto", "last", "seasonal", "ets")}


@dataclass
class ForecastData:
    data: str = field(default="sunspots", metadata={
        "help": "data set name (rnnkit data list) or a CSV file with a header row"})
    columns: str = field(default="", metadata={
        "help": "value columns to forecast, comma-separated (empty: the last column)"})
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


def baselines(y, t, K, m):
    """Naive and seasonal-naive forecasts of y[t:t+K] from y[:t]: each (K, F)."""
    h = np.arange(K)
    return np.repeat(y[t - 1:t], K, 0), y[t + h - m * (h // m + 1)]


def score(pred, truth, scale):
    """MAE, RMSE and MASE of forecasts against truth (same shapes), in the data's units."""
    err = pred - truth
    mae = float(np.abs(err).mean())
    return {"mae": mae, "rmse": float(np.sqrt((err ** 2).mean())), "mase": mae / scale}


def warn(msg):
    print(f"rnnkit: warning: {msg}", file=sys.stderr)


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


def mase_scale(train, m):
    return float(np.abs(train[m:] - train[:-m]).mean()) or 1.0


class ForecastTask:
    unit = "window"
    loss_label = "MSE (standardised; ×(1+rnn_margin) once trained)"
    eval_at_start = True   # step 0 is the chosen baseline + linear part: best.pt may keep it

    def __init__(self, model, series, labels, names, data_config, split, season, transform):
        d = self.data_config = data_config
        self.model, self.y, self.labels, self.names = model, series, labels, names   # y (N, F)
        self.train_end, self.val_end = split
        self.season, self.transform = season, transform
        self.scaler = Scaler.fit(transform.forward(series[:self.train_end]))
        self.z = torch.from_numpy(self.scaler.transform(transform.forward(series)))  # (N, F)
        self.mase_scale = mase_scale(series[:self.train_end], season)
        self.hist = None   # {origin: the history smoothing's forecast (K, F)}, filled on use

    def windows(self, origins):
        """Inputs (B, W, F), targets (B, K, F) and the history smoothing's forecasts (B, K, F)
        or None, for forecasts starting at each origin."""
        W, K = self.data_config.window, self.data_config.horizon
        x = torch.stack([self.z[t - W:t] for t in origins])
        hist = None
        if self.model.uses_history():
            if self.hist is None:   # every origin's, from one pass over the series
                self.hist = dict(zip(*history_part(self.model, self.z, K)))
            hist = torch.stack([self.hist[t] for t in origins])
        return x, torch.stack([self.z[t:t + K] for t in origins]), hist

    def train_batch(self, step):
        g = torch.Generator().manual_seed(step)
        W, K = self.data_config.window, self.data_config.horizon
        origins = torch.randint(W, self.train_end - K + 1, (self.data_config.batch,), generator=g)
        return self.windows(distributed.shard(origins.tolist()))   # a data-parallel rank's share

    def loss(self, batch):
        return self.model.loss(*batch), len(batch[0])

    def origins(self, start, end):
        W, K = self.data_config.window, self.data_config.horizon
        return list(range(max(start, W, self.season), end - K + 1))

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

    def metrics(self, start, end, prefix):
        """Rolling-origin scores of the model and both baselines over y[start:end]."""
        d = self.data_config
        return rolling_scores(self.predict, self.y, start, end, d.window, d.horizon, self.season,
                              self.mase_scale, prefix)[0]

    def test_metrics(self):
        return {**self.metrics(self.val_end, len(self.y), "test"), "season": self.season,
                "test_origins": len(self.origins(self.val_end, len(self.y))),
                "transform": self.transform.kind, "baseline": self.model.config.base}

    def checkpoint_extras(self):
        return {"kind": "forecast", "model_config": asdict(self.model.config),
                "data_config": asdict(self.data_config), "scaler": self.scaler.to_dict(),
                "transform": self.transform.to_dict(),
                "series": self.y.tolist(), "labels": list(self.labels), "names": list(self.names),
                "split": [self.train_end, self.val_end], "season": self.season}


def read_parts(d, log):
    """The series of --data, then of --val-data and --test-data where given: (SeriesFile,
    values (N, F), labels, split (train_end, val_end))."""
    main = read_series_file(resolve(d.data), d.columns)
    parts = [read_series_file(p, d.columns) for p in (d.val_data, d.test_data) if p]
    for p in parts:
        if p.names != main.names:
            raise DataError(f"{p.path}: columns {p.names}, expected {main.names} like {main.path}")
    y = np.concatenate([main.values] + [p.values for p in parts])
    labels = main.labels + [lab for p in parts for lab in p.labels]
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
    if d.season:
        m, how = d.season, "given"
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
        raise DataError(f"{path}: validation and test parts ({val_end - train_end}"
                        f" and {n - val_end} steps) must each hold the horizon {K}")


def build_forecast_task(data_config, model_config, log=print):
    """Read the series, find its season, choose the transform, baseline and linear part on
    folds before the test part, scale it on the training part, build the model."""
    d = data_config
    main, y, labels, split = read_parts(d, log)
    m, how = resolve_season(d, main, split[0], log)
    chosen = not d.window
    if chosen:   # stored resolved, so a resumed or loaded run uses the same window
        d.window = auto_window(split[0], d.horizon, m)
    check_lengths(d, len(y), split, main.path)
    if d.transform == "log" and (y <= 0).any():
        raise DataError(f"{main.path}: --transform log needs a positive series; it holds "
                        f"{int((y <= 0).sum())} value(s) <= 0")
    c = model_config
    c.history = c.history and c.linear and c.mode == "direct" and c.residual   # smoothing
    transform, base, smooth, linear, note = choose(
        y, split, d.window, d.horizon, m, d.transform, d.baseline, linear=c.linear,
        smoothing=c.history)
    c.features, c.horizon = y.shape[1], d.horizon
    c.base, c.period, c.window = base, m, d.window
    model = Forecaster(c)
    with torch.no_grad():
        if model.ar is not None:
            model.fit_linear(*linear)
        if smooth is not None:
            model.set_smoothing(*smooth)
    task = ForecastTask(model, y, labels, main.names, d, split, m, Transform(transform))
    log(f"{main.path}: {len(y):,} steps of {main.names}; train {split[0]}, validation "
        f"{split[1] - split[0]}, test {len(y) - split[1]} (held-out tail); window {d.window}"
        f"{' (auto)' if chosen else ''}, horizon {d.horizon}, season {m} ({how}); transform "
        f"{transform}, baseline {base}{note}")
    return task


class Forecast:
    """A trained forecaster with its series: forecasts from any point in the series, in its units."""

    def __init__(self, model, scaler, series, labels, names, split, window, transform=None,
                 season=1):
        self.model, self.scaler, self.y = model.eval(), scaler, np.asarray(series, dtype=np.float32)
        self.labels, self.names, self.split, self.window = labels, names, split, window
        self.transform, self.season = transform or Transform("none"), season

    @classmethod
    def from_task(cls, task):
        return cls(task.model, task.scaler, task.y, task.labels, task.names,
                   [task.train_end, task.val_end], task.data_config.window, task.transform,
                   task.season)

    @classmethod
    def load(cls, path):
        ckpt = load_checkpoint(path, kind="forecast")
        with built_from(path):
            model = Forecaster(ForecasterConfig(**{**LEGACY, **ckpt["model_config"]}))
            model.load_state_dict(ckpt["model"])
            return cls(model, Scaler.from_dict(ckpt["scaler"]), ckpt["series"], ckpt["labels"],
                       ckpt["names"], ckpt["split"], ckpt["data_config"]["window"],
                       Transform.from_dict(ckpt.get("transform")), ckpt.get("season", 1))

    def predict(self, y, origins, steps):
        """Forecasts (B, steps, F) of y[t:t+steps] from the window before each origin t."""
        z = torch.from_numpy(self.scaler.transform(self.transform.forward(y)))
        x = torch.stack([z[t - self.window:t] for t in origins]).float()      # (B, W, F)
        hist = None
        if self.model.uses_history():
            hist = history_part(self.model, z, steps, origins)[1]            # (B, steps, F)
        z = self.model.forecast(x, steps, hist).numpy()
        return self.transform.inverse(self.scaler.inverse(z))

    def forecast(self, steps, origin=None):
        """(steps, F) forecast of the steps after y[:origin] (default: the held-out tail's start)."""
        origin = self.split[1] if origin is None else origin
        if not self.window <= origin <= len(self.y):
            raise DataError(f"forecast origin must lie in [{self.window}, {len(self.y)}], got {origin}")
        return self.predict(self.y, [origin], steps)[0]


def history_part(model, z, steps, origins=None):
    """(origins, forecasts (B, steps, F)) of the model's smoothing run over the whole standardised
    series z (N, F) before each origin (default: every origin from the first the smoothing can
    start at to N)."""
    m = model.config.period
    if origins is None:
        origins = list(range(start_length(len(z), m), len(z) + 1))
    part = history_forecast(z.double(), model.smoothing.double(), m, steps, list(origins))
    return list(origins), part.to(torch.float32)


def evaluate_file(run, path, **options):
    """Rolling-origin scores of a trained forecaster on a CSV file that continues its series (the
    same columns): every origin in the file, the stored series before it as context. Returns
    mae, rmse, mase and the naive and seasonal-naive baselines' figures, in the data's units."""
    f = Forecast.load(run)
    part = read_series_file(path, ",".join(f.names))
    y = np.concatenate([f.y, part.values])                                    # (N, F)
    if f.transform.kind == "log" and (part.values <= 0).any():
        i = int(np.nonzero((part.values <= 0).any(1))[0][0])
        raise DataError(f"{path}:{part.lines[i]}: a value <= 0 in a series forecast on the log scale")
    K, start = f.model.config.horizon, len(f.y)
    if len(part.values) < K:
        raise DataError(f"{path}: {len(part.values)} rows, fewer than the horizon {K}")
    scores, n = rolling_scores(lambda o: f.predict(y, o, K), y, start, len(y), f.window, K,
                               f.season, mase_scale(f.y[:f.split[0]], f.season), "x")
    return {**{k[2:]: v for k, v in scores.items()}, "origins": float(n), "file": str(path),
            "kind": "forecast", "size": len(part.values)}
