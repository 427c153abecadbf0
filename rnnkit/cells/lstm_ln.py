"""Layer-normalised LSTM (Ba, Kiros & Hinton 2016, eqs. 20-22), as in haste's LayerNormLSTM.

    a_t = LN(W_ih x_t; γ_ih, β_ih) + LN(W_hh h_{t-1}; γ_hh, β_hh) + b_ih + b_hh    (4H, gates i f g o)
    c_t = σ(a^f) ⊙ c_{t-1} + σ(a^i) ⊙ tanh(a^g)
    h_t = σ(a^o) ⊙ tanh(LN(c_t; γ_c, β_c))

The input half, LN(W_ih x_t) + b, does not depend on the recurrence: the layer forms it for all
steps at once before the loop (:func:`rnnkit.layers.options.input_half`). Inside the loop the
backward adds two layer-norm derivatives (:mod:`rnnkit.cells.layer_norm`) to the LSTM's::

    δy_t   = δh_t ⊙ o_t ⊙ (1 - tanh² y_t)          y_t = LN(c_t)
    δc_t  += LN'(δy_t)                              then the LSTM's gate derivatives from δc_t
    δz_t   = LN'(δa_t)                              z_t = W_hh h_{t-1}:  δh_{t-1} += δz_t W_hh
"""
import torch

from rnnkit.cells.layer_norm import NormParams, ln_backward, ln_forward, ln_normalised, reference_ln
from rnnkit.cells.lstm import LSTMMath


class LayerNormLSTMMath(NormParams, LSTMMath):
    SEPARATE_DGH = True            # δz_t (after the layer norm's derivative) feeds δW_hh
    TAKES_GI = False
    PARAMS = ("ln_hh_weight", "ln_hh_bias", "ln_c_weight", "ln_c_bias")

    def alloc_cache(self, n, sizes, like, gi):
        """acts (N, 4H); z = W_hh h (N, 4H) , its μ, 1/σ (N, 1);
        μ, 1/σ of c (N, 1); tanh y (N, H)."""
        e, H = like.new_empty, sizes[-1]
        return (e(n, 4 * H), e(n, 4 * H), e(n, 1), e(n, 1), e(n, 1), e(n, 1), e(n, H))

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        (_, c_prev), (acts, z, mh, rh, mc, rc, tanh_y) = prev, cache
        g_hh, b_hh_ln, g_c, b_c = params
        H = c_prev.shape[1]
        torch.mm(hrec, w_hh_t, out=z)                                    # (b, 4H) W_hh h_{t-1}
        a = torch.add(gi, ln_forward(z, g_hh, b_hh_ln, mh, rh), out=acts)   # a_t
        a[:, :2 * H].sigmoid_()                                          # i_t, f_t
        a[:, 2 * H:3 * H].tanh_()                                        # g_t
        a[:, 3 * H:].sigmoid_()                                          # o_t
        i, f, g, o = a.chunk(4, 1)
        c = torch.mul(i, g, out=out[1]).addcmul_(f, c_prev)              # c_t
        y = ln_forward(c, g_c, b_c, mc, rc)                              # y_t = LN(c_t)
        torch.mul(o, torch.tanh(y, out=tanh_y), out=out[0])              # h_t = o_t tanh(y_t)

    def prepare_backward(self, cache, states, prev, params):
        acts, z, mh, rh, mc, rc, tanh_y = cache
        M, K, f = super().prepare_backward((acts, tanh_y), states, prev, params)
        xh = ln_normalised(z, mh, rh)               # x̂ of W_hh h, all tokens at once
        xc = ln_normalised(states[1], mc, rc)       # x̂ of c_t
        dy = torch.empty_like(tanh_y)               # δy_t per token, kept for δγ_c, δβ_c
        return (M, K, f, xh, rh, xc, rc, dy)

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        (dh, dc), (M, K, f, xh, rh, xc, rc, dy) = dstate, pre
        g_hh, _, g_c, _ = params
        H = dh.shape[1]
        torch.mul(dh, K, out=dy)                                         # δy_t = δh_t o_t tanh'(y_t)
        dc.add_(ln_backward(dy, xc, rc, g_c, torch.empty_like(dy)))      # δc_t += LN'(δy_t)
        da = torch.mul(dc.unsqueeze(1), M, out=dgi.view(-1, 4, H))       # δa^i, δa^f, δa^g
        torch.mul(dh, M[:, 3], out=da[:, 3])                             # δa^o
        dprev[1].addcmul_(dc, f)                                         # δc_{t-1} += δc_t f_t
        ln_backward(dgi, xh, rh, g_hh, dgh)                              # δz_t = LN'(δa_t)
        dhrec.addmm_(dgh, w_hh)                                          # δh_{t-1} += δz_t W_hh

    def param_grads(self, cache, pre, dG, dGh, dS, params):
        xh, xc, dy = pre[3], pre[5], pre[7]
        return ((dG * xh).sum(0), dG.sum(0), (dy * xc).sum(0), dy.sum(0))

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        """The same step in plain autograd ops (gi already holds LN(W_ih x) + b_ih)."""
        h_prev, c_prev = state
        hrec = h_prev if hrec is None else hrec
        g_hh, b_hh_ln, g_c, b_c = params
        a = gi + reference_ln(hrec @ w_hh.t(), g_hh, b_hh_ln) + (0 if b_hh is None else b_hh)
        ai, af, ag, ao = a.chunk(4, 1)
        i, f, g, o = torch.sigmoid(ai), torch.sigmoid(af), torch.tanh(ag), torch.sigmoid(ao)
        c = f * c_prev + i * g
        return o * torch.tanh(reference_ln(c, g_c, b_c)), c
