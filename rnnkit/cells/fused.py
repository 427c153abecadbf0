"""The cells through the fused CPU kernels (:mod:`rnnkit.kernels`).

Each class here is its Python cell (whose maths and docstrings it keeps) with two ways to run:

- ``forward_loop`` / ``backward_loop``: the whole time loop in one kernel call, the recurrent
  matmul of each step through torch's own BLAS and everything between matmuls in one pass per
  row. The BPTT node uses them wherever no reset or zoneout acts between steps
  (:func:`rnnkit.bptt.function._whole_loop`); ``has_loops`` says whether a GEMM was found.
- ``forward_step`` / ``backward_step`` (LSTM, layer-normalised LSTM, GRU): one step's
  element-wise part in one call, for the Python loop that resets and zoneout need; the other
  cells run their Python steps there.

The backward reads the forward's buffers directly, so ``prepare_backward`` forms nothing for
all tokens (less memory than the Python cells' precomputed factors).

:func:`fused` picks the variant for a tensor: CPU, float32/float64, kernels built.
"""
import torch

from rnnkit import kernels
from rnnkit.cells.gru import GRUMath
from rnnkit.cells.gru_ln import LayerNormGRUMath, LayerNormVanillaMath
from rnnkit.cells.layer_norm import EPS
from rnnkit.cells.lstm import LSTMMath
from rnnkit.cells.lstm_ln import LayerNormLSTMMath
from rnnkit.cells.rnn import VanillaMath


def _plan(sched):
    """The time loop's plan for the kernels (common.h ``Step``): per step in the order the loop
    runs, (first token row, rows, first row in S of the entering state, how many of its rows
    come from S; the rest are the initial state's). Made once per schedule."""
    plan = getattr(sched, "_kernel_plan", None)
    if plan is None:
        rows = []
        for t in sched.order:
            segs = sched.segments[t]                    # [(0: S / 1: h0, start, count), ...]
            from_s = [seg for seg in segs if seg[0] == 0]
            prev, nprev = (from_s[0][1], from_s[0][2]) if from_s else (-1, 0)
            assert all(seg[0] == 1 and seg[1] == nprev for seg in segs[len(from_s):])
            rows.append((sched.offsets[t], sched.sizes[t], prev, nprev))
        plan = sched._kernel_plan = torch.tensor(rows, dtype=torch.int64)
    return plan


def _mask(m):
    return m.contiguous() if m is not None else None


def _ptr(t):
    """A tensor's address, or a null pointer for None."""
    return t.data_ptr() if t is not None else None


def _unit(t):
    """t (b, D) with unit column stride (the kernels take any row stride, 0 for a broadcast)."""
    return t if t.stride(1) == 1 else t.contiguous()


class _OnKernels:
    """What every fused cell adds to its Python cell: the kernels of one dtype (``k``), and
    whether a GEMM was found for its compiled time loops."""

    def __init__(self, k, *cell_args):
        super().__init__(*cell_args)
        self.k = k

    @property
    def has_loops(self):
        return self.k.gemm is not None


