"""GRU in the original form of Cho et al. (2014): the reset gate applied *before* the recurrent matmul.

Equations, gate order r, z, n (``GRU(..., reset_after=False)``; Keras' ``reset_after=False``)::

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn)
    h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

Every bias now adds straight to a pre-activation, so both fold into the input half. The step
needs two matmuls (r_t must be known before W_hn sees r_t ⊙ h_{t-1}). Backward::

    δâ^n_t   = δh_t ⊙ (1 - z_t) ⊙ (1 - n_t²)
    δâ^z_t   = δh_t ⊙ (h_{t-1} - n_t) ⊙ σ'(â^z_t)
    δ(r⊙h)_t = δâ^n_t W_hn
    δâ^r_t   = δ(r⊙h)_t ⊙ h_{t-1} ⊙ σ'(â^r_t)
    δh_{t-1} += δh_t ⊙ z_t + δ(r⊙h)_t ⊙ r_t + [δâ^r_t, δâ^z_t] W_h[rz]
    δW_h[rz] = Σ_t [δâ^r, δâ^z]^T h_{t-1},   δW_hn = Σ_t (δâ^n)^T (r ⊙ h_{t-1})
"""
import torch

from rnnkit.cells.base import Cell


class GRUResetBeforeMath(Cell):
    N_GATES = 3
    TAKES_GI = True

    def alloc_cache(self, n, sizes, like, gi):
        """Gate activations r, z, n (N, 3H); h^r_{t-1} and r_t ⊙ h^r_{t-1} (N, H) each."""
        return (gi, like.new_empty(n, sizes[0]), like.new_empty(n, sizes[0]))

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        (h_prev,), (acts, hr, rh) = prev, cache
        H = h_prev.shape[1]
        hr.copy_(hrec)
        acts[:, :2 * H].addmm_(hrec, w_hh_t[:, :2 * H]).sigmoid_()            # r, z (acts held gi)
        r, z, n = acts.chunk(3, 1)
        torch.mul(r, hrec, out=rh)                                            # r_t ⊙ h_{t-1}
        n.addmm_(rh, w_hh_t[:, 2 * H:]).tanh_()                               # n_t
        torch.sub(h_prev, n, out=out[0]).mul_(z).add_(n)                      # h_t

    def prepare_backward(self, cache, states, prev, params):
        acts, hr, _ = cache
        r, z, n = acts.chunk(3, 1)
        A_n = (1 - z) * (1 - n * n)                               # δâ^n / δh_t
        A_z = (prev[0] - n) * z * (1 - z)                         # δâ^z / δh_t
        B_r = hr * r * (1 - r)                                    # δâ^r / δ(r⊙h)
        return (A_n, A_z, B_r, r, z)

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        (dh,), (A_n, A_z, B_r, r, z) = dstate, pre
        H = dh.shape[1]
        dn = torch.mul(dh, A_n, out=dgi[:, 2 * H:])               # δâ^n
        torch.mul(dh, A_z, out=dgi[:, H:2 * H])                   # δâ^z
        drh = dn @ w_hh[2 * H:]                                   # δ(r⊙h) = δâ^n W_hn
        torch.mul(drh, B_r, out=dgi[:, :H])                       # δâ^r
        dprev[0].addcmul_(dh, z)                                  # ∂h_t/∂h_{t-1} directly = z_t
        dhrec.addcmul_(drh, r)                                    # through r ⊙ h
        dhrec.addmm_(dgi[:, :2 * H], w_hh[:2 * H])                # through the r and z gates

    def weight_grad_hh(self, dgh, hrec, cache, pre):
        H = hrec.shape[1]
        return torch.cat([dgh[:, :2 * H].t() @ hrec,               # δW_h[rz]
                          dgh[:, 2 * H:].t() @ cache[2]])          # δW_hn sees r ⊙ h

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        (h_prev,) = state
        hrec = h_prev if hrec is None else hrec
        H = h_prev.shape[1]
        b = gi.new_zeros(3 * H) if b_hh is None else b_hh
        i_r, i_z, i_n = gi.chunk(3, 1)
        r = torch.sigmoid(i_r + hrec @ w_hh[:H].t() + b[:H])
        z = torch.sigmoid(i_z + hrec @ w_hh[H:2 * H].t() + b[H:2 * H])
        n = torch.tanh(i_n + (r * hrec) @ w_hh[2 * H:].t() + b[2 * H:])
        return ((1 - z) * n + z * h_prev,)
