"""LSTM: the gated cell of Hochreiter & Schmidhuber (1997), with a forget gate (Gers et al. 2000).

Equations, gate order i, f, g, o (as ``torch.nn.LSTM``); a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh::

    i_t = σ(a_t^i)              input gate
    f_t = σ(a_t^f)              forget gate
    g_t = tanh(a_t^g)           candidate cell state
    o_t = σ(a_t^o)              output gate
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t)

Backward, one step (δx = dL/dx; σ' = σ(1 - σ), tanh' = 1 - tanh²)::

    δc_t     += δh_t ⊙ o_t ⊙ (1 - tanh² c_t)       c_t reaches L through h_t too
    δa_t^i    = δc_t ⊙ g_t ⊙ σ'(a_t^i)             ∂c_t/∂i_t = g_t
    δa_t^f    = δc_t ⊙ c_{t-1} ⊙ σ'(a_t^f)         ∂c_t/∂f_t = c_{t-1}
    δa_t^g    = δc_t ⊙ i_t ⊙ (1 - g_t²)            ∂c_t/∂g_t = i_t
    δa_t^o    = δh_t ⊙ tanh(c_t) ⊙ σ'(a_t^o)        ∂h_t/∂o_t = tanh(c_t)
    δc_{t-1} += δc_t ⊙ f_t                          the cell state's path: scaled by f_t only
    δh_{t-1} += δa_t W_hh

The cell-state path ``δc_{t-1} = δc_t ⊙ f_t`` carries the error back through time without the
repeated W_hh and activation derivative of a vanilla RNN: that is why an LSTM remembers.

Everything on the right of those products except δh_t and δc_t is known after the forward pass,
so ``prepare_backward`` forms it for all tokens at once and each reverse step is five fused ops.

Shapes: B batch, H hidden, N tokens (T·B). W_ih (4H, I), W_hh (4H, H). The input half of a_t
(``x_t W_ih^T + b_ih + b_hh``; both biases fold) is one matmul over all steps before the loop.
"""
import torch

from rnnkit.cells.base import Cell

class LSTMMath(Cell):
    STATES = ("h", "c")
    N_GATES = 4           # i, f, g, o
    TAKES_GI = True

    def layer_norm(self):
        from rnnkit.cells.lstm_ln import LayerNormLSTMMath
        return LayerNormLSTMMath()

    def state_sizes(self, w_hh):
        return (w_hh.shape[1], w_hh.shape[0] // 4)     # (H, H); LSTMP: (P, H)

    def alloc_cache(self, n, sizes, like, gi):
        """Per-token buffers the backward needs: gate activations (N, 4H), computed in place over
        the input half, and tanh(c_t) (N, H)."""
        return (gi, like.new_empty(n, sizes[-1]))

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        """gi (b, 4H) input half of a_t; prev = (h_{t-1}, c_{t-1}); out = (h_t, c_t) views to fill."""
        (_, c_prev), (acts, tanh_c) = prev, cache
        H = c_prev.shape[1]
        a = acts.addmm_(hrec, w_hh_t)                            # (b, 4H) a_t (acts held gi)
        a[:, :2 * H].sigmoid_()                                  # i_t, f_t
        a[:, 2 * H:3 * H].tanh_()                                # g_t
        a[:, 3 * H:].sigmoid_()                                  # o_t
        i, f, g, o = a.chunk(4, 1)
        c = torch.mul(i, g, out=out[1]).addcmul_(f, c_prev)      # c_t = f_t c_{t-1} + i_t g_t
        torch.mul(o, torch.tanh(c, out=tanh_c), out=out[0])      # h_t = o_t tanh(c_t)

    def prepare_backward(self, cache, states, prev, params):
        """The step-independent factors of the backward, for all N tokens at once."""
        acts, tanh_c = cache
        c_prev = prev[1]
        N, H = tanh_c.shape
        i, f, g, o = acts.chunk(4, 1)
        M = acts.new_empty(N, 4, H)
        torch.mul(g, i * (1 - i), out=M[:, 0])                   # δa^i / δc_t = g_t σ'(a^i)
        torch.mul(c_prev, f * (1 - f), out=M[:, 1])              # δa^f / δc_t = c_{t-1} σ'(a^f)
        torch.mul(i, 1 - g * g, out=M[:, 2])                     # δa^g / δc_t = i_t tanh'(a^g)
        torch.mul(tanh_c, o * (1 - o), out=M[:, 3])              # δa^o / δh_t = tanh(c_t) σ'(a^o)
        K = o * (1 - tanh_c * tanh_c)                            # ∂h_t/∂c_t = o_t (1 - tanh² c_t)
        return (M, K, f)

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        """dstate = (δh_t, δc_t) (b, H); writes δa_t into dgi (b, 4H); adds into δc_{t-1}, δh_{t-1}."""
        (dh, dc), (M, K, f) = dstate, pre
        H = dh.shape[1]
        dc.addcmul_(dh, K)                                                   # δc_t += δh_t ∂h_t/∂c_t
        da = torch.mul(dc.unsqueeze(1), M, out=dgi.view(-1, 4, H))           # δa^i, δa^f, δa^g (and o)
        torch.mul(dh, M[:, 3], out=da[:, 3])                                 # δa^o = δh_t M^o: fix o
        dprev[1].addcmul_(dc, f)                                             # δc_{t-1} += δc_t f_t
        dhrec.addmm_(dgi, w_hh)                                              # δh_{t-1} += δa_t W_hh

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        """The same step in plain autograd ops, written from the equations (the test oracle)."""
        h_prev, c_prev = state
        hrec = h_prev if hrec is None else hrec
        a = gi + hrec @ w_hh.t() + (0 if b_hh is None else b_hh)
        ai, af, ag, ao = a.chunk(4, 1)
        i, f, g, o = torch.sigmoid(ai), torch.sigmoid(af), torch.tanh(ag), torch.sigmoid(ao)
        c = f * c_prev + i * g
        return o * torch.tanh(c), c