class FusedLSTMMath(_OnKernels, LSTMMath):
    def forward_loop(self, sched, gi, S, cache, h0, w_hh_t, b_hh, mask, params):
        """Every step of :meth:`forward_step` in one call (the GEMM is torch's BLAS)."""
        (acts, tanh_c), plan = cache, _plan(sched)
        h0, c0 = (h.contiguous() for h in h0)
        mask = _mask(mask)
        self.k.lstm_fwd_loop(self.k.gemm, sched.T, plan.data_ptr(), tanh_c.shape[1],
                             w_hh_t.data_ptr(), _ptr(mask), acts.data_ptr(), S[0].data_ptr(),
                             S[1].data_ptr(), tanh_c.data_ptr(), h0.data_ptr(), c0.data_ptr())

    def backward_loop(self, sched, dS, dG, dGh, cache, S, h0, dh0, w_hh, mask, params):
        """Every step of :meth:`backward_step`, in reverse, in one call."""
        (acts, tanh_c), plan = cache, _plan(sched)
        c0, w_hh, mask = h0[1].contiguous(), w_hh.contiguous(), _mask(mask)
        self.k.lstm_bwd_loop(self.k.gemm, sched.T, plan.data_ptr(), tanh_c.shape[1],
                             w_hh.data_ptr(), _ptr(mask), acts.data_ptr(), S[1].data_ptr(),
                             tanh_c.data_ptr(), c0.data_ptr(), dS[0].data_ptr(),
                             dS[1].data_ptr(), dG.data_ptr(), dh0[0].data_ptr(),
                             dh0[1].data_ptr())
        return ()

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        (_, c_prev), (acts, tanh_c) = prev, cache
        acts.addmm_(hrec, w_hh_t)                                       # a_t
        c_prev = _unit(c_prev)
        b, H = tanh_c.shape
        self.k.lstm_fwd(b, H, acts.data_ptr(), c_prev.data_ptr(), c_prev.stride(0),
                        out[1].data_ptr(), out[0].data_ptr(), tanh_c.data_ptr())

    def prepare_backward(self, cache, states, prev, params):
        acts, tanh_c = cache
        return (acts, tanh_c, prev[1].contiguous())

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        (dh, dc), (acts, tanh_c, c_prev) = dstate, pre
        b, H = dh.shape
        self.k.lstm_bwd(b, H, dh.data_ptr(), dc.data_ptr(), acts.data_ptr(), tanh_c.data_ptr(),
                        c_prev.data_ptr(), H, dgi.data_ptr(), dprev[1].data_ptr())
        dhrec.addmm_(dgi, w_hh)                                         # δh_{t-1} += δa_t W_hh


class FusedLayerNormLSTMMath(_OnKernels, LayerNormLSTMMath):
    def forward_loop(self, sched, gi, S, cache, h0, w_hh_t, b_hh, mask, params):
        (acts, z, mh, rh, mc, rc, tanh_y), plan = cache, _plan(sched)
        h0, c0 = (h.contiguous() for h in h0)
        g_hh, b_hh_ln, g_c, b_c = (p.contiguous() for p in params)
        mask = _mask(mask)
        self.k.lnlstm_fwd_loop(self.k.gemm, sched.T, plan.data_ptr(), tanh_y.shape[1],
                               w_hh_t.data_ptr(), _ptr(mask), gi.data_ptr(), g_hh.data_ptr(),
                               b_hh_ln.data_ptr(), g_c.data_ptr(), b_c.data_ptr(),
                               acts.data_ptr(), z.data_ptr(), mh.data_ptr(), rh.data_ptr(),
                               mc.data_ptr(), rc.data_ptr(), tanh_y.data_ptr(), S[0].data_ptr(),
                               S[1].data_ptr(), h0.data_ptr(), c0.data_ptr(), EPS)

    def backward_loop(self, sched, dS, dG, dGh, cache, S, h0, dh0, w_hh, mask, params):
        """Returns what :meth:`param_grads` reads (as :meth:`prepare_backward` does)."""
        (acts, z, mh, rh, mc, rc, tanh_y), plan = cache, _plan(sched)
        c0, w_hh, mask = h0[1].contiguous(), w_hh.contiguous(), _mask(mask)
        g_hh, _, g_c, _ = (p.contiguous() for p in params)
        dy = tanh_y.new_empty(tanh_y.shape)
        self.k.lnlstm_bwd_loop(self.k.gemm, sched.T, plan.data_ptr(), tanh_y.shape[1],
                               w_hh.data_ptr(), _ptr(mask), acts.data_ptr(), tanh_y.data_ptr(),
                               S[1].data_ptr(), mc.data_ptr(), rc.data_ptr(), g_c.data_ptr(),
                               z.data_ptr(), mh.data_ptr(), rh.data_ptr(), g_hh.data_ptr(),
                               c0.data_ptr(), dS[0].data_ptr(), dS[1].data_ptr(), dy.data_ptr(),
                               dG.data_ptr(), dGh.data_ptr(), dh0[0].data_ptr(),
                               dh0[1].data_ptr())
        return (acts, tanh_y, S[1], mc, rc, None, z, mh, rh, dy)

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        (_, c_prev), (acts, z, mh, rh, mc, rc, tanh_y) = prev, cache
        g_hh, b_hh_ln, g_c, b_c = params
        torch.mm(hrec, w_hh_t, out=z)                                   # z = W_hh h_{t-1}
        c_prev = _unit(c_prev)
        b, H = tanh_y.shape
        self.k.lnlstm_fwd(b, H, gi.data_ptr(), z.data_ptr(), g_hh.data_ptr(), b_hh_ln.data_ptr(),
                          g_c.data_ptr(), b_c.data_ptr(), c_prev.data_ptr(), c_prev.stride(0), acts.data_ptr(), mh.data_ptr(),
                          rh.data_ptr(), mc.data_ptr(), rc.data_ptr(), tanh_y.data_ptr(),
                          out[1].data_ptr(), out[0].data_ptr(), EPS)

    def prepare_backward(self, cache, states, prev, params):
        acts, z, mh, rh, mc, rc, tanh_y = cache
        dy = tanh_y.new_empty(tanh_y.shape)                             # δy_t, for δγ_c, δβ_c
        return (acts, tanh_y, states[1], mc, rc, prev[1].contiguous(), z, mh, rh, dy)

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        (dh, dc), (acts, tanh_y, c, mc, rc, c_prev, z, mh, rh, dy) = dstate, pre
        g_hh, _, g_c, _ = params
        b, H = dh.shape
        self.k.lnlstm_bwd(b, H, dh.data_ptr(), dc.data_ptr(), acts.data_ptr(), tanh_y.data_ptr(),
                          c.data_ptr(), mc.data_ptr(), rc.data_ptr(), g_c.data_ptr(),
                          c_prev.data_ptr(), H, z.data_ptr(), mh.data_ptr(), rh.data_ptr(),
                          g_hh.data_ptr(), dy.data_ptr(), dgi.data_ptr(), dgh.data_ptr(),
                          dprev[1].data_ptr())
        dhrec.addmm_(dgh, w_hh)                                         # δh_{t-1} += δz_t W_hh

    def param_grads(self, cache, pre, dG, dGh, dS, params):
        _, _, c, mc, rc, _, z, mh, rh, dy = pre
        return _ln_param_grads(self.k, dG, z, mh, rh) + _ln_param_grads(self.k, dy, c, mc, rc)


