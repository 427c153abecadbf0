"""LSTM: the gated cell of Hochreiter & Schmidhuber (1997), with a forget gate (Gers et al. 2000).

Equations, gate order i, f, g, o (as ``torch.nn.LSTM``)::

    i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)        input gate
    f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)        forget gate
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)     candidate cell state
    o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)        output gate
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                       cell state
    h_t = o_t ⊙ tanh(c_t)                                 hidden state

The cell state c_t is the "conveyor belt": dc_{t-1} = dc_t ⊙ f_t, so the error signal flows back
through time scaled by the forget gate rather than by W_hh and an activation's derivative, which is
why an LSTM does not forget the way a vanilla RNN does.

Shapes: B batch, I input, H hidden. W_ih (4H, I) and W_hh (4H, H) stack the four gates' rows.
The input half of every pre-activation, ``x_t W_ih^T + b_ih + b_hh``, is computed for all steps in
one matmul before the time loop (both biases fold into it); the step adds ``h_{t-1} W_hh^T``.
"""
import torch

N_STATES = 2          # (h, c)
N_GATES = 4           # i, f, g, o
FOLD_HH_BIAS = True   # b_hh adds to the pre-activation unchanged, so it joins b_ih outside the loop


def alloc_cache(n, hidden, like):
    """Per-token buffers the backward needs: gate activations (N, 4H) and tanh(c_t) (N, H)."""
    return {"acts": like.new_empty(n, 4 * hidden), "tanh_c": like.new_empty(n, hidden)}


def forward_step(gi, prev, w_hh, b_hh, cache, sl, out):
    """One step. gi (b, 4H) input pre-activations; prev = (h_{t-1}, c_{t-1}) each (b, H).

    Writes h_t into out[0][sl] and c_t into out[1][sl]; returns (h_t, c_t) as views of them.
    """
    h_prev, c_prev = prev
    H = h_prev.shape[1]
    a = torch.addmm(gi, h_prev, w_hh.t(), out=cache["acts"][sl])   # (b, 4H) pre-activations
    a[:, :2 * H].sigmoid_()                                          # i_t, f_t
    a[:, 2 * H:3 * H].tanh_()                                        # g_t
    a[:, 3 * H:].sigmoid_()                                          # o_t
    i, f, g, o = a.chunk(4, 1)
    c = torch.mul(i, g, out=out[1][sl]).addcmul_(f, c_prev)         # c_t = f c_{t-1} + i g
    tanh_c = torch.tanh(c, out=cache["tanh_c"][sl])
    h = torch.mul(o, tanh_c, out=out[0][sl])                        # h_t = o tanh(c_t)
    return h, c


def backward_step(dstate, prev, w_hh, cache, sl, dgi, dgh, out):
    """Chain rule through one step. dstate = (dL/dh_t, dL/dc_t) each (b, H).

    Writes dL/d(pre-activations) (b, 4H) into dgi; returns (dL/dh_{t-1}, dL/dc_{t-1}).
    """
    dh, dc = dstate
    _, c_prev = prev
    a = cache["acts"][sl]
    i, f, g, o = a.chunk(4, 1)
    tanh_c = cache["tanh_c"][sl]
    di, df, dg, do = dgi.chunk(4, 1)
    torch.mul(dh, tanh_c, out=do)                                   # ∂h_t/∂o_t = tanh(c_t)
    dc = (1 - tanh_c * tanh_c).mul_(o).mul_(dh).add_(dc)            # ∂h_t/∂c_t = o_t (1 - tanh² c_t)
    torch.mul(dc, g, out=di)                                        # ∂c_t/∂i_t = g_t
    torch.mul(dc, c_prev, out=df)                                   # ∂c_t/∂f_t = c_{t-1}
    torch.mul(dc, i, out=dg)                                        # ∂c_t/∂g_t = i_t
    dc_prev = dc.mul_(f)                                            # ∂c_t/∂c_{t-1} = f_t
    # through the nonlinearities: σ' = σ(1 - σ), tanh' = 1 - tanh²
    H = dh.shape[1]
    deriv = a - a * a                                               # σ' for i, f, o
    torch.mul(g, g, out=deriv[:, 2 * H:3 * H]).neg_().add_(1)       # tanh' for g
    dgi.mul_(deriv)
    dh_prev = dgi @ w_hh                                            # ∂a_t/∂h_{t-1} = W_hh
    return dh_prev, dc_prev


def reference_step(x_gi, state, w_hh, b_hh):
    """The same step in plain autograd ops, written from the equations (the test oracle)."""
    h_prev, c_prev = state
    a = x_gi + h_prev @ w_hh.t() + (0 if b_hh is None else b_hh)
    ai, af, ag, ao = a.chunk(4, 1)
    i, f, g, o = torch.sigmoid(ai), torch.sigmoid(af), torch.tanh(ag), torch.sigmoid(ao)
    c = f * c_prev + i * g
    h = o * torch.tanh(c)
    return h, c
