"""Recurrent forecasting of a (multivariate) series: direct multi-step or autoregressive.

    h_t = RNN(z_t, h_{t-1})                      (B, W, H)   z: the standardised window
    direct:         ẑ_{W+k}  = b_{W+k} + (U h_W)_k         (B, K, F)   all K steps from one state
    autoregressive: ẑ_{t+1}  = b_{t+1} + V h_t             (B, F)      one step, fed back K times

In direct mode the RNN reads the window relative to its last value (z - z_W: a forecast that moves
with the level, as trending series need), and a linear autoregression over that relative window,
ẑ += A (z - z_W) + a, fitted in closed form (ridge) by the task on the training windows and then
frozen, carries the linear part of the forecast; the RNN learns what is not linear
(``linear``; as in Zeng et al. 2023, a linear model is a strong forecaster on small series).

Both predict a correction to a baseline forecast b (``residual``): the last observed value
(``base="last"``: b_{t+h} = z_t, the naive forecast) or the value one season of ``period`` m
steps before (``base="seasonal"``: b_{t+h} = z_{t+h-m⌈h/m⌉}, the seasonal-naive forecast) or
exponential smoothing with a damped trend and optional season run over the window (``base="ets"``,
direct mode: four parameters fitted by the task, :mod:`rnnkit.models.smoothing`), so an
untrained model (its RNN head starts at zero) is that baseline plus the linear part, and learns
what they miss (trend, the season's drift); the trainer scores it before the first step, so a
run whose training does not improve on it on validation keeps it.
Direct forecasting avoids compounding errors; autoregressive forecasting reaches any horizon
(Taieb et al. 2012 compare the two).
Shapes: B batch, W window, K horizon, F variables, H hidden, L layers, m season.
"""
from dataclasses import dataclass, field

import torch
from torch import nn

from rnnkit.config import (MAX_LABELS, MAX_LAYERS, MAX_STEPS, MAX_WIDTH, check, check_size,
                           recurrent_params)
from rnnkit.layers import LAYERS, fast_step
from rnnkit.layers.recurrent import task_states
from rnnkit.models.smoothing import smoothing_forecast

CELLS = LAYERS       # every registered cell by name: lstm, gru, rnn, indrnn, ... (live)
MODES = ("direct", "autoregressive")
BASES = ("last", "seasonal", "ets")


@dataclass
class ForecasterConfig:
    """The model's shape; stored in checkpoints so ``rnnkit forecast`` rebuilds the model alone."""
    # from the task: F variables; K steps predicted at once (direct) or trained on (autoregressive)
    features: int = field(default=1, metadata={"range": (1, MAX_LABELS)})
    horizon: int = field(default=1, metadata={"range": (1, MAX_STEPS)})
    mode: str = field(default="direct", metadata={
        "help": "direct (K steps from one state) or autoregressive (one step, fed back)",
        "choices": MODES})
    cell: str = field(default="gru", metadata={
        "help": "recurrent cell: lstm, gru, rnn or a registered one", "choices": CELLS})
    layers: int = field(default=2, metadata={"help": "stacked recurrent layers",
                                              "range": (1, MAX_LAYERS)})
    hidden: int = field(default=64, metadata={"help": "hidden size H of each layer",
                                               "range": (1, MAX_WIDTH)})
    dropout: float = field(default=0.0, metadata={
        "help": "dropout between recurrent layers (0: off)", "range": "[0, 1)"})
    residual: bool = field(default=True, metadata={
        "help": "predict a correction to the baseline (last value or last season)"})
    linear: bool = field(default=True, metadata={
        "help": "direct mode: fitted linear forecasters (ridge, smoothing) may be chosen"})
    # chosen by the task: the baseline, "last" (naive), "seasonal" or "ets" (exponential
    # smoothing, direct mode), and its season m
    base: str = field(default="last", metadata={"choices": BASES})
    period: int = field(default=1, metadata={"range": (1, MAX_STEPS)})
    # W of the linear autoregression; filled in by the task (0: none)
    window: int = field(default=0, metadata={"range": (0, MAX_STEPS)})
    relative: bool = True       # direct mode: the RNN reads z - z_W (checkpoints before: False)
    # direct mode: exponential smoothing over the whole history before the origin among the
    # candidates (its forecast, given to forward as ``hist``, enters with the weight ``share``);
    # checkpoints before it ran the smoothing over the window (LEGACY: False)
    history: bool = field(default=True, metadata={
        "help": "direct mode: exponential smoothing over the history among the candidates"})
    # the history smoothing's parameters refitted before each origin from the validation part's
    # end on (rnnkit.tasks.forecast_trained.history_part); checkpoints before it kept the
    # training part's (LEGACY: False)
    refit: bool = field(default=True, metadata={
        "help": "refit the smoothing before each origin after the validation part"})
    # direct mode, F > 1: each variable has its own classical forecast (the task chose its
    # transform, baseline, smoothing and linear part on that column alone): the smoothing's
    # parameters (F, 5) and share (F,), the linear part block-diagonal; set by the task
    # (checkpoints before it, and single series: one set for all variables)
    per_column: bool = False

    def __post_init__(self):
        check(self)
        if self.base == "ets" and self.mode != "direct":
            raise ValueError("base 'ets' (exponential smoothing) needs mode 'direct'")
        if self.base == "ets" and self.per_column and not self.history:   # (F, 5) parameters
            raise ValueError("base 'ets' per column needs history=True (the smoothing over the "
                             "whole history); without it, base 'ets' takes one smoothing for "
                             "every column")
        F, K, H = self.features, self.horizon, self.hidden
        out = K * F if self.mode == "direct" else F
        check_size(self, recurrent_params(self.cell, self.layers, F, H) + (H + 1) * out
                   + (self.window * F + 1) * out, ("features", "horizon", "window", "hidden",
                                                   "layers"))