class FusedGRUMath(_OnKernels, GRUMath):
    def forward_loop(self, sched, gi, S, cache, h0, w_hh_t, b_hh, mask, params):
        (acts, gh), plan = cache, _plan(sched)
        h0, mask = h0[0].contiguous(), _mask(mask)
        b_hh = b_hh.contiguous() if b_hh is not None else None
        self.k.gru_fwd_loop(self.k.gemm, sched.T, plan.data_ptr(), S[0].shape[1],
                            w_hh_t.data_ptr(), _ptr(mask), _ptr(b_hh), acts.data_ptr(),
                            gh.data_ptr(), S[0].data_ptr(), h0.data_ptr())

    def backward_loop(self, sched, dS, dG, dGh, cache, S, h0, dh0, w_hh, mask, params):
        (acts, gh), plan = cache, _plan(sched)
        h0, w_hh, mask = h0[0].contiguous(), w_hh.contiguous(), _mask(mask)
        self.k.gru_bwd_loop(self.k.gemm, sched.T, plan.data_ptr(), S[0].shape[1],
                            w_hh.data_ptr(), _ptr(mask), acts.data_ptr(), gh.data_ptr(),
                            S[0].data_ptr(), h0.data_ptr(), dS[0].data_ptr(), dG.data_ptr(),
                            dGh.data_ptr(), dh0[0].data_ptr())
        return ()

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        (h_prev,), (acts, gh) = prev, cache
        if b_hh is None:
            torch.mm(hrec, w_hh_t, out=gh)                              # W_hh h_{t-1}
        else:
            torch.addmm(b_hh, hrec, w_hh_t, out=gh)                     # ... + b_hh
        h_prev = _unit(h_prev)
        b, H = out[0].shape
        self.k.gru_fwd(b, H, acts.data_ptr(), gh.data_ptr(), h_prev.data_ptr(), h_prev.stride(0),
                       out[0].data_ptr())

    def prepare_backward(self, cache, states, prev, params):
        acts, gh = cache
        return (acts, gh, prev[0].contiguous())

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        (dh,), (acts, gh, h_prev) = dstate, pre
        b, H = dh.shape
        self.k.gru_bwd(b, H, dh.data_ptr(), acts.data_ptr(), gh.data_ptr(), h_prev.data_ptr(), H,
                       dgi.data_ptr(), dgh.data_ptr(), dprev[0].data_ptr())
        dhrec.addmm_(dgh, w_hh)                                         # δh_{t-1} += δ(gh) W_hh


