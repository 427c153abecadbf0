"""Per-forward extras of one layer-direction that live inside the time loop (all off by default).

The layer draws the random masks once per forward (so the forward and the backward see the same
ones) and hands them to the BPTT node:

- ``rec_mask`` (B, H): recurrent (variational) dropout on h_{t-1} where it enters the recurrent
  matmul, sampled once per sequence and reused at every step (Gal & Ghahramani 2016); already
  scaled by 1/(1-p).
- ``zoneout``: one entry per state (h, and c for LSTM), each None or (N, H): the probability-like
  weight m of keeping the previous value, h_t = m ⊙ h_{t-1} + (1 - m) ⊙ h̃_t (Krueger et al.
  2016). Training: Bernoulli(p) masks per unit and step; evaluation: m = p (the expectation).
- ``keep`` (N, 1): 1, or 0 where the state entering a token's step is reset (streaming with
  per-sample resets); a reset state restarts from the layer's initial value (zeros, or the
  learned one), passed to the node as a differentiable input.
- ``return_all``: also return every step's cell state (differentiable) and gate activations
  (detached), for inspection and per-step losses.
"""
from dataclasses import dataclass

import torch


@dataclass
class StepOptions:
    rec_mask: torch.Tensor = None
    zoneout: tuple = None
    keep: torch.Tensor = None
    return_all: bool = False

    @property
    def zoned(self):
        return self.zoneout is not None and any(z is not None for z in self.zoneout)


NO_OPTIONS = StepOptions()