class Forecaster(nn.Module):
    def __init__(self, config):
        super().__init__()
        c = self.config = config
        self.rnn = CELLS[c.cell](c.features, c.hidden, c.layers, batch_first=True,
                                 dropout=c.dropout if c.layers > 1 else 0.0)
        task_states(self.rnn, c.cell, "forecaster")
        out = c.horizon * c.features if c.mode == "direct" else c.features
        self.head = nn.Linear(c.hidden, out)
        self.ar = None
        cols = (c.features,) if c.per_column else ()
        if c.base == "ets" or c.history:   # [α, β, γ, φ, seasonal], set by set_smoothing
            self.register_buffer("smoothing",
                                 torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0]).repeat(*cols, 1))
        if c.history:   # the history smoothing's weight in the forecast, set by set_smoothing
            self.register_buffer("share", torch.zeros(cols))
        if c.linear and c.mode == "direct" and c.window > 0:   # fitted by fit_linear, then frozen
            self.ar = nn.Linear(c.window * c.features, out)
            nn.init.zeros_(self.ar.weight)
            nn.init.zeros_(self.ar.bias)
            self.ar.requires_grad_(False)
        # the RNN's part starts at zero: the untrained model IS the baseline plus the linear
        # part (what the task chose on validation), and training adds what they miss
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def fit_linear(self, weight, bias):
        """Set the linear autoregression: weight (K*F, W*F), bias (K*F,) from a ridge fit."""
        self.ar.weight.copy_(torch.as_tensor(weight, dtype=self.ar.weight.dtype))
        self.ar.bias.copy_(torch.as_tensor(bias, dtype=self.ar.bias.dtype))

    def set_smoothing(self, params, share=None):
        """Set the exponential smoothing's parameters [α, β, γ, φ, seasonal] (5,) (per column:
        (F, 5)) and, over the history, its weight in the forecast (a number, or (F,))."""
        self.smoothing.copy_(torch.as_tensor(params, dtype=self.smoothing.dtype))
        if share is not None:
            self.share.copy_(torch.as_tensor(share, dtype=self.share.dtype))

    def uses_history(self):
        """True where the forecast needs the history smoothing's forecast (``hist``)."""
        return self.config.history and bool((self.share != 0).any())

    def rnn_is_zero(self):
        """True while the recurrent part adds nothing (its output layer is zero, as at the
        start): the model is the baseline plus the linear part."""
        return not (self.head.weight.any() or self.head.bias.any())

    def seasonal(self):
        return self.config.residual and self.config.base == "seasonal" and self.config.period > 1

    def baseline(self, z, steps):
        """The baseline forecast of the ``steps`` values after each window z (B, W, F): the last
        value, the last season's values repeated, or exponential smoothing's; (B, steps, F)."""
        if self.config.residual and self.config.base == "ets" and self.config.history:
            return z[:, -1:].expand(-1, steps, -1)   # the smoothing enters in forward
        if self.config.residual and self.config.base == "ets":
            m, W = self.config.period, z.shape[1]
            if W < m:
                raise ValueError(f"exponential smoothing over a season of {m} needs a window of "
                                 f"at least {m}, got {W}")
            return smoothing_forecast(z, self.smoothing, m, steps).to(z.dtype)
        if not self.seasonal():
            return z[:, -1:].expand(-1, steps, -1)
        m, W = self.config.period, z.shape[1]
        if W < m:
            raise ValueError(f"a seasonal baseline needs a window of at least the season {m}, got {W}")
        return z[:, W - m + torch.arange(steps) % m]                          # (B, steps, F)

    def one_step_baseline(self, z):
        """b_{t+1} for every t of z (B, T, F): z_{t+1-m} where the window reaches back that far,
        else z_t; (B, T, F)."""
        m = self.config.period if self.seasonal() else 1
        if m == 1 or z.shape[1] < m:
            return z
        return torch.cat([z[:, :m - 1], z[:, :z.shape[1] - m + 1]], 1)

    def forward(self, z, hist=None):
        """z (B, W, F) -> direct: (B, K, F) the next K steps; autoregressive: (B, W, F) the
        one-step-ahead prediction after every step. ``hist`` (B, K, F): the smoothing's
        forecast over the whole history before each window's end (:meth:`uses_history`);
        direct: ẑ = baseline + share (hist - z_W) + linear part + GRU."""
        self.check_windows(z)
        W = self.config.window
        if self.ar is not None and z.shape[1] < W:   # the linear part reads the last W steps
            raise ValueError(f"this forecaster reads windows of {W} steps (B, {W}, F), got "
                             f"{z.shape[1]}")
        if self.config.mode == "direct":
            B, K, F = z.shape[0], self.config.horizon, self.config.features
            rel = z - z[:, -1:]                                               # (B, W, F)
            h, _ = self.rnn(rel if self.config.relative else z)               # (B, W, H)
            delta = self.head(h[:, -1]).view(B, K, F)                         # (B, K, F)
            if self.ar is not None:
                delta = delta + self.ar(rel[:, -self.config.window:].reshape(B, -1)).view(B, K, F)
            if hist is not None:                          # (given only where it is used)
                delta = delta + self.share * (hist.to(z.dtype) - z[:, -1:])
            elif not torch.compiler.is_exporting() and self.uses_history():   # (a check on
                # the weights' values, which torch.export cannot trace; its program was chosen
                # by the same check before)
                raise ValueError("this forecaster needs the history smoothing's forecast")
            return delta + (self.baseline(z, K) if self.config.residual else 0)
        h, _ = self.rnn(z)                                                    # (B, W, H)
        return self.head(h) + (self.one_step_baseline(z) if self.config.residual else 0)  # (B, W, F)

    def loss(self, z, target, hist=None):
        """Mean squared error in standardised units; target (B, K, F) follows the window z."""
        if self.config.mode == "direct":
            return torch.mean((self(z, hist) - target) ** 2)
        K = target.shape[1]
        full = torch.cat([z, target[:, :-1]], 1)                              # (B, W+K-1, F)
        pred = self(full)[:, -K:]                                             # (B, K, F)
        return torch.mean((pred - target) ** 2)

    @torch.no_grad()
    def forecast(self, z, steps, hist=None):
        """The next ``steps`` values after each window z (B, W, F): (B, steps, F). Beyond one
        horizon the direct model is fed its own forecasts block by block (``hist``: the history
        smoothing's forecast of all ``steps``, (B, steps, F); fed its own forecasts, the
        smoothing goes on with the same forecast)."""
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        self.check_windows(z)
        was_training = self.training
        self.eval()   # dropout off, as sampling and beam search have it
        try:
            return self._forecast(z, steps, hist)
        finally:
            self.train(was_training)

    def check_windows(self, z):
        F = self.config.features
        if z.dim() != 3 or z.shape[2] != F:
            raise ValueError(f"expected windows z of shape (B, W, {F}) (batch, steps, "
                             f"features), got {tuple(z.shape)}")

    def _forecast(self, z, steps, hist):
        if self.config.mode == "direct":
            out, K = [], self.config.horizon
            while sum(o.shape[1] for o in out) < steps:
                i = sum(o.shape[1] for o in out)
                h = None if hist is None else hist[:, i:i + K]
                if h is not None and h.shape[1] < K:   # the last block: past ``steps``
                    h = torch.cat([h, h[:, -1:].expand(-1, K - h.shape[1], -1)], 1)
                block = self(z, h)                                            # (B, K, F)
                out.append(block)
                z = torch.cat([z, block], 1)[:, -z.shape[1]:]
            return torch.cat(out, 1)[:, :steps]
        h, state = self.rnn(z)                                                # (B, W, H)
        m = self.config.period if self.seasonal() else 1
        past, out = z[:, -m:], []                                             # (B, m, F)
        for _ in range(steps):
            last = self.head(h[:, -1]) + (past[:, 0] if self.config.residual else 0)  # (B, F)
            out.append(last)
            past = torch.cat([past[:, 1:], last[:, None]], 1)
            h, state = fast_step.step(self.rnn, last, state)                  # (B, H)
            h = h[:, None]                                                    # (B, 1, H)
        return torch.stack(out, 1)                                            # (B, steps, F)
