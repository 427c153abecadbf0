"""A trained forecaster: rolling-origin scores with the naive and seasonal-naive baselines,
forecasts from a checkpoint (:class:`Forecast`), and a file that continues the series scored
(``rnnkit eval``). Shapes: N steps, F variables, W window, K horizon, B batch.
"""
import numpy as np
import torch

from rnnkit.data import DataError
from rnnkit.data.series import Scaler, Transform, read_series_file
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.models.smoothing import history_forecast, start_length
from rnnkit.train.checkpoint import built_from, load_checkpoint

LEGACY = {"relative": False, "window": 0, "history": False}   # checkpoints without these fields


def baselines(y, t, K, m):
    """Naive and seasonal-naive forecasts of y[t:t+K] from y[:t]: each (K, F)."""
    h = np.arange(K)
    return np.repeat(y[t - 1:t], K, 0), y[t + h - m * (h // m + 1)]


def score(pred, truth, scale):
    """MAE, RMSE and MASE of forecasts against truth (same shapes), in the data's units."""
    err = pred - truth
    mae = float(np.abs(err).mean())
    return {"mae": mae, "rmse": float(np.sqrt((err ** 2).mean())), "mase": mae / scale}


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
