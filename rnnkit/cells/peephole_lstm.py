"""Peephole LSTM: gates that look at the cell state (Gers & Schmidhuber 2000; Gers, Schraudolph &
Schmidhuber 2002), in the form of the ONNX LSTM operator's peepholes P = (p_i, p_o, p_f).

Equations, gate order i, f, g, o (as ``torch.nn.LSTM``; a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh);
the peephole weights p are vectors (H,), so each gate unit sees only its own cell::

    i_t = σ(a_t^i + p_i ⊙ c_{t-1})
    f_t = σ(a_t^f + p_f ⊙ c_{t-1})
    g_t = tanh(a_t^g)
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    o_t = σ(a_t^o + p_o ⊙ c_t)              the output gate looks at the new cell state
    h_t = o_t ⊙ tanh(c_t)

Backward, one step (σ' = σ(1 - σ)); the order matters, since o_t's peephole adds to δc_t before
the input and forget gates read it::

    δa_t^o    = δh_t ⊙ tanh(c_t) ⊙ σ'(o)            ∂h_t/∂o_t = tanh(c_t)
    δc_t     += δh_t ⊙ o_t ⊙ (1 - tanh² c_t)        through h_t
             +  δa_t^o ⊙ p_o                        through o_t's peephole
    δa_t^i    = δc_t ⊙ g_t ⊙ σ'(i)                  ∂c_t/∂i_t = g_t
    δa_t^f    = δc_t ⊙ c_{t-1} ⊙ σ'(f)              ∂c_t/∂f_t = c_{t-1}
    δa_t^g    = δc_t ⊙ i_t ⊙ (1 - g_t²)             ∂c_t/∂g_t = i_t
    δc_{t-1} += δc_t ⊙ f_t + δa_t^i ⊙ p_i + δa_t^f ⊙ p_f
    δh_{t-1} += δa_t W_hh
    δp_i = Σ_t δa_t^i ⊙ c_{t-1},   δp_f = Σ_t δa_t^f ⊙ c_{t-1},   δp_o = Σ_t δa_t^o ⊙ c_t

Shapes: b rows, H hidden, N tokens. W_ih (4H, I), W_hh (4H, H), p_i, p_f, p_o (H,).
"""
import torch

from rnnkit.cells.base import Cell
from rnnkit.cells.fused import OnKernels, contiguous, fast_path, loop_plan