class FusedVanillaMath(_OnKernels, VanillaMath):
    """The vanilla RNN: its step is already one matmul and one activation, so only the whole
    time loop is compiled; where it cannot run, the Python cell's steps do."""

    def forward_loop(self, sched, gi, S, cache, h0, w_hh_t, b_hh, mask, params):
        h0, mask, plan = h0[0].contiguous(), _mask(mask), _plan(sched)
        self.k.rnn_fwd_loop(self.k.gemm, sched.T, plan.data_ptr(), S[0].shape[1],
                            self.nonlinearity == "relu", w_hh_t.data_ptr(), _ptr(mask),
                            gi.data_ptr(), S[0].data_ptr(), h0.data_ptr())

    def backward_loop(self, sched, dS, dG, dGh, cache, S, h0, dh0, w_hh, mask, params):
        w_hh, mask, plan = w_hh.contiguous(), _mask(mask), _plan(sched)
        self.k.rnn_bwd_loop(self.k.gemm, sched.T, plan.data_ptr(), S[0].shape[1],
                            self.nonlinearity == "relu", w_hh.data_ptr(), _ptr(mask),
                            S[0].data_ptr(), dS[0].data_ptr(), dG.data_ptr(),
                            dh0[0].data_ptr())
        return ()


class LoopPre(tuple):
    """What a compiled backward loop leaves for the weight and layer-norm gradients:
    (z = W_hh h^r per token, its μ, its 1/σ, δz per token)."""


class FusedLayerNormGRUMath(_OnKernels, LayerNormGRUMath):
    """The layer-normalised GRU: a compiled time loop; where it cannot run, the Python cell."""

    def forward_loop(self, sched, gi, S, cache, h0, w_hh_t, b_hh, mask, params):
        (acts, q, z, mu, rh), plan = cache, _plan(sched)
        h0, mask = h0[0].contiguous(), _mask(mask)
        g_hh, b_ln = (p.contiguous() for p in params)
        b_hh = b_hh.contiguous() if b_hh is not None else None
        self.k.lngru_fwd_loop(self.k.gemm, sched.T, plan.data_ptr(), S[0].shape[1],
                              w_hh_t.data_ptr(), _ptr(mask), gi.data_ptr(), g_hh.data_ptr(),
                              b_ln.data_ptr(), _ptr(b_hh), acts.data_ptr(), q.data_ptr(),
                              z.data_ptr(), mu.data_ptr(), rh.data_ptr(), S[0].data_ptr(),
                              h0.data_ptr(), EPS)

    def backward_loop(self, sched, dS, dG, dGh, cache, S, h0, dh0, w_hh, mask, params):
        (acts, q, z, mu, rh), plan = cache, _plan(sched)
        h0, w_hh, mask = h0[0].contiguous(), w_hh.contiguous(), _mask(mask)
        g_hh = params[0].contiguous()
        dz = z.new_empty(z.shape)
        self.k.lngru_bwd_loop(self.k.gemm, sched.T, plan.data_ptr(), S[0].shape[1],
                              w_hh.data_ptr(), _ptr(mask), acts.data_ptr(), q.data_ptr(),
                              z.data_ptr(), mu.data_ptr(), rh.data_ptr(), g_hh.data_ptr(),
                              S[0].data_ptr(), h0.data_ptr(), dS[0].data_ptr(), dG.data_ptr(),
                              dGh.data_ptr(), dz.data_ptr(), dh0[0].data_ptr())
        return LoopPre((z, mu, rh, dz))

    def weight_grad_hh(self, dgh, hrec, cache, pre):
        if isinstance(pre, LoopPre):
            return pre[3].t() @ hrec                                   # Σ_t δz_t^T h^r_{t-1}
        return super().weight_grad_hh(dgh, hrec, cache, pre)

    def param_grads(self, cache, pre, dG, dGh, dS, params):
        if isinstance(pre, LoopPre):
            return _ln_param_grads(self.k, dGh, *pre[:3])               # from δq_t
        return super().param_grads(cache, pre, dG, dGh, dS, params)


