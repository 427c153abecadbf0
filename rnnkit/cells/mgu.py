"""MGU: the minimal gated unit of Zhou, Wu, Zhang & Zhou (2016), one gate where the GRU has two.

The forget gate f_t does the work of the GRU's reset and update gates at once. Equations, gate
order f, n (W_ih (2H, I), W_hh (2H, H): rows [U_f; U_n])::

    f_t = σ(W_if x_t + b_if + U_f h_{t-1} + b_hf)
    n_t = tanh(W_in x_t + b_in + U_n (f_t ⊙ h_{t-1}) + b_hn)
    h_t = (1 - f_t) ⊙ h_{t-1} + f_t ⊙ n_t

Every bias adds straight to a pre-activation, so both fold into the input half; U_n needs f_t
first, so the step takes two matmuls. Backward, one step (h^r_{t-1} the state as it enters the
matmuls, the same as h_{t-1} without recurrent dropout)::

    δâ^n_t     = δh_t ⊙ f_t ⊙ (1 - n_t²)                     ∂h_t/∂n_t = f_t
    δ(f⊙h)_t   = δâ^n_t U_n
    δâ^f_t     = (δh_t ⊙ (n_t - h_{t-1}) + δ(f⊙h)_t ⊙ h^r_{t-1}) ⊙ σ'(f)
    δh_{t-1}  += δh_t ⊙ (1 - f_t)                            directly
    δh^r_{t-1} += δ(f⊙h)_t ⊙ f_t + δâ^f_t U_f                 through the matmuls
    δU_f = Σ_t (δâ^f)^T h^r_{t-1},   δU_n = Σ_t (δâ^n)^T (f ⊙ h^r_{t-1})

Shapes: b rows, H hidden, N tokens.
"""
import torch

from rnnkit.cells.base import Cell


class MGU(Cell):
    N_GATES = 2                    # f, n
    TAKES_GI = True

    def alloc_cache(self, n, sizes, like, gi):
        """Gate activations f, n (N, 2H) over the input half; h^r_{t-1} and f_t ⊙ h^r_{t-1} (N, H)."""
        return (gi, like.new_empty(n, sizes[0]), like.new_empty(n, sizes[0]))

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        (h_prev,), (acts, hr, fh) = prev, cache
        H = h_prev.shape[1]
        hr.copy_(hrec)
        f = acts[:, :H].addmm_(hrec, w_hh_t[:, :H]).sigmoid_()              # f_t (acts held gi)
        torch.mul(f, hrec, out=fh)                                          # f_t ⊙ h^r_{t-1}
        n = acts[:, H:].addmm_(fh, w_hh_t[:, H:]).tanh_()                   # n_t
        torch.sub(n, h_prev, out=out[0]).mul_(f).add_(h_prev)               # h_t = h + f (n - h)

    def prepare_backward(self, cache, states, prev, params):
        acts, hr, _ = cache
        f, n = acts.chunk(2, 1)
        s = f * (1 - f)                                                     # σ'(f)
        A_n = f * (1 - n * n)                                               # δâ^n / δh_t
        A_f = (n - prev[0]) * s                                             # δâ^f / δh_t, directly
        B_f = hr * s                                                        # δâ^f / δ(f⊙h)
        return (A_n, A_f, B_f, f)

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        (dh,), (A_n, A_f, B_f, f) = dstate, pre
        H = dh.shape[1]
        dn = torch.mul(dh, A_n, out=dgi[:, H:])                             # δâ^n
        dfh = dn @ w_hh[H:]                                                 # δ(f⊙h) = δâ^n U_n
        torch.mul(dh, A_f, out=dgi[:, :H]).addcmul_(dfh, B_f)               # δâ^f
        dprev[0].add_(dh).addcmul_(dh, f, value=-1)                         # δh_{t-1} += δh_t (1 - f_t)
        dhrec.addcmul_(dfh, f)                                              # through f ⊙ h^r
        dhrec.addmm_(dgi[:, :H], w_hh[:H])                                  # through the f gate

    def weight_grad_hh(self, dgh, hrec, cache, pre):
        H = hrec.shape[1]
        return torch.cat([dgh[:, :H].t() @ hrec,                            # δU_f
                          dgh[:, H:].t() @ cache[2]])                       # δU_n sees f ⊙ h^r

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        """The same step in plain autograd ops, written from the equations (the test oracle)."""
        (h_prev,) = state
        hrec = h_prev if hrec is None else hrec
        H = h_prev.shape[1]
        b = gi.new_zeros(2 * H) if b_hh is None else b_hh
        i_f, i_n = gi.chunk(2, 1)
        f = torch.sigmoid(i_f + hrec @ w_hh[:H].t() + b[:H])
        n = torch.tanh(i_n + (f * hrec) @ w_hh[H:].t() + b[H:])
        return ((1 - f) * h_prev + f * n,)
