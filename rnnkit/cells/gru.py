"""GRU: the gated recurrent unit of Cho et al. (2014), in torch.nn.GRU's "reset after" form.

Equations, gate order r, z, n (as ``torch.nn.GRU``)::

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)               reset gate
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)               update gate
    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))    candidate state
    h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

Backward, one step (δx = dL/dx; â the pre-activations; q_t = W_hn h_{t-1} + b_hn)::

    δâ^n_t  = δh_t ⊙ (1 - z_t) ⊙ (1 - n_t²)               ∂h_t/∂n_t = 1 - z_t
    δâ^z_t  = δh_t ⊙ (h_{t-1} - n_t) ⊙ σ'(â^z_t)           ∂h_t/∂z_t = h_{t-1} - n_t
    δâ^r_t  = δâ^n_t ⊙ q_t ⊙ σ'(â^r_t)                    ∂n̂_t/∂r_t = q_t
    δq_t    = δâ^n_t ⊙ r_t                                 the reset gate scales the recurrent half
    δh_{t-1} += δh_t ⊙ z_t + [δâ^r_t, δâ^z_t, δq_t] W_hh

Because r_t multiplies q_t after the matmul, b_hn cannot fold into the input bias and the n gate's
input half (δâ^n) and recurrent half (δq) get different gradients. Every factor except δh_t is known
after the forward pass, so ``prepare_backward`` forms them for all tokens at once.

Shapes: B batch, H hidden, N tokens. W_ih (3H, I), W_hh (3H, H).
"""
import torch

from rnnkit.cells.base import Cell


class GRUMath(Cell):
    N_GATES = 3
    FOLD_HH_BIAS = False   # b_hn sits under r_t
    SEPARATE_DGH = True
    TAKES_GI = True

    def layer_norm(self):
        from rnnkit.cells.gru_ln import LayerNormGRUMath
        return LayerNormGRUMath()

    def alloc_cache(self, n, sizes, like, gi):
        """Gate activations r, z, n (N, 3H) and the recurrent products h^r W_hh^T + b_hh (N, 3H)."""
        return (gi, like.new_empty(n, 3 * sizes[0]))     # activations in place over the input half

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        (h_prev,), (acts, gh) = prev, cache
        H = h_prev.shape[1]
        if b_hh is None:
            torch.mm(hrec, w_hh_t, out=gh)                                    # (b, 3H)
        else:
            torch.addmm(b_hh, hrec, w_hh_t, out=gh)                           # (b, 3H)
        acts[:, :2 * H].add_(gh[:, :2 * H]).sigmoid_()                        # r_t, z_t (acts held gi)
        r, z, n = acts.chunk(3, 1)
        n.addcmul_(r, gh[:, 2 * H:]).tanh_()                                  # n_t
        torch.sub(h_prev, n, out=out[0]).mul_(z).add_(n)                      # h_t = n_t + z_t (h_{t-1} - n_t)

    def prepare_backward(self, cache, states, prev, params):
        """Per-token factors: δâ_t = δh_t ⊙ A_t (input halves), δ(recurrent halves) = δh_t ⊙ A'_t."""
        acts, gh = cache
        h_prev = prev[0]
        N, H = h_prev.shape
        r, z, n = acts.chunk(3, 1)
        A = acts.new_empty(N, 3, H)
        torch.mul(1 - z, 1 - n * n, out=A[:, 2])                  # δâ^n / δh_t
        torch.mul(h_prev - n, z * (1 - z), out=A[:, 1])           # δâ^z / δh_t
        torch.mul(A[:, 2] * gh[:, 2 * H:], r * (1 - r), out=A[:, 0])  # δâ^r / δh_t
        Ah = A.clone()
        Ah[:, 2].mul_(r)                                          # δq / δh_t = δâ^n / δh_t · r_t
        return (A, Ah, z)

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        (dh,), (A, Ah, z) = dstate, pre
        H = dh.shape[1]
        dh3 = dh.unsqueeze(1)
        torch.mul(dh3, A, out=dgi.unflatten(1, (3, H)))           # δâ^r, δâ^z, δâ^n
        torch.mul(dh3, Ah, out=dgh.unflatten(1, (3, H)))          # the same for the recurrent halves
        dprev[0].addcmul_(dh, z)                                  # ∂h_t/∂h_{t-1} directly = z_t
        dhrec.addmm_(dgh, w_hh)                                   # ... and through the gates: W_hh

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        """The same step in plain autograd ops (the test oracle)."""
        (h_prev,) = state
        hrec = h_prev if hrec is None else hrec
        gh = hrec @ w_hh.t() + (0 if b_hh is None else b_hh)
        i_r, i_z, i_n = gi.chunk(3, 1)
        h_r, h_z, h_n = gh.chunk(3, 1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return ((1 - z) * n + z * h_prev,)
