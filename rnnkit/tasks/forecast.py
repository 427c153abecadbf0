"""Forecasting as a trainer task: windows over a time split, train-only scaling, baselines.

The series is split in time: the first part trains, the next validates (model selection), the
last ``test_fraction`` is the held-out tail. Scores are rolling-origin: from every origin in a
part, forecast the next K steps from the W before it and compare in the data's own units.
MASE divides the MAE by the in-sample MAE of the seasonal-naive forecast on the training part
(Hyndman & Koehler 2006). Shapes: N steps, F variables, W window, K horizon, B batch.
"""
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from rnnkit.data import DataError, resolve
from rnnkit.data.series import Scaler, read_series, split_series
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.train.checkpoint import load_checkpoint

SEASONS = {"sunspots": 11, "sunspots-monthly": 12, "co2": 12}   # named sets: cycle length


@dataclass
class ForecastData:
    data: str = field(default="sunspots", metadata={
        "help": "data set name (rnnkit data list) or a CSV file with a header row"})
    columns: str = field(default="", metadata={
        "help": "value columns to forecast, comma-separated (empty: the last column)"})
    window: int = field(default=48, metadata={"help": "past steps W the model sees"})
    horizon: int = field(default=12, metadata={
        "help": "steps K ahead that are forecast (trained on and scored)"})
    season: int = field(default=0, metadata={
        "help": "seasonal-naive period m for the baseline and MASE (0: a named set's, else 1)"})
    batch: int = field(default=32, metadata={"help": "windows per training batch"})
    test_fraction: float = field(default=0.1, metadata={
        "help": "fraction of the series held out as the test tail"})
    val_fraction: float = field(default=0.1, metadata={
        "help": "fraction of the series, before the test tail, for validation"})


