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

:func:`fused` picks the variant for a tensor: CPU, float32/float64, kernels built. A cell
outside this file gets its variant the same way, in its own file (``@fast_path(MyCell)`` on a
subclass of :class:`OnKernels` and the cell; docs/own-cell.md, rnnkit/cells/peephole_lstm.py).
"""
import torch

from rnnkit import kernels
from rnnkit.cells.gru import GRUMath
from rnnkit.cells.gru_ln import LayerNormGRUMath, LayerNormVanillaMath
from rnnkit.cells.layer_norm import EPS
from rnnkit.cells.lstm import LSTMMath
from rnnkit.cells.lstm_ln import LayerNormLSTMMath
from rnnkit.cells.rnn import VanillaMath


def loop_plan(sched):
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
        plan = sched._kernel_plan = torch.tensor(rows, dtype=torch.int64, device="cpu")
    return plan


def contiguous(t):
    """t made contiguous, or None for None (a recurrent-dropout mask, an optional bias)."""
    return t.contiguous() if t is not None else None


_mask = contiguous


def _unit(t):
    """t (b, D) with unit column stride (the kernels take any row stride, 0 for a broadcast)."""
    return t if t.stride(1) == 1 else t.contiguous()


# Python cell class -> its kernel-backed variant (a subclass of both OnKernels and the cell)
_FUSED = {}
_made = {}


def fast_path(cell_class):
    """Class decorator: the decorated class is ``cell_class``'s kernel-backed variant, what
    :func:`fused` hands the BPTT node for CPU float32/float64 tensors once the kernels are built.
    It subclasses :class:`OnKernels` and ``cell_class`` and adds ``forward_loop`` /
    ``backward_loop`` (and, where it has step kernels, ``forward_step`` / ``backward_step``);
    its instances carry the cell's own attributes and ``k``, the kernels of the dtype."""
    def register(variant):
        if not (issubclass(variant, OnKernels) and issubclass(variant, cell_class)):
            raise TypeError(f"{variant.__name__} must subclass OnKernels and {cell_class.__name__}")
        _FUSED[cell_class] = variant
        return variant
    return register


class OnKernels:
    """What every fused cell adds to its Python cell: the kernels of one dtype (``k``, set by
    :func:`fused`), and whether a GEMM was found for its compiled time loops."""

    k = None

    @property
    def has_loops(self):
        return self.k.gemm is not None


@fast_path(LSTMMath)
class FusedLSTMMath(OnKernels, LSTMMath):
    def forward_loop(self, sched, gi, S, cache, h0, w_hh_t, b_hh, mask, params):
        """Every step of :meth:`forward_step` in one call (the GEMM is torch's BLAS)."""
        (acts, tanh_c), plan = cache, loop_plan(sched)
        h0, c0 = (h.contiguous() for h in h0)
        mask = _mask(mask)
        self.k.lstm_fwd_loop(gemm=self.k.gemm, n_steps=sched.T, plan=plan, H=tanh_c.shape[1],
                             w_hh_t=w_hh_t, mask=mask, acts=acts, S_h=S[0], S_c=S[1], tc=tanh_c,
                             h0=h0, c0=c0)

    def backward_loop(self, sched, dS, dG, dGh, cache, S, h0, dh0, w_hh, mask, params):
        """Every step of :meth:`backward_step`, in reverse, in one call."""
        (acts, tanh_c), plan = cache, loop_plan(sched)
        c0, w_hh, mask = h0[1].contiguous(), w_hh.contiguous(), _mask(mask)
        self.k.lstm_bwd_loop(gemm=self.k.gemm, n_steps=sched.T, plan=plan, H=tanh_c.shape[1],
                             w_hh=w_hh, mask=mask, acts=acts, S_c=S[1], tc=tanh_c, c0=c0,
                             dS_h=dS[0], dS_c=dS[1], dG=dG, dh0=dh0[0], dc0=dh0[1])
        return ()

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        (_, c_prev), (acts, tanh_c) = prev, cache
        acts.addmm_(hrec, w_hh_t)                                       # a_t
        c_prev = _unit(c_prev)
        b, H = tanh_c.shape
        self.k.lstm_fwd(b=b, H=H, acts=acts, cp=c_prev, ld_cp=c_prev.stride(0), c=out[1],
                        h=out[0], tc=tanh_c)

    def prepare_backward(self, cache, states, prev, params):
        acts, tanh_c = cache
        return (acts, tanh_c, prev[1].contiguous())

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        (dh, dc), (acts, tanh_c, c_prev) = dstate, pre
        b, H = dh.shape
        self.k.lstm_bwd(b=b, H=H, dh=dh, dc=dc, acts=acts, tc=tanh_c, cp=c_prev, ld_cp=H,
                        da=dgi, dcp=dprev[1])
        dhrec.addmm_(dgi, w_hh)                                         # δh_{t-1} += δa_t W_hh


