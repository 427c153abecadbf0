"""rnnkit's options beyond torch.nn (all off by default, so the defaults are torch.nn exactly).

layer_norm          layer normalisation of the gate pre-activations (both halves) and, for LSTM,
                    of the cell state before its tanh (Ba et al. 2016); learnable gain and bias
recurrent_dropout   dropout on h_{t-1} where it enters the recurrent matmul, one mask per sequence
                    reused at every step (Gal & Ghahramani 2016)
input_dropout       dropout on x_t, one mask per sequence reused at every step (ditto)
zoneout             keep each unit's previous value with probability p (Krueger et al. 2016);
                    a float, or (p_h, p_c) for LSTM; at evaluation the expectation
weight_dropout      DropConnect on W_hh, one mask per forward (Merity et al. 2017)
learn_init          learnable initial states (used where hx is None, and after a reset)
return_sequences    "last" (torch.nn's outputs) or "all": also every layer's per-step states and
                    gate activations
"""
import numbers
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from rnnkit.bptt.options import StepOptions
from rnnkit.config import ConfigError, check


def _prob(name, p):
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real) or not 0 <= p < 1:
        raise ConfigError(f"{name} must be a probability in [0, 1), got {p!r}")
    return float(p)


def _flag(name, v):
    """``v`` as a bool where it is one (or 0 / 1): a string such as "no" is refused, not taken
    as true."""
    if isinstance(v, (bool, int, np.bool_)) and v in (0, 1):
        return bool(v)
    raise ConfigError(f"{name} must be True or False, got {v!r}")


PROBABILITY = {"range": "[0, 1)"}


@dataclass
class LayerOptions:
    layer_norm: bool = False
    recurrent_dropout: float = field(default=0.0, metadata=PROBABILITY)
    input_dropout: float = field(default=0.0, metadata=PROBABILITY)
    zoneout: tuple = (0.0, 0.0)        # one probability per state, checked by build
    weight_dropout: float = field(default=0.0, metadata=PROBABILITY)
    learn_init: bool = False
    return_sequences: str = field(default="last", metadata={"choices": ("last", "all")})

    def __post_init__(self):
        check(self)

    @classmethod
    def build(cls, n_states, layer_norm=False, recurrent_dropout=0.0, input_dropout=0.0,
              zoneout=0.0, weight_dropout=0.0, learn_init=False, return_sequences="last"):
        z = tuple(zoneout) if isinstance(zoneout, (tuple, list)) else (zoneout,) * n_states
        if len(z) != n_states:
            raise ConfigError(f"zoneout takes one probability per state ({n_states}), got {zoneout!r}")
        return cls(_flag("layer_norm", layer_norm), _prob("recurrent_dropout", recurrent_dropout),
                   _prob("input_dropout", input_dropout), tuple(_prob("zoneout", p) for p in z),
                   _prob("weight_dropout", weight_dropout), _flag("learn_init", learn_init),
                   return_sequences)

    def extra_repr(self):
        default = LayerOptions(zoneout=(0.0,) * len(self.zoneout))
        return "".join(f", {k}={getattr(self, k)!r}" for k in self.__dataclass_fields__
                       if getattr(self, k) != getattr(default, k))


def dropout_mask(shape, p, like):
    """Bernoulli(1 - p) / (1 - p): inverted dropout, so evaluation needs no rescaling."""
    return like.new_empty(shape).bernoulli_(1 - p).div_(1 - p)


def step_options(opt, training, sched, B, sizes, like, keep):
    """The in-loop masks of one layer-direction for one forward; sizes: the states' widths."""
    rec = None
    if training and opt.recurrent_dropout:
        rec = dropout_mask((B, sizes[0]), opt.recurrent_dropout, like)
    zone = None
    if any(opt.zoneout):
        zone = tuple(None if not p else
                     (like.new_empty(sched.N, H).bernoulli_(p) if training else like.new_full((sched.N, H), p))
                     for p, H in zip(opt.zoneout, sizes))
    return StepOptions(rec_mask=rec, zoneout=zone, keep=keep, return_all=opt.return_sequences == "all")


def input_half_ln(x, w_ih, b_ih, b_hh, gain, bias):
    """LN(X W_ih^T; γ_ih, β_ih) + b_ih + b_hh for all steps at once (autograd: outside the loop)."""
    z = x @ w_ih.t()                                                     # (N, G·H)
    gi = F.layer_norm(z, z.shape[-1:], gain, bias)
    for b in (b_ih, b_hh):
        if b is not None:
            gi = gi + b
    return gi


def reset_keep(reset, T, B, reverse):
    """keep (T·B, 1) from reset (B, T): 0 where the state entering a token's step restarts.

    Forward direction: a reset at (b, t) restarts the state entering step t. Reverse direction
    (time runs backwards): a sequence starting at t + 1 means the state flowing from t + 1 into t
    must restart.
    """
    r = reset.t().to(torch.bool)                                         # (T, B)
    if reverse:
        r = torch.cat([r[1:], r.new_zeros(1, B)])
    return (~r).to(torch.get_default_dtype()).reshape(T * B, 1)


torch.serialization.add_safe_globals([LayerOptions])   # plain data (see rnnkit.cells)