def baselines(y, t, K, m):
    """Naive and seasonal-naive forecasts of y[t:t+K] from y[:t]: each (K, F)."""
    h = np.arange(K)
    return np.repeat(y[t - 1:t], K, 0), y[t + h - m * (h // m + 1)]


def score(pred, truth, scale):
    """MAE, RMSE and MASE of forecasts against truth (same shapes), in the data's units."""
    err = pred - truth
    mae = float(np.abs(err).mean())
    return {"mae": mae, "rmse": float(np.sqrt((err ** 2).mean())), "mase": mae / scale}


class ForecastTask:
    unit = "window"
    loss_label = "MSE (standardised units)"

    def __init__(self, model, series, labels, names, data_config):
        d = self.data_config = data_config
        self.model, self.y, self.labels, self.names = model, series, labels, names   # y (N, F)
        self.train_end, self.val_end = split_series(len(series), d.test_fraction, d.val_fraction)
        self.season = d.season or SEASONS.get(d.data, 1)
        W, K, m = d.window, d.horizon, self.season
        if self.train_end < W + K:
            raise DataError(f"{d.data}: the training part has {self.train_end} steps, fewer than "
                            f"window {W} + horizon {K}; use a shorter --window/--horizon or a "
                            f"longer series ({len(series)} steps in all)")
        if len(series) - self.val_end < K or self.val_end - self.train_end < K:
            raise DataError(f"{d.data}: validation and test parts ({self.val_end - self.train_end}"
                            f" and {len(series) - self.val_end} steps) must each hold the horizon {K}")
        self.scaler = Scaler.fit(series[:self.train_end])
        self.z = torch.from_numpy(self.scaler.transform(series))              # (N, F)
        train = series[:self.train_end]
        self.mase_scale = float(np.abs(train[m:] - train[:-m]).mean()) or 1.0

    def windows(self, origins):
        """Inputs (B, W, F) and targets (B, K, F) for forecasts starting at each origin."""
        W, K = self.data_config.window, self.data_config.horizon
        x = torch.stack([self.z[t - W:t] for t in origins])
        return x, torch.stack([self.z[t:t + K] for t in origins])

    def train_batch(self, step):
        g = torch.Generator().manual_seed(step)
        W, K = self.data_config.window, self.data_config.horizon
        origins = torch.randint(W, self.train_end - K + 1, (self.data_config.batch,), generator=g)
        return self.windows(origins.tolist())

    def loss(self, batch):
        return self.model.loss(*batch), len(batch[0])

    def origins(self, start, end):
        W, K = self.data_config.window, self.data_config.horizon
        return list(range(max(start, W), end - K + 1))

    def evaluate(self):
        x, target = self.windows(self.origins(self.train_end, self.val_end))
        return {"val_loss": float(self.model.loss(x, target)), **self.metrics(self.train_end,
                                                                               self.val_end, "val")}

    def metrics(self, start, end, prefix):
        """Rolling-origin scores of the model and both baselines over y[start:end]."""
        K, origins = self.data_config.horizon, self.origins(start, end)
        x, _ = self.windows(origins)
        pred = self.scaler.inverse(self.model.forecast(x, K).numpy())        # (B, K, F)
        truth = np.stack([self.y[t:t + K] for t in origins])                  # (B, K, F)
        naive, seasonal = zip(*(baselines(self.y, t, K, self.season) for t in origins))
        out = {}
        for name, p in (("rnn", pred), ("naive", np.stack(naive)), ("seasonal_naive", np.stack(seasonal))):
            for k, v in score(p, truth, self.mase_scale).items():
                out[f"{prefix}_{k}" if name == "rnn" else f"{prefix}_{name}_{k}"] = v
        return out

    def test_metrics(self):
        return {**self.metrics(self.val_end, len(self.y), "test"), "season": self.season,
                "test_origins": len(self.origins(self.val_end, len(self.y)))}

    def checkpoint_extras(self):
        return {"kind": "forecast", "model_config": asdict(self.model.config),
                "data_config": asdict(self.data_config), "scaler": self.scaler.to_dict(),
                "series": self.y.tolist(), "labels": list(self.labels), "names": list(self.names),
                "split": [self.train_end, self.val_end], "season": self.season}


def build_forecast_task(data_config, model_config, log=print):
    """Read the series, check it is long enough, scale it on the training part, build the model."""
    path = resolve(data_config.data)
    y, names, labels = read_series(path, data_config.columns)
    model_config.features, model_config.horizon = y.shape[1], data_config.horizon
    task = ForecastTask(Forecaster(model_config), y, labels, names, data_config)
    log(f"{path}: {len(y):,} steps of {names}; train {task.train_end}, validation "
        f"{task.val_end - task.train_end}, test {len(y) - task.val_end} (held-out tail); "
        f"window {data_config.window}, horizon {data_config.horizon}, season {task.season}")
    return task


class Forecast:
    """A trained forecaster with its series: forecasts from any point in the series, in its units."""

    def __init__(self, model, scaler, series, labels, names, split, window):
        self.model, self.scaler, self.y = model.eval(), scaler, np.asarray(series, dtype=np.float32)
        self.labels, self.names, self.split, self.window = labels, names, split, window

    @classmethod
    def from_task(cls, task):
        return cls(task.model, task.scaler, task.y, task.labels, task.names,
                   [task.train_end, task.val_end], task.data_config.window)

    @classmethod
    def load(cls, path):
        ckpt = load_checkpoint(path, kind="forecast")
        model = Forecaster(ForecasterConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
        return cls(model, Scaler.from_dict(ckpt["scaler"]), ckpt["series"], ckpt["labels"],
                   ckpt["names"], ckpt["split"], ckpt["data_config"]["window"])

    def forecast(self, steps, origin=None):
        """(steps, F) forecast of the steps after y[:origin] (default: the held-out tail's start)."""
        origin = self.split[1] if origin is None else origin
        if not self.window <= origin <= len(self.y):
            raise DataError(f"forecast origin must lie in [{self.window}, {len(self.y)}], got {origin}")
        z = torch.from_numpy(self.scaler.transform(self.y[origin - self.window:origin]))[None]
        return self.scaler.inverse(self.model.forecast(z, steps)[0].numpy())