@fast_path(LayerNormLSTMMath)
class FusedLayerNormLSTMMath(OnKernels, LayerNormLSTMMath):
    def forward_loop(self, sched, gi, S, cache, h0, w_hh_t, b_hh, mask, params):
        (acts, z, mh, rh, mc, rc, tanh_y), plan = cache, loop_plan(sched)
        h0, c0 = (h.contiguous() for h in h0)
        g_hh, b_hh_ln, g_c, b_c = (p.contiguous() for p in params)
        mask = _mask(mask)
        self.k.lnlstm_fwd_loop(gemm=self.k.gemm, n_steps=sched.T, plan=plan, H=tanh_y.shape[1],
                               w_hh_t=w_hh_t, mask=mask, gi=gi, g_hh=g_hh, b_hh=b_hh_ln,
                               g_c=g_c, b_c=b_c, acts=acts, z=z, mh=mh, rh=rh, mc=mc, rc=rc,
                               ty=tanh_y, S_h=S[0], S_c=S[1], h0=h0, c0=c0, eps=EPS)

    def backward_loop(self, sched, dS, dG, dGh, cache, S, h0, dh0, w_hh, mask, params):
        """Returns what :meth:`param_grads` reads (as :meth:`prepare_backward` does)."""
        (acts, z, mh, rh, mc, rc, tanh_y), plan = cache, loop_plan(sched)
        c0, w_hh, mask = h0[1].contiguous(), w_hh.contiguous(), _mask(mask)
        g_hh, _, g_c, _ = (p.contiguous() for p in params)
        dy = tanh_y.new_empty(tanh_y.shape)
        self.k.lnlstm_bwd_loop(gemm=self.k.gemm, n_steps=sched.T, plan=plan, H=tanh_y.shape[1],
                               w_hh=w_hh, mask=mask, acts=acts, ty=tanh_y, S_c=S[1], mc=mc,
                               rc=rc, g_c=g_c, z=z, mh=mh, rh=rh, g_hh=g_hh, c0=c0, dS_h=dS[0],
                               dS_c=dS[1], dy=dy, dG=dG, dGh=dGh, dh0=dh0[0], dc0=dh0[1])
        return (acts, tanh_y, S[1], mc, rc, None, z, mh, rh, dy)

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        (_, c_prev), (acts, z, mh, rh, mc, rc, tanh_y) = prev, cache
        g_hh, b_hh_ln, g_c, b_c = params
        torch.mm(hrec, w_hh_t, out=z)                                   # z = W_hh h_{t-1}
        c_prev = _unit(c_prev)
        b, H = tanh_y.shape
        self.k.lnlstm_fwd(b=b, H=H, gi=gi, z=z, g_hh=g_hh, b_hh=b_hh_ln, g_c=g_c, b_c=b_c,
                          cp=c_prev, ld_cp=c_prev.stride(0), acts=acts, mh=mh, rh=rh, mc=mc,
                          rc=rc, ty=tanh_y, c=out[1], h=out[0], eps=EPS)

    def prepare_backward(self, cache, states, prev, params):
        acts, z, mh, rh, mc, rc, tanh_y = cache
        dy = tanh_y.new_empty(tanh_y.shape)                             # δy_t, for δγ_c, δβ_c
        return (acts, tanh_y, states[1], mc, rc, prev[1].contiguous(), z, mh, rh, dy)

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        (dh, dc), (acts, tanh_y, c, mc, rc, c_prev, z, mh, rh, dy) = dstate, pre
        g_hh, _, g_c, _ = params
        b, H = dh.shape
        self.k.lnlstm_bwd(b=b, H=H, dh=dh, dc=dc, acts=acts, ty=tanh_y, c=c, mc=mc, rc=rc,
                          g_c=g_c, cp=c_prev, ld_cp=H, z=z, mh=mh, rh=rh, g_hh=g_hh, dy=dy,
                          da=dgi, dz=dgh, dcp=dprev[1])
        dhrec.addmm_(dgh, w_hh)                                         # δh_{t-1} += δz_t W_hh

    def param_grads(self, cache, pre, dG, dGh, dS, params):
        _, _, c, mc, rc, _, z, mh, rh, dy = pre
        return _ln_param_grads(self.k, dG, z, mh, rh) + _ln_param_grads(self.k, dy, c, mc, rc)


