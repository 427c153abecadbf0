"""Layer-normalised GRU and vanilla RNN: Ba et al. (2016) on both halves of the pre-activations.

GRU (torch's reset-after form, as haste's LayerNormGRU)::

    q_t = LN(W_hh h_{t-1}; γ_hh, β_hh) + b_hh                               (3H: r, z, n parts)
    r_t, z_t = σ(LN(W_ih x_t)^{r,z} + b_i^{r,z} + q_t^{r,z})
    n_t = tanh(LN(W_ih x_t)^n + b_in + r_t ⊙ q_t^n),   h_t = (1 - z_t) n_t + z_t h_{t-1}

RNN::

    h_t = f(LN(W_ih x_t) + b_ih + b_hh + LN(W_hh h_{t-1}; γ_hh, β_hh))

The input halves are formed for all steps before the loop; in the loop the backward of the GRU or
RNN step yields δq_t (δa_t), and the layer norm's derivative turns it into δ(W_hh h_{t-1}):
``δz_t = LN'(δq_t)``, ``δh_{t-1} += δz_t W_hh``, ``δW_hh = Σ_t δz_t^T h_{t-1}``.
"""
import torch

from rnnkit.cells.gru import GRUMath
from rnnkit.cells.layer_norm import NormParams, ln_backward, ln_forward, ln_normalised, reference_ln
from rnnkit.cells.rnn import VanillaMath


class LayerNormGRUMath(NormParams, GRUMath):
    PARAMS = ("ln_hh_weight", "ln_hh_bias")
    TAKES_GI = False

    def alloc_cache(self, n, sizes, like, gi):
        """acts (N, 3H), q (N, 3H), z = W_hh h (N, 3H) , μ, 1/σ (N, 1)."""
        e, H = like.new_empty, sizes[0]
        return (e(n, 3 * H), e(n, 3 * H), e(n, 3 * H), e(n, 1), e(n, 1))

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        acts, q, z, mu, rh = cache
        y = ln_forward(torch.mm(hrec, w_hh_t, out=z), *params, mu, rh)   # LN(W_hh h^r)
        torch.add(y, 0 if b_hh is None else b_hh, out=q)                  # q_t
        H = hrec.shape[1]
        torch.add(gi[:, :2 * H], q[:, :2 * H], out=acts[:, :2 * H]).sigmoid_()   # r_t, z_t
        r, z, n = acts.chunk(3, 1)
        torch.addcmul(gi[:, 2 * H:], r, q[:, 2 * H:], out=n).tanh_()     # n_t
        torch.sub(prev[0], n, out=out[0]).mul_(z).add_(n)                 # h_t

    def prepare_backward(self, cache, states, prev, params):
        A, Ah, z = super().prepare_backward(cache[:2], states, prev, params)
        xh = ln_normalised(cache[2], cache[3], cache[4])   # x̂, all tokens at once
        return (A, Ah, z, xh, cache[4], torch.empty_like(xh))

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        (dh,), (A, Ah, z, xh, rh, dz) = dstate, pre
        H = dh.shape[1]
        dh3 = dh.unsqueeze(1)
        torch.mul(dh3, A, out=dgi.unflatten(1, (3, H)))           # δâ (input halves)
        torch.mul(dh3, Ah, out=dgh.unflatten(1, (3, H)))          # δq_t
        dprev[0].addcmul_(dh, z)                                  # ∂h_t/∂h_{t-1} directly = z_t
        ln_backward(dgh, xh, rh, params[0], dz)                   # δz_t = LN'(δq_t)
        dhrec.addmm_(dz, w_hh)                                    # δh_{t-1} += δz_t W_hh

    def weight_grad_hh(self, dgh, hrec, cache, pre):
        return pre[5].t() @ hrec

    def param_grads(self, cache, pre, dG, dGh, dS, params):
        return ((dGh * pre[3]).sum(0), dGh.sum(0))

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        (h_prev,) = state
        hrec = h_prev if hrec is None else hrec
        q = reference_ln(hrec @ w_hh.t(), *params) + (0 if b_hh is None else b_hh)
        i_r, i_z, i_n = gi.chunk(3, 1)
        q_r, q_z, q_n = q.chunk(3, 1)
        r, z = torch.sigmoid(i_r + q_r), torch.sigmoid(i_z + q_z)
        n = torch.tanh(i_n + r * q_n)
        return ((1 - z) * n + z * h_prev,)


class LayerNormVanillaMath(NormParams, VanillaMath):
    SEPARATE_DGH = True
    PARAMS = ("ln_hh_weight", "ln_hh_bias")
    CACHED_GATES = False   # its cache holds W_hh h and the norm's statistics; h̃_t is the output

    def alloc_cache(self, n, sizes, like, gi):
        e = like.new_empty                  # z = W_hh h , μ, 1/σ
        return (e(n, sizes[0]), e(n, 1), e(n, 1))

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        z, mu, rh = cache
        y = ln_forward(torch.mm(hrec, w_hh_t, out=z), *params, mu, rh)   # LN(W_hh h^r)
        a = torch.add(gi, y, out=out[0])                          # a_t
        a.tanh_() if self.nonlinearity == "tanh" else a.relu_()

    def prepare_backward(self, cache, states, prev, params):
        xh = ln_normalised(cache[0], cache[1], cache[2])
        return super().prepare_backward((), states, prev, params) + (xh, cache[2])

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        fprime, xh, rh = pre
        torch.mul(dstate[0], fprime, out=dgi)                     # δa_t = δh_t ⊙ f'(a_t)
        ln_backward(dgi, xh, rh, params[0], dgh)                  # δz_t = LN'(δa_t)
        dhrec.addmm_(dgh, w_hh)                                   # δh_{t-1} += δz_t W_hh

    def param_grads(self, cache, pre, dG, dGh, dS, params):
        return ((dG * pre[1]).sum(0), dG.sum(0))

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        hrec = state[0] if hrec is None else hrec
        a = gi + reference_ln(hrec @ w_hh.t(), *params) + (0 if b_hh is None else b_hh)
        return (torch.tanh(a) if self.nonlinearity == "tanh" else torch.relu(a),)
