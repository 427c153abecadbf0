"""Recurrent forecasting of a (multivariate) series: direct multi-step or autoregressive.

    h_t = RNN(z_t, h_{t-1})                      (B, W, H)   z: the standardised window
    direct:         ẑ_{W+1..W+K} = z_W + U h_W             (B, K, F)   all K steps from one state
    autoregressive: ẑ_{t+1}      = z_t + V h_t             (B, F)      one step, fed back K times

Both predict the change from the last observed value (``residual``), so an untrained model starts
at the naive forecast. Direct forecasting avoids compounding errors; autoregressive forecasting
reaches any horizon (Taieb et al. 2012 compare the two).
Shapes: B batch, W window, K horizon, F variables, H hidden, L layers.
"""
from dataclasses import dataclass, field

import torch
from torch import nn

from rnnkit.layers import GRU, LSTM, RNN

CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
MODES = ("direct", "autoregressive")


@dataclass
class ForecasterConfig:
    """The model's shape; stored in checkpoints so ``rnnkit forecast`` rebuilds the model alone."""
    features: int = 1           # F; filled in from the series
    horizon: int = 1            # K: steps predicted at once (direct) or trained on (autoregressive)
    mode: str = field(default="direct", metadata={
        "help": "direct (K steps from one state) or autoregressive (one step, fed back)"})
    cell: str = field(default="gru", metadata={"help": "recurrent cell: lstm, gru or rnn"})
    layers: int = field(default=2, metadata={"help": "stacked recurrent layers"})
    hidden: int = field(default=64, metadata={"help": "hidden size H of each layer"})
    dropout: float = field(default=0.0, metadata={
        "help": "dropout between recurrent layers (0: off)"})
    residual: bool = field(default=True, metadata={
        "help": "predict the change from the last observed value"})

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {self.mode!r}")
        for name in ("features", "horizon", "layers", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"ForecasterConfig.{name} must be >= 1, got {getattr(self, name)}")


class Forecaster(nn.Module):
    def __init__(self, config):
        super().__init__()
        c = self.config = config
        self.rnn = CELLS[c.cell](c.features, c.hidden, c.layers, batch_first=True,
                                 dropout=c.dropout if c.layers > 1 else 0.0)
        out = c.horizon * c.features if c.mode == "direct" else c.features
        self.head = nn.Linear(c.hidden, out)

    def forward(self, z):
        """z (B, W, F) -> direct: (B, K, F) the next K steps; autoregressive: (B, W, F) the
        one-step-ahead prediction after every step."""
        h, _ = self.rnn(z)                                                    # (B, W, H)
        if self.config.mode == "direct":
            B, F = z.shape[0], self.config.features
            delta = self.head(h[:, -1]).view(B, self.config.horizon, F)       # (B, K, F)
            return delta + (z[:, -1:] if self.config.residual else 0)
        return self.head(h) + (z if self.config.residual else 0)              # (B, W, F)

    def loss(self, z, target):
        """Mean squared error in standardised units; target (B, K, F) follows the window z."""
        if self.config.mode == "direct":
            return torch.mean((self(z) - target) ** 2)
        K = target.shape[1]
        full = torch.cat([z, target[:, :-1]], 1)                              # (B, W+K-1, F)
        pred = self(full)[:, -K:]                                             # (B, K, F)
        return torch.mean((pred - target) ** 2)

    @torch.no_grad()
    def forecast(self, z, steps):
        """The next ``steps`` values after each window z (B, W, F): (B, steps, F). Beyond one
        horizon the direct model is fed its own forecasts block by block."""
        if self.config.mode == "direct":
            out = []
            while sum(o.shape[1] for o in out) < steps:
                block = self(z)                                               # (B, K, F)
                out.append(block)
                z = torch.cat([z, block], 1)[:, -z.shape[1]:]
            return torch.cat(out, 1)[:, :steps]
        h, state = self.rnn(z)                                                # (B, W, H)
        last, out = z[:, -1], []
        for _ in range(steps):
            last = self.head(h[:, -1]) + (last if self.config.residual else 0)  # (B, F)
            out.append(last)
            h, state = self.rnn(last[:, None], state)                         # (B, 1, H)
        return torch.stack(out, 1)                                            # (B, steps, F)
