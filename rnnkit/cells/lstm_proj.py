"""LSTM with a projected hidden state (LSTMP; Sak, Senior & Beaufays 2014), as ``torch.nn.LSTM(proj_size=P)``.

    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh        W_hh (4H, P)
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                    (H)
    m_t = o_t ⊙ tanh(c_t)                              (H)
    h_t = W_hr m_t                                     (P), W_hr (P, H)

Backward: the projection comes first in the chain, then the LSTM's step with δm_t in place of δh_t::

    δm_t  = δh_t W_hr
    δW_hr = Σ_t δh_t^T m_t                              (one matmul after the loop)
"""
import torch

from rnnkit.cells.lstm import LSTMMath


class ProjectedLSTMMath(LSTMMath):
    PARAMS = ("weight_hr",)

    def __init__(self, proj_size=None):
        self.proj_size = proj_size                        # P

    def param_shapes(self, input_size, hidden_size):
        """torch.nn.LSTM(proj_size=P)'s: W_hh (4H, P), then W_hr (P, H)."""
        shapes = super().param_shapes(input_size, hidden_size)
        shapes["weight_hh"] = (4 * hidden_size, self.proj_size)
        shapes["weight_hr"] = (self.proj_size, hidden_size)
        return shapes

    def layer_norm(self):
        return None

    def state_sizes(self, w_hh):
        return (w_hh.shape[1], w_hh.shape[0] // 4)        # h_t (P), c_t (H)

    def alloc_cache(self, n, sizes, like, gi):
        H = sizes[1]
        return super().alloc_cache(n, sizes, like, gi) + (like.new_empty(n, H),)   # + m_t

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        acts, tanh_c, m = cache
        m_out = (m, out[1])
        super().forward_step(gi, prev, hrec, w_hh_t, b_hh, (acts, tanh_c), m_out, params)  # m_t, c_t
        torch.mm(m, params[0].t(), out=out[0])                          # h_t = W_hr m_t

    def prepare_backward(self, cache, states, prev, params):
        return super().prepare_backward(cache[:2], states, prev, params)

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        dh, dc = dstate
        dm = dh @ params[0]                                              # δm_t = δh_t W_hr
        super().backward_step((dm, dc), pre, w_hh, dgi, dgh, dprev, dhrec, params)

    def param_grads(self, cache, pre, dG, dGh, dS, params):
        return (dS[0].t() @ cache[2],)                                   # δW_hr = Σ δh_t^T m_t

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        m, c = super().reference_step(gi, state, w_hh, b_hh, hrec)
        return m @ params[0].t(), c