class PeepholeLSTM(Cell):
    N_GATES = 4                    # i, f, g, o
    STATES = ("h", "c")
    PARAMS = ("weight_ci", "weight_cf", "weight_co")      # p_i, p_f, p_o
    TAKES_GI = True

    def param_shapes(self, input_size, hidden_size):
        shapes = super().param_shapes(input_size, hidden_size)
        shapes.update({name: (hidden_size,) for name in self.PARAMS})
        return shapes

    def alloc_cache(self, n, sizes, like, gi):
        """Gate activations (N, 4H), over the input half in place, and tanh(c_t) (N, H)."""
        return (gi, like.new_empty(n, sizes[1]))

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        (_, c_prev), (acts, tanh_c), (p_i, p_f, p_o) = prev, cache, params
        a = acts.addmm_(hrec, w_hh_t)                                    # (b, 4H) a_t
        ai, af, ag, ao = a.chunk(4, 1)
        ai.addcmul_(p_i, c_prev).sigmoid_()                              # i_t
        af.addcmul_(p_f, c_prev).sigmoid_()                              # f_t
        ag.tanh_()                                                       # g_t
        c = torch.mul(ai, ag, out=out[1]).addcmul_(af, c_prev)           # c_t = f c_{t-1} + i g
        ao.addcmul_(p_o, c).sigmoid_()                                   # o_t
        torch.mul(ao, torch.tanh(c, out=tanh_c), out=out[0])             # h_t = o_t tanh(c_t)

    def prepare_backward(self, cache, states, prev, params):
        """The step-independent factors, for all N tokens at once; c_{t-1} and c_t for δp."""
        acts, tanh_c = cache
        c_prev, c = prev[1], states[1]
        N, H = tanh_c.shape
        i, f, g, o = acts.chunk(4, 1)
        M = acts.new_empty(N, 4, H)
        torch.mul(g, i * (1 - i), out=M[:, 0])                   # δa^i / δc_t = g_t σ'(i)
        torch.mul(c_prev, f * (1 - f), out=M[:, 1])              # δa^f / δc_t = c_{t-1} σ'(f)
        torch.mul(i, 1 - g * g, out=M[:, 2])                     # δa^g / δc_t = i_t tanh'(g)
        torch.mul(tanh_c, o * (1 - o), out=M[:, 3])              # δa^o / δh_t = tanh(c_t) σ'(o)
        K = o * (1 - tanh_c * tanh_c)                            # ∂h_t/∂c_t = o_t (1 - tanh² c_t)
        return (M, K, f, c_prev, c)

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        (dh, dc), (M, K, f, _, _), (p_i, p_f, p_o) = dstate, pre, params
        H = dh.shape[1]
        da = dgi.view(-1, 4, H)
        dao = torch.mul(dh, M[:, 3], out=da[:, 3])                       # δa^o
        dc.addcmul_(dh, K).addcmul_(dao, p_o)                            # δc_t: through h_t and o_t
        torch.mul(dc.unsqueeze(1), M[:, :3], out=da[:, :3])              # δa^i, δa^f, δa^g
        dprev[1].addcmul_(dc, f).addcmul_(da[:, 0], p_i).addcmul_(da[:, 1], p_f)   # δc_{t-1}
        dhrec.addmm_(dgi, w_hh)                                          # δh_{t-1} += δa_t W_hh

    def param_grads(self, cache, pre, dG, dGh, dS, params):
        c_prev, c = pre[3], pre[4]
        da = dG.view(dG.shape[0], 4, -1)
        return ((da[:, 0] * c_prev).sum(0),                                # δp_i
                (da[:, 1] * c_prev).sum(0),                                # δp_f
                (da[:, 3] * c).sum(0))                                     # δp_o

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        """The same step in plain autograd ops, written from the equations (the test oracle)."""
        (h_prev, c_prev), (p_i, p_f, p_o) = state, params
        hrec = h_prev if hrec is None else hrec
        a = gi + hrec @ w_hh.t() + (0 if b_hh is None else b_hh)
        ai, af, ag, ao = a.chunk(4, 1)
        i, f = torch.sigmoid(ai + p_i * c_prev), torch.sigmoid(af + p_f * c_prev)
        c = f * c_prev + i * torch.tanh(ag)
        o = torch.sigmoid(ao + p_o * c)
        return o * torch.tanh(c), c


@fast_path(PeepholeLSTM)
class FusedPeepholeLSTM(OnKernels, PeepholeLSTM):
    """The same cell through its compiled time loops (rnnkit/kernels/peephole_lstm.cpp: the
    rows above, in the kernels' shared loop); its Python steps run where the loop cannot
    (resets, zoneout)."""

    def forward_loop(self, sched, gi, S, cache, h0, w_hh_t, b_hh, mask, params):
        acts, tanh_c = cache
        p_i, p_f, p_o = (p.contiguous() for p in params)
        self.k.peephole_fwd_loop(gemm=self.k.gemm, n_steps=sched.T, plan=loop_plan(sched),
                                 H=tanh_c.shape[1], w_hh_t=w_hh_t, mask=contiguous(mask),
                                 p_i=p_i, p_f=p_f, p_o=p_o, acts=acts, S_h=S[0], S_c=S[1],
                                 tc=tanh_c, h0=h0[0].contiguous(), c0=h0[1].contiguous())

    def backward_loop(self, sched, dS, dG, dGh, cache, S, h0, dh0, w_hh, mask, params):
        """Returns what :meth:`param_grads` reads: c_{t-1} and c_t of every token."""
        acts, tanh_c = cache
        p_i, p_f, p_o = (p.contiguous() for p in params)
        c0 = h0[1].contiguous()
        self.k.peephole_bwd_loop(gemm=self.k.gemm, n_steps=sched.T, plan=loop_plan(sched),
                                 H=tanh_c.shape[1], w_hh=w_hh.contiguous(),
                                 mask=contiguous(mask), p_i=p_i, p_f=p_f, p_o=p_o, acts=acts,
                                 S_c=S[1], tc=tanh_c, c0=c0, dS_h=dS[0], dS_c=dS[1], dG=dG,
                                 dh0=dh0[0], dc0=dh0[1])
        return (None, None, None, sched.prev_matrix(S[1], c0), S[1])