class FusedLayerNormVanillaMath(_OnKernels, LayerNormVanillaMath):
    def forward_loop(self, sched, gi, S, cache, h0, w_hh_t, b_hh, mask, params):
        (z, mu, rh), plan = cache, _plan(sched)
        h0, mask = h0[0].contiguous(), _mask(mask)
        g_hh, b_ln = (p.contiguous() for p in params)
        self.k.lnrnn_fwd_loop(self.k.gemm, sched.T, plan.data_ptr(), S[0].shape[1],
                              self.nonlinearity == "relu", w_hh_t.data_ptr(), _ptr(mask),
                              gi.data_ptr(), g_hh.data_ptr(), b_ln.data_ptr(), z.data_ptr(),
                              mu.data_ptr(), rh.data_ptr(), S[0].data_ptr(), h0.data_ptr(), EPS)

    def backward_loop(self, sched, dS, dG, dGh, cache, S, h0, dh0, w_hh, mask, params):
        (z, mu, rh), plan = cache, _plan(sched)
        w_hh, mask = w_hh.contiguous(), _mask(mask)
        self.k.lnrnn_bwd_loop(self.k.gemm, sched.T, plan.data_ptr(), S[0].shape[1],
                              self.nonlinearity == "relu", w_hh.data_ptr(), _ptr(mask),
                              z.data_ptr(), mu.data_ptr(), rh.data_ptr(),
                              params[0].contiguous().data_ptr(), S[0].data_ptr(),
                              dS[0].data_ptr(), dG.data_ptr(), dGh.data_ptr(), dh0[0].data_ptr())
        return LoopPre((z, mu, rh, dGh))

    def param_grads(self, cache, pre, dG, dGh, dS, params):
        if isinstance(pre, LoopPre):
            return _ln_param_grads(self.k, dG, *pre[:3])                # from δa_t
        return super().param_grads(cache, pre, dG, dGh, dS, params)


def _ln_param_grads(k, dy, z, mu, rstd):
    """(δγ, δβ) = (Σ_rows δy ⊙ x̂, Σ_rows δy), x̂ = (z - μ) / σ formed on the fly."""
    N, D = dy.shape
    dy = dy.contiguous()
    dgamma, dbeta = dy.new_empty(D), dy.new_empty(D)
    k.ln_param_grads(N, D, dy.data_ptr(), z.data_ptr(), mu.data_ptr(), rstd.data_ptr(),
                     dgamma.data_ptr(), dbeta.data_ptr())
    return dgamma, dbeta


# Python cell class -> its kernel-backed variant, made from (kernels, Python cell)
_FUSED = {LSTMMath: lambda k, c: FusedLSTMMath(k),
          LayerNormLSTMMath: lambda k, c: FusedLayerNormLSTMMath(k),
          GRUMath: lambda k, c: FusedGRUMath(k),
          VanillaMath: lambda k, c: FusedVanillaMath(k, c.nonlinearity),
          LayerNormGRUMath: lambda k, c: FusedLayerNormGRUMath(k),
          LayerNormVanillaMath: lambda k, c: FusedLayerNormVanillaMath(k, c.nonlinearity)}
_made = {}


def fused(cell, x):
    """The kernel-backed variant of ``cell`` for tensors like ``x``, or ``cell`` itself."""
    make = _FUSED.get(type(cell))
    if make is None:
        return cell
    k = kernels.get(x)
    if k is None:
        return cell
    key = (type(cell), id(k), getattr(cell, "nonlinearity", None))
    if key not in _made:
        _made[key] = make(k, cell)
    return _made[key]
