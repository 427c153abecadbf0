"""Polyak averaging: an exponential moving average of a model's weights, used for validation and
prediction while training moves the weights themselves (Polyak & Juditsky 1992; the
``ExponentialMovingAverage`` of TensorFlow, with its warm-up of the decay).

    a_0 = θ_0,    a_n = β_n a_{n-1} + (1 - β_n) θ_n,    β_n = min(β, (1 + n) / (10 + n))

θ_n is the weights after n optimiser steps. The warm-up makes the first averages short (β_1 =
0.18), so an early validation does not score a mix with the random start. The average is held as
buffers of the module that owns it, so checkpoints (best.pt) hold it and a model loaded for
prediction uses it. One optimiser step is a small change of each weight; the average over the
last ~1/(1-β) steps is a point nearer the middle of the valley that the noisy steps move around.
"""
from contextlib import contextmanager

import torch
from torch import nn


class WeightAverage(nn.Module):
    """The moving average of the parameters of ``module`` (given at construction, in
    ``module.named_parameters()`` order), as buffers; ``decay`` is β."""

    def __init__(self, module, decay):
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.names = []
        for name, p in module.named_parameters():
            self.names.append(name.replace(".", "_"))
            self.register_buffer(self.names[-1], p.detach().clone())
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def averages(self):
        return [getattr(self, n) for n in self.names]

    @torch.no_grad()
    def update(self, params):
        """Fold the current weights (``params``, in the order given at construction) in."""
        self.updates += 1
        n = int(self.updates)
        beta = min(self.decay, (1 + n) / (10 + n))
        for a, p in zip(self.averages(), params, strict=True):
            a.lerp_(p.detach(), 1.0 - beta)

    @contextmanager
    def swapped_in(self, params):
        """Within the block each parameter holds its average (the tensors are swapped, nothing
        is copied); the trained weights come back at its end, also on an error."""
        params = list(params)
        trained = [p.data for p in params]
        try:
            for p, a in zip(params, self.averages(), strict=True):
                p.data = a
            yield
        finally:
            for p, t in zip(params, trained):
                p.data = t