@fast_path(GRUMath)
class FusedGRUMath(OnKernels, GRUMath):
    def forward_loop(self, sched, gi, S, cache, h0, w_hh_t, b_hh, mask, params):
        (acts, gh), plan = cache, loop_plan(sched)
        h0, mask = h0[0].contiguous(), _mask(mask)
        b_hh = b_hh.contiguous() if b_hh is not None else None
        self.k.gru_fwd_loop(gemm=self.k.gemm, n_steps=sched.T, plan=plan, H=S[0].shape[1],
                            w_hh_t=w_hh_t, mask=mask, b_hh=b_hh, acts=acts, gh=gh, S_h=S[0],
                            h0=h0)

    def backward_loop(self, sched, dS, dG, dGh, cache, S, h0, dh0, w_hh, mask, params):
        (acts, gh), plan = cache, loop_plan(sched)
        h0, w_hh, mask = h0[0].contiguous(), w_hh.contiguous(), _mask(mask)
        self.k.gru_bwd_loop(gemm=self.k.gemm, n_steps=sched.T, plan=plan, H=S[0].shape[1],
                            w_hh=w_hh, mask=mask, acts=acts, gh=gh, S_h=S[0], h0=h0, dS_h=dS[0],
                            dG=dG, dGh=dGh, dh0=dh0[0])
        return ()

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        (h_prev,), (acts, gh) = prev, cache
        if b_hh is None:
            torch.mm(hrec, w_hh_t, out=gh)                              # W_hh h_{t-1}
        else:
            torch.addmm(b_hh, hrec, w_hh_t, out=gh)                     # ... + b_hh
        h_prev = _unit(h_prev)
        b, H = out[0].shape
        self.k.gru_fwd(b=b, H=H, acts=acts, gh=gh, hp=h_prev, ld_hp=h_prev.stride(0), h=out[0])

    def prepare_backward(self, cache, states, prev, params):
        acts, gh = cache
        return (acts, gh, prev[0].contiguous())

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        (dh,), (acts, gh, h_prev) = dstate, pre
        b, H = dh.shape
        self.k.gru_bwd(b=b, H=H, dh=dh, acts=acts, gh=gh, hp=h_prev, ld_hp=H, dgi=dgi, dgh=dgh,
                       dhp=dprev[0])
        dhrec.addmm_(dgh, w_hh)                                         # δh_{t-1} += δ(gh) W_hh


@fast_path(VanillaMath)
class FusedVanillaMath(OnKernels, VanillaMath):
    """The vanilla RNN: its step is already one matmul and one activation, so only the whole
    time loop is compiled; where it cannot run, the Python cell's steps do."""

    def forward_loop(self, sched, gi, S, cache, h0, w_hh_t, b_hh, mask, params):
        h0, mask, plan = h0[0].contiguous(), _mask(mask), loop_plan(sched)
        self.k.rnn_fwd_loop(gemm=self.k.gemm, n_steps=sched.T, plan=plan, H=S[0].shape[1],
                            w_hh_t=w_hh_t, mask=mask, relu=self.nonlinearity == "relu", gi=gi,
                            S_h=S[0], h0=h0)

    def backward_loop(self, sched, dS, dG, dGh, cache, S, h0, dh0, w_hh, mask, params):
        w_hh, mask, plan = w_hh.contiguous(), _mask(mask), loop_plan(sched)
        self.k.rnn_bwd_loop(gemm=self.k.gemm, n_steps=sched.T, plan=plan, H=S[0].shape[1],
                            w_hh=w_hh, mask=mask, relu=self.nonlinearity == "relu", S_h=S[0],
                            dS_h=dS[0], dG=dG, dh0=dh0[0])
        return ()


class LoopPre(tuple):
    """What a compiled backward loop leaves for the weight and layer-norm gradients:
    (z = W_hh h^r per token, its μ, its 1/σ, δz per token)."""


