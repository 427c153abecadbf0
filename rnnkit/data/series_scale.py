"""A series' time split, its variance-stabilising transform and its train-only standardisation.

Shapes: N time steps, F variables.
"""
import numpy as np


def split_series(n, test_fraction, val_fraction):
    """(train_end, val_end): steps [0, train_end) train, [train_end, val_end) validate, rest test."""
    n_test = max(1, round(n * test_fraction))
    n_val = max(1, round(n * val_fraction))
    return n - n_test - n_val, n - n_test


class Scaler:
    """Per-variable standardisation, fitted on the training part only (no look-ahead)."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float32)                        # (F,)
        self.std = np.asarray(std, dtype=np.float32)                          # (F,)

    @classmethod
    def fit(cls, train):
        train = np.asarray(train, dtype=np.float64)    # float32 squares overflow from 1.8e19
        std = train.std(0)
        return cls(train.mean(0), np.where(std > 0, std, 1.0))

    def transform(self, x):
        """Standardised ``x``, computed in float64 (no overflow for any finite float32 value)
        and returned in ``x``'s float dtype."""
        x = np.asarray(x)
        z = (x.astype(np.float64) - self.mean) / self.std
        return z.astype(np.result_type(x.dtype, np.float32))

    def inverse(self, z):
        return z * self.std + self.mean

    def to_dict(self):
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d):
        return cls(d["mean"], d["std"])


TRANSFORMS = ("none", "log")


class Transform:
    """A variance-stabilising transform applied before scaling: ``log`` turns multiplicative
    seasonality and growth into additive ones (positive series only); ``none`` is the identity.
    ``kind`` is one for every column, or a list of one per column (y (N, F): F kinds)."""

    def __init__(self, kind="none"):
        kinds = [kind] if isinstance(kind, str) else list(kind)
        bad = [k for k in kinds if k not in TRANSFORMS]
        if bad or not kinds:
            raise ValueError(f"transform must be one of {list(TRANSFORMS)}, got {kind!r}")
        self.kind = kind if isinstance(kind, str) else kinds

    def logged(self):
        """Whether the log is taken: a bool, or a (F,) mask for per-column kinds."""
        if isinstance(self.kind, str):
            return self.kind == "log"
        return np.array([k == "log" for k in self.kind])

    def forward(self, y):
        mask = self.logged()
        if isinstance(mask, np.ndarray):
            return np.where(mask, np.log(np.where(mask, y, 1)), y)
        return np.log(y) if mask else y

    def inverse(self, x):
        mask = self.logged()
        if isinstance(mask, np.ndarray):
            return np.where(mask, np.exp(np.where(mask, x, 0)), x)
        return np.exp(x) if mask else x

    def to_dict(self):
        return {"kind": self.kind}

    @classmethod
    def from_dict(cls, d):
        return cls((d or {}).get("kind", "none"))
