"""The homework of the RNN tutorials: a vanilla RNN step and its BPTT, by hand, as an rnnkit cell.

    a_t = U x_t + b + W h_{t-1}        U = W_ih (H, I), W = W_hh (H, H), S_t = h_t
    h_t = tanh(a_t)

Backward of one step, given δh_t = dL/dh_t (from the output at t and from step t+1):

    δa_t      = δh_t ⊙ (1 - h_t²)      tanh'(a) = 1 - tanh²(a)
    δh_{t-1} += δa_t W                  the error sent one step back in time

rnnkit forms U x_t + b for all steps before the loop and, after the reverse loop, each weight
gradient in one matmul over all steps: δU = Σ_t δa_t^T x_t, δW = Σ_t δa_t^T h_{t-1},
δb = Σ_t δa_t.

    rnnkit check-cell docs/examples/my_rnn_cell.py
"""
import torch

import rnnkit


class MyRNNCell(rnnkit.Cell):
    STATES = ("h",)       # the states carried between steps: h alone
    N_GATES = 1           # W_ih and W_hh have 1·H rows

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        """gi: U x_t + b, one row per sequence; hrec: h_{t-1}; w_hh_t: W^T.
        Writes h_t into out[0]."""
        torch.tanh(torch.addmm(gi, hrec, w_hh_t), out=out[0])    # h_t = tanh(a_t)

    def prepare_backward(self, cache, states, prev, params):
        """What the backward needs, for all steps at once: tanh'(a_t) = 1 - h_t²."""
        h = states[0]                                            # (N, H) every h_t
        return (1 - h * h,)

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        """dstate = (δh_t,). Writes δa_t into dgi; adds δh_{t-1} into dhrec."""
        torch.mul(dstate[0], pre[0], out=dgi)                    # δa_t = δh_t ⊙ (1 - h_t²)
        dhrec.addmm_(dgi, w_hh)                                  # δh_{t-1} += δa_t W

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        """The same step in plain autograd ops: what check-cell compares the backward with."""
        h_prev = state[0] if hrec is None else hrec
        a = gi + h_prev @ w_hh.t() + (0 if b_hh is None else b_hh)
        return (torch.tanh(a),)