@fast_path(LayerNormGRUMath)
class FusedLayerNormGRUMath(OnKernels, LayerNormGRUMath):
    """The layer-normalised GRU: a compiled time loop; where it cannot run, the Python cell."""

    def forward_loop(self, sched, gi, S, cache, h0, w_hh_t, b_hh, mask, params):
        (acts, q, z, mu, rh), plan = cache, loop_plan(sched)
        h0, mask = h0[0].contiguous(), _mask(mask)
        g_hh, b_ln = (p.contiguous() for p in params)
        b_hh = b_hh.contiguous() if b_hh is not None else None
        self.k.lngru_fwd_loop(gemm=self.k.gemm, n_steps=sched.T, plan=plan, H=S[0].shape[1],
                              w_hh_t=w_hh_t, mask=mask, gi=gi, g_hh=g_hh, b_ln=b_ln, b_hh=b_hh,
                              acts=acts, q=q, z=z, mu=mu, rh=rh, S_h=S[0], h0=h0, eps=EPS)

    def backward_loop(self, sched, dS, dG, dGh, cache, S, h0, dh0, w_hh, mask, params):
        (acts, q, z, mu, rh), plan = cache, loop_plan(sched)
        h0, w_hh, mask = h0[0].contiguous(), w_hh.contiguous(), _mask(mask)
        g_hh = params[0].contiguous()
        dz = z.new_empty(z.shape)
        self.k.lngru_bwd_loop(gemm=self.k.gemm, n_steps=sched.T, plan=plan, H=S[0].shape[1],
                              w_hh=w_hh, mask=mask, acts=acts, q=q, z=z, mu=mu, rh=rh, g_hh=g_hh,
                              S_h=S[0], h0=h0, dS_h=dS[0], dG=dG, dGh=dGh, dZ=dz, dh0=dh0[0])
        return LoopPre((z, mu, rh, dz))

    def weight_grad_hh(self, dgh, hrec, cache, pre):
        if isinstance(pre, LoopPre):
            return pre[3].t() @ hrec                                   # Σ_t δz_t^T h^r_{t-1}
        return super().weight_grad_hh(dgh, hrec, cache, pre)

    def param_grads(self, cache, pre, dG, dGh, dS, params):
        if isinstance(pre, LoopPre):
            return _ln_param_grads(self.k, dGh, *pre[:3])               # from δq_t
        return super().param_grads(cache, pre, dG, dGh, dS, params)


@fast_path(LayerNormVanillaMath)
class FusedLayerNormVanillaMath(OnKernels, LayerNormVanillaMath):
    def forward_loop(self, sched, gi, S, cache, h0, w_hh_t, b_hh, mask, params):
        (z, mu, rh), plan = cache, loop_plan(sched)
        h0, mask = h0[0].contiguous(), _mask(mask)
        g_hh, b_ln = (p.contiguous() for p in params)
        self.k.lnrnn_fwd_loop(gemm=self.k.gemm, n_steps=sched.T, plan=plan, H=S[0].shape[1],
                              w_hh_t=w_hh_t, mask=mask, relu=self.nonlinearity == "relu", gi=gi,
                              g_hh=g_hh, b_ln=b_ln, z=z, mu=mu, rh=rh, S_h=S[0], h0=h0, eps=EPS)

    def backward_loop(self, sched, dS, dG, dGh, cache, S, h0, dh0, w_hh, mask, params):
        (z, mu, rh), plan = cache, loop_plan(sched)
        w_hh, mask = w_hh.contiguous(), _mask(mask)
        self.k.lnrnn_bwd_loop(gemm=self.k.gemm, n_steps=sched.T, plan=plan, H=S[0].shape[1],
                              w_hh=w_hh, mask=mask, relu=self.nonlinearity == "relu", z=z, mu=mu,
                              rh=rh, g_hh=params[0].contiguous(), S_h=S[0], dS_h=dS[0], dG=dG,
                              dGh=dGh, dh0=dh0[0])
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
    k.ln_param_grads(n=N, D=D, dy=dy, z=z, mu=mu, rstd=rstd, dgamma=dgamma, dbeta=dbeta)
    return dgamma, dbeta


def fused(cell, x):
    """The kernel-backed variant of ``cell`` for tensors like ``x``, or ``cell`` itself."""
    variant = _FUSED.get(type(cell))
    if variant is None:
        return cell
    k = kernels.get(x)
    if k is None:
        return cell
    key = (variant, id(k), _settings(cell))
    made = _made.get(key)
    if made is None:
        made = _made[key] = object.__new__(variant)       # the cell's own settings, and k
        made.__dict__.update(vars(cell))
        made.k = k
    return made


def _settings(cell):
    """What tells two instances of one cell class apart (e.g. the RNN's nonlinearity)."""
    try:
        key = tuple(sorted(vars(cell).items()))
        hash(key)
        return key
    except TypeError:
        return id(cell)
