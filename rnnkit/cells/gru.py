"""GRU: the gated recurrent unit of Cho et al. (2014), in torch.nn.GRU's "reset after" form.

Equations, gate order r, z, n (as ``torch.nn.GRU``)::

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)             reset gate
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)             update gate
    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))  candidate state
    h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

The reset gate multiplies the recurrent product ``W_hn h_{t-1} + b_hn`` (after the matmul), so
b_hn cannot fold into the input bias and the input and recurrent halves of the n gate get
different gradients: dL/d(W_in x) = dn̂, dL/d(W_hn h) = dn̂ ⊙ r_t.

Shapes: B batch, I input, H hidden. W_ih (3H, I), W_hh (3H, H).
"""
import torch

N_STATES = 1
N_GATES = 3
FOLD_HH_BIAS = False


def alloc_cache(n, hidden, like):
    """Gate activations r, z, n (N, 3H) and the recurrent product of the n gate (N, H)."""
    return {"acts": like.new_empty(n, 3 * hidden), "ghn": like.new_empty(n, hidden)}


def forward_step(gi, prev, w_hh, b_hh, cache, sl, out):
    (h_prev,) = prev
    H = h_prev.shape[1]
    gh = h_prev @ w_hh.t() if b_hh is None else torch.addmm(b_hh, h_prev, w_hh.t())  # (b, 3H)
    a = cache["acts"][sl]
    torch.add(gi[:, :2 * H], gh[:, :2 * H], out=a[:, :2 * H]).sigmoid_()   # r_t, z_t
    r, z, n = a.chunk(3, 1)
    ghn = cache["ghn"][sl].copy_(gh[:, 2 * H:])                             # W_hn h_{t-1} + b_hn
    torch.addcmul(gi[:, 2 * H:], r, ghn, out=n).tanh_()                     # n_t
    h = torch.sub(h_prev, n, out=out[0][sl]).mul_(z).add_(n)                # n + z (h_{t-1} - n)
    return (h,)


def backward_step(dstate, prev, w_hh, cache, sl, dgi, dgh, out):
    (dh,) = dstate
    (h_prev,) = prev
    H = dh.shape[1]
    r, z, n = cache["acts"][sl].chunk(3, 1)
    ghn = cache["ghn"][sl]
    dr, dz, dn = dgi.chunk(3, 1)
    torch.mul(dh, 1 - z, out=dn)                            # ∂h_t/∂n_t = 1 - z_t
    torch.sub(h_prev, n, out=dz).mul_(dh)                   # ∂h_t/∂z_t = h_{t-1} - n_t
    dn.mul_(1 - n * n)                                      # tanh' = 1 - n_t²
    torch.mul(dn, ghn, out=dr)                              # ∂n̂_t/∂r_t = W_hn h_{t-1} + b_hn
    dgi[:, :2 * H].mul_(cache["acts"][sl][:, :2 * H] * (1 - cache["acts"][sl][:, :2 * H]))  # σ'
    dgh[:, :2 * H] = dgi[:, :2 * H]                         # r, z: same in both halves
    torch.mul(dn, r, out=dgh[:, 2 * H:])                    # ∂n̂_t/∂(W_hn h) = r_t
    dh_prev = torch.addmm(dh * z, dgh, w_hh)                # ∂h_t/∂h_{t-1} = z_t + (via gates) W_hh
    return (dh_prev,)


def reference_step(gi, state, w_hh, b_hh):
    """The same step in plain autograd ops (the test oracle)."""
    (h_prev,) = state
    gh = h_prev @ w_hh.t() + (0 if b_hh is None else b_hh)
    i_r, i_z, i_n = gi.chunk(3, 1)
    h_r, h_z, h_n = gh.chunk(3, 1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return ((1 - z) * n + z * h_prev,)
