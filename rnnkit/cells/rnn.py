"""Vanilla (Elman) RNN cell with tanh or ReLU, as in Elman (1990) and ``torch.nn.RNN``.

Equations, in the notation of the tutorials (U = W_ih, W = W_hh, S_t = h_t)::

    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh        pre-activation (net_t)
    h_t = tanh(a_t)          or  h_t = relu(a_t)

Backward, one step (the recurrent Jacobian is diag(f'(a_t)) W_hh)::

    dL/da_t     = dL/dh_t ⊙ f'(a_t)        f' = 1 - h_t²  (tanh)   or  [h_t > 0]  (relu)
    dL/dh_{t-1} = dL/da_t W_hh

Repeated over k steps the error signal is multiplied k times by diag(f') W_hh: it shrinks
(vanishes) or grows (explodes) exponentially unless that product stays near 1.

Shapes: B batch, I input, H hidden. W_ih (H, I), W_hh (H, H). The input half
``x_t W_ih^T + b_ih + b_hh`` is computed for all steps in one matmul before the time loop.
"""
import torch

from rnnkit.cells.base import Cell


class VanillaMath(Cell):
    """Step functions of the vanilla RNN for one nonlinearity ('tanh' or 'relu')."""

    def __init__(self, nonlinearity):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity

    def layer_norm(self):
        from rnnkit.cells.gru_ln import LayerNormVanillaMath
        return LayerNormVanillaMath(self.nonlinearity)

    # no cache: h_t itself (the layer output) is all the backward needs

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        """h_t = f(gi_t + h_{t-1} W_hh^T), written into out[0]."""
        a = torch.addmm(gi, hrec, w_hh_t, out=out[0])              # (b, H) a_t
        a.tanh_() if self.nonlinearity == "tanh" else a.relu_()

    def prepare_backward(self, cache, states, prev, params):
        """f'(a_t) for all tokens at once, from h_t."""
        h = states[0]
        return ((1 - h * h) if self.nonlinearity == "tanh" else (h > 0).to(h.dtype),)

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        torch.mul(dstate[0], pre[0], out=dgi)                       # δa_t = δh_t ⊙ f'(a_t)
        dhrec.addmm_(dgi, w_hh)                                     # δh_{t-1} += δa_t W_hh

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        """The same step in plain autograd ops (the test oracle)."""
        hrec = state[0] if hrec is None else hrec
        a = gi + hrec @ w_hh.t() + (0 if b_hh is None else b_hh)
        return (torch.tanh(a) if self.nonlinearity == "tanh" else torch.relu(a),)


RNN_TANH = VanillaMath("tanh")
RNN_RELU = VanillaMath("relu")
