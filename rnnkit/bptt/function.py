"""Backpropagation through time, written by hand: one autograd node per layer and direction.

The forward pass loops over time without recording autograd and keeps what the backward needs
(each cell's gate activations and the states). The backward walks time in reverse applying the
cell's derived step, then forms every weight gradient with one matmul over all tokens::

    G_i = X W_ih^T + b_ih                 all steps at once                  (N, G·H)
    for t = 1..T:   state_t = cell(G_i[t], state_{t-1})                      (b_t, H)
    for t = T..1:   δa[t], δstate_{t-1} += cell'(δstate_t)                   (b_t, G·H)
    δX = δA W_ih,  δW_ih = δA^T X,  δW_hh = δA_h^T H_prev,  δb = Σ_t δA      all steps at once

N is the number of tokens (T·B for a full batch, Σ lengths for a packed one), G the cell's number
of gates. The graph a layer adds is one node, whatever the sequence length. Per-step tensors are
views made once with ``split`` (one call), not indexed inside the loop.

Options that act inside the loop (recurrent dropout, zoneout, state resets, per-step outputs;
:mod:`rnnkit.bptt.options`) wrap the cell's step with their own derivatives:

    reset:       s'_{t-1} = k_t s_{t-1} + (1 - k_t) s_init     δs_{t-1} += k_t δs',  δs_init += (1 - k_t) δs'
    rec. dropout: h^r = h'_{t-1} ⊙ m                            δh'_{t-1} += δh^r ⊙ m
    zoneout:     s_t = m_t s'_{t-1} + (1 - m_t) s̃_t            δs̃_t = (1 - m_t) δs_t,  δs'_{t-1} += m_t δs_t

When ``w_ih`` is None, ``x`` is already the input half of the pre-activations (the layer formed
it with autograd, e.g. through a layer norm) and its gradient is δA itself.
"""
import weakref

import torch
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from rnnkit.bptt import telemetry
from rnnkit.bptt.options import NO_OPTIONS, StepOptions
from rnnkit.bptt.workspace import WORKSPACE, Taker
from rnnkit.cells.fused import fused


class BPTT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cell, sched, tag, opts, x, w_ih, w_hh, b_ih, b_hh, *rest):
        """x (N, I) tokens; rest: the cell's initial states (B, H) each, then (with resets) the
        states' reset values (H,) each, then the cell's extra parameters (``cell.PARAMS``).

        Returns the per-token hidden states (N, H), each state's final value (B, H) and, with
        ``opts.return_all``, every other state per token (N, H) and the gate activations.
        """
        own, S, R, cache, finals = forward_pass(ctx, cell, sched, tag, opts, x, w_ih, w_hh, b_ih,
                                                b_hh, rest, pool=True)
        if not opts.return_all:
            weakref.finalize(ctx, WORKSPACE.give, *own.taken)
            return (S[0], *finals)
        gates = (cache[0] if cache and cell.CACHED_GATES else R[0]).detach()   # R: before zoneout
        ctx.mark_non_differentiable(gates)
        return (S[0], *finals, *S[1:], gates)

    @staticmethod
    def jvp(ctx, *tangents):
        raise NotImplementedError(
            "rnnkit's recurrent layers have a hand-written backward and no forward-mode "
            "derivative outside torch.func (make_dual, check_forward_ad): torch.func.jvp runs "
            "torch's operations (a float32 LSTM on the CPU needs "
            "torch.backends.mkldnn.flags(enabled=False) there, as torch.nn.LSTM does)")

    @staticmethod
    def backward(ctx, d_out, *d_rest):
        check_first_derivatives(d_out)
        # the forward ran outside autocast (the layers leave it), and so does its backward,
        # even when loss.backward() is called inside an autocast block
        return outside_autocast(d_out, _first_derivatives, ctx, d_out, *d_rest)


def check_first_derivatives(d_out):
    """Refuse, in one line each, the backwards a hand-written derivative cannot give: a
    vmapped one (one gradient at a time) and one whose own graph is asked for."""
    ft = torch._C._functorch
    if ft.is_batchedtensor(d_out) or ft.is_legacy_batchedtensor(d_out):   # vmapped backward
        raise RuntimeError(
            "rnnkit's recurrent layers' backward runs one gradient at a time: "
            "is_grads_batched=True, jacobian(vectorize=True) and check_batched_grad need "
            "it vmapped; use vectorize=False / is_grads_batched=False, torch.func.jacrev "
            "or vmap(grad) over the model, or rnnkit.to_torch(model)")
    if torch.is_grad_enabled():   # create_graph=True: a gradient of this gradient is asked for
        raise RuntimeError(
            "rnnkit's recurrent layers give first derivatives only; create_graph=True (a "
            "gradient penalty, a Hessian) needs the gradient's own graph: use "
            "rnnkit.to_torch(model) (torch.nn's layers in a copy of it, for rnnkit's LSTM, GRU "
            "and RNN cells)")


def outside_autocast(d_out, derivatives, *args):
    """``derivatives(*args)`` with autocast off on ``d_out``'s device (a backward called inside
    an autocast block runs in the forward's dtype, as the forward did)."""
    try:
        on = torch.is_autocast_enabled(d_out.device.type)
    except RuntimeError:          # a device autocast does not know: meta (a dry run)
        on = False
    if not on:
        return derivatives(*args)
    with torch.autocast(d_out.device.type, enabled=False):
        return derivatives(*args)


@once_differentiable
def _first_derivatives(ctx, d_out, *d_rest):
    return backward_pass(ctx, d_out, d_rest)


def forward_pass(ctx, cell, sched, tag, opts, x, w_ih, w_hh, b_ih, b_hh, rest, pool):
    """The node's forward on ``ctx`` (an autograd context, or any object the backward reads the
    same attributes from): fills ctx and returns (own, S, R, cache, finals). ``pool``: the
    node-private buffers come from the workspace (``own.taken``); without it they are fresh
    tensors that may leave the node (the custom operator returns them, :mod:`rnnkit.bptt.ops`)."""
    h0, inits, params = _unpack(cell, opts, rest)
    N, sizes = x.shape[0], cell.state_sizes(w_hh)
    gi = _input_half(cell, x, w_ih, b_ih, b_hh)                          # (N, G·H)
    b_step = None if cell.FOLD_HH_BIAS else b_hh
    w_hh_t = w_hh.t().contiguous()    # (H, G·H): a contiguous operand makes the step's GEMM faster
    # buffers only this node sees come from the workspace and go back when autograd frees
    # the node (:mod:`rnnkit.bptt.workspace`); with return_all the cache and states leave it
    own = Taker(WORKSPACE, x) if pool and not opts.return_all else x
    S = [x.new_empty(N, sizes[0])] + [own.new_empty(N, h) for h in sizes[1:]]  # states per token
    R = [own.new_empty(N, h) for h in sizes] if opts.zoned else S      # the cell's own s̃_t
    if cell.TAKES_GI and w_ih is None:
        gi = gi.clone()                # the caller's tensor: the cell must not write over it
    cache = cell.alloc_cache(N, sizes, own, gi)
    whole = _whole_loop(cell, sched, opts, params)
    if whole:        # the compiled time loop: the same steps, no Python between them
        cell.forward_loop(sched, gi, S, cache, h0, w_hh_t, b_step, opts.rec_mask, params)
    else:
        _forward_steps(cell, sched, opts, gi, S, R, cache, h0, inits, params, w_hh_t, b_step)
    finals = [sched.final(s) for s in S]

    ctx.cell, ctx.sched, ctx.tag, ctx.opts, ctx.cache = cell, sched, tag, opts, cache
    ctx.whole = whole
    ctx.inner, ctx.raw = S[1:], (R if opts.zoned else None)
    ctx.biases, ctx.n_inits, ctx.gi_given = (b_ih is not None, b_hh is not None), len(inits), w_ih is None
    ctx.save_for_backward(x, w_ih, w_hh, S[0], *h0, *inits, *params)
    return own, S, R, cache, finals


def backward_pass(ctx, d_out, d_rest):
    """The node's backward from what :func:`forward_pass` left on ctx (plus ``saved_tensors``
    and ``needs_input_grad``): the gradients in BPTT.forward's argument order."""
    cell, sched, opts = ctx.cell, ctx.sched, ctx.opts
    ns = cell.N_STATES
    x, w_ih, w_hh, out, *rest = ctx.saved_tensors
    h0, inits, params = rest[:ns], rest[ns:ns + ctx.n_inits], rest[ns + ctx.n_inits:]
    d_finals, d_all = d_rest[:ns], d_rest[ns:2 * ns - 1]
    S = [out, *ctx.inner]
    R = ctx.raw if ctx.raw is not None else S
    N = out.shape[0]
    GH = x.shape[1] if ctx.gi_given else w_ih.shape[0]          # G·H: the input half's width
    # dS[k]: dL/d(state k) per token. It starts with the gradients of the outputs and of the
    # final states; each reverse step adds its contribution to the state it came from.
    tmp = Taker(WORKSPACE, x)        # the backward's own buffers: back to the workspace at the end
    dS = [tmp.copy(d_out)] + ([tmp.copy(d) for d in d_all] if opts.return_all else
                              [tmp.zeros(*s.shape) for s in S[1:]])
    for ds, df in zip(dS, d_finals):
        sched.add_final_grad(ds, df)
    dR = [tmp.new_empty(*s.shape) for s in S] if opts.zoned else dS
    dh0 = [h.new_zeros(h.shape) for h in h0]      # contiguous, whatever h0's strides
    dinit = [torch.zeros_like(i) for i in inits]
    prev = [sched.prev_matrix(s, h) for s, h in zip(S, h0)]             # (N, H) each
    if opts.keep is not None:
        prev = [torch.lerp(i.expand_as(p), p, opts.keep) for p, i in zip(prev, inits)]
    rmask = opts.rec_mask
    hrec = prev[0] if rmask is None else prev[0] * rmask[sched.batch_rows(x.device)]
    dG = (x if ctx.gi_given else tmp).new_empty(N, GH)      # dL/d(input half of a_t); δx if given
    dGh = tmp.new_empty(N, GH) if cell.SEPARATE_DGH else dG  # dL/d(recurrent half of a_t)
    if ctx.whole:
        pre = cell.backward_loop(sched, dS, dG, dGh, ctx.cache, R, h0, dh0, w_hh, rmask,
                                 params)
    else:
        pre = cell.prepare_backward(ctx.cache, R, prev, params)
        _backward_steps(cell, sched, opts, dS, dR, dG, dGh, pre, dh0, dinit, params, w_hh)
    rec = telemetry.current()
    if rec is not None:   # dS now holds the total dL/dstate of every token
        rec.record(ctx.tag, sched, dS, cell.STATES)

    need = ctx.needs_input_grad
    if ctx.gi_given:
        dx, dw_ih = (dG if need[4] else None), None
    else:
        dx = dG @ w_ih if need[4] else None                              # (N, I)
        dw_ih = dG.t() @ x if need[5] else None                          # (G·H, I)
    dw_hh = cell.weight_grad_hh(dGh, hrec, ctx.cache, pre) if need[6] else None  # (G·H, H)
    # bias gradients: column sums as a matrix-vector product (faster than sum(0) on CPU);
    # where b_hh folds into the input half, its gradient is b_ih's
    ones = dG.new_ones(N)
    db_ih = dG.t().mv(ones) if ctx.biases[0] and need[7] else None
    db_hh = None
    if ctx.biases[1] and need[8]:
        db_hh = db_ih.clone() if cell.FOLD_HH_BIAS and db_ih is not None else \
            (dG if cell.FOLD_HH_BIAS else dGh).t().mv(ones)
    dparams = cell.param_grads(ctx.cache, pre, dG, dGh, dR, params) if params else ()
    WORKSPACE.give(*tmp.taken)
    return (None, None, None, None, dx, dw_ih, dw_hh, db_ih, db_hh, *dh0, *dinit, *dparams)


def _whole_loop(cell, sched, opts, params):
    """Whether the cell's compiled time loop can run this node: a fused cell with a GEMM, and no
    reset or zoneout (recurrent dropout it takes)."""
    return getattr(cell, "has_loops", False) and opts.keep is None and not opts.zoned


def _forward_steps(cell, sched, opts, gi, S, R, cache, h0, inits, params, w_hh_t, b_step):
    """The forward time loop in Python, one cell step (and the options' wrapping) per step."""
    sp = _Split(sched)
    gi_t, S_t, cache_t = sp(gi), sp.all(S), sp.all(cache)
    R_t = sp.all(R) if R is not S else S_t
    keep_t = sp(opts.keep) if opts.keep is not None else None
    zone_t = [sp(z) if z is not None else None for z in opts.zoneout] if opts.zoned else None
    rmask = opts.rec_mask
    # per-step arguments made before the loop, so the loop does nothing but the maths
    prevs = sched.prev_views(S_t, h0)
    caches, raws = _steps(cache_t, sched.T), _steps(R_t, sched.T)
    for t in sched.order:
        prev = prevs[t] or tuple(sched.prev(t, s, h) for s, h in zip(S_t, h0))
        if keep_t is not None:                                           # s' = k s + (1-k) s_init
            prev = tuple(torch.lerp(i.expand_as(p), p, keep_t[t]) for p, i in zip(prev, inits))
        hrec = prev[0] if rmask is None else prev[0] * rmask[: prev[0].shape[0]]
        cell.forward_step(gi_t[t], prev, hrec, w_hh_t, b_step, caches[t], raws[t], params)
        if zone_t is not None:                                           # s = s̃ + m (s' - s̃)
            for k, z in enumerate(zone_t):
                if z is not None:
                    torch.lerp(R_t[k][t], prev[k], z[t], out=S_t[k][t])
                else:
                    S_t[k][t].copy_(R_t[k][t])


def _backward_steps(cell, sched, opts, dS, dR, dG, dGh, pre, dh0, dinit, params, w_hh):
    """The reverse time loop in Python: the cell's derived step and the options' derivatives."""
    rmask = opts.rec_mask
    sp = _Split(sched)
    dS_t, pre_t, dG_t = sp.all(dS), sp.all(pre), sp(dG)
    dR_t = sp.all(dR) if dR is not dS else dS_t
    dGh_t = sp(dGh) if dGh is not dG else dG_t
    keep_t = sp(opts.keep) if opts.keep is not None else None
    zone_t = [sp(z) if z is not None else None for z in opts.zoneout] if opts.zoned else None
    dsts, dRs, pres = sched.prev_views(dS_t, dh0), _steps(dR_t, sched.T), _steps(pre_t, sched.T)
    for t in reversed(sched.order):
        dst = dsts[t] or tuple(sched.prev_grad(t, d, h) for d, h in zip(dS_t, dh0))  # δs_{t-1}
        dprev = dst if keep_t is None else tuple(torch.zeros_like(d) for d in dst)  # δs'_{t-1}
        if zone_t is not None:
            for k, z in enumerate(zone_t):
                if z is None:
                    dR_t[k][t].copy_(dS_t[k][t])
                else:
                    torch.mul(dS_t[k][t], 1 - z[t], out=dR_t[k][t])    # δs̃_t = (1 - m) δs_t
                    dprev[k].addcmul_(dS_t[k][t], z[t])                # δs'_{t-1} += m δs_t
        b = dprev[0].shape[0]
        dhrec = dprev[0] if rmask is None else dprev[0].new_zeros(b, dprev[0].shape[1])
        cell.backward_step(dRs[t], pres[t], w_hh, dG_t[t], dGh_t[t], dprev, dhrec, params)
        if rmask is not None:
            dprev[0].addcmul_(dhrec, rmask[:b])                          # δh' += δh^r ⊙ m
        if keep_t is not None:
            k_t = keep_t[t]
            for d, dp, di in zip(dst, dprev, dinit):
                d.addcmul_(dp, k_t)                                      # δs_{t-1} += k δs'
                di.add_(((1 - k_t) * dp).sum(0))                         # δs_init += (1-k) δs'
        if dsts[t] is None:
            for d, steps, h in zip(dst, dS_t, dh0):
                sched.scatter_prev_grad(t, d, steps, h)


def _unpack(cell, opts, rest):
    ns = cell.N_STATES
    n_init = ns if opts.keep is not None else 0
    return rest[:ns], rest[ns:ns + n_init], rest[ns + n_init:]


def _input_half(cell, x, w_ih, b_ih, b_hh):
    """X W_ih^T + b_ih (+ b_hh where it folds): all steps in one matmul (F.linear: measured
    faster on CPU than addmm with the transposed weight view)."""
    if w_ih is None:
        return x.contiguous()
    bias = b_ih
    if cell.FOLD_HH_BIAS and b_hh is not None:
        bias = b_hh if bias is None else bias + b_hh
    return F.linear(x, w_ih, bias)


class _Split:
    """Per-step views of (N, ...) buffers, made with one split/unbind call each."""

    def __init__(self, sched):
        self.sched = sched

    def __call__(self, buf):
        s = self.sched
        return buf.unflatten(0, (s.T, s.B)).unbind(0) if s.uniform else buf.split(s.sizes)

    def all(self, bufs):
        return [self(b) for b in bufs]


def _steps(split_bufs, T):
    """[(buf_0[t], buf_1[t], ...) for t]: one tuple of views per step."""
    return list(zip(*split_bufs)) if split_bufs else [()] * T


LOW_PRECISION = (torch.bfloat16, torch.float16)


def _in_float32(cell, sched, x, w_ih, w_hh, b_ih, b_hh, h0, tag, opts, inits, params):
    """A bfloat16 or float16 layer on the CPU: the node runs in float32 (the compiled kernels
    are float32 and float64; step by step in half precision it took 7-18 times as long) and
    its outputs come back in the layer's dtype, as oneDNN's half-precision RNNs accumulate in
    float32 too. The casts are autograd's, so the gradients reach the half-precision weights."""
    up = lambda t: None if t is None else t.float()                          # noqa: E731
    zone = None if opts.zoneout is None else tuple(map(up, opts.zoneout))
    res = run(cell, sched, up(x), up(w_ih), up(w_hh), up(b_ih), up(b_hh), tuple(map(up, h0)), tag,
              StepOptions(up(opts.rec_mask), zone, up(opts.keep), opts.return_all),
              tuple(map(up, inits)), tuple(map(up, params)))
    down = lambda t: t.to(x.dtype)                                          # noqa: E731
    out, finals = down(res[0]), tuple(map(down, res[1]))
    if opts.return_all:
        return out, finals, tuple(map(down, res[2])), down(res[3])
    return out, finals


def run(cell, sched, x, w_ih, w_hh, b_ih, b_hh, h0, tag=None, opts=None, inits=(), params=()):
    """One layer, one direction. Returns (out (N, H), finals tuple[, per-step states, gates])."""
    opts = opts or NO_OPTIONS
    if x.dtype in LOW_PRECISION and x.device.type == "cpu":   # compiled too: the same rounding
        return _in_float32(cell, sched, x, w_ih, w_hh, b_ih, b_hh, h0, tag, opts, inits, params)
    if torch.compiler.is_compiling():     # dynamo or export: the custom operators (bptt/ops.py)
        from rnnkit.bptt import ops
        return ops.run(cell, sched, x, w_ih, w_hh, b_ih, b_hh, h0, opts, inits, params, tag)
    if type(x) in (torch.Tensor, torch.nn.Parameter):   # not a FakeTensor: it says "cpu" and
        cell = fused(cell, x)         # has no data. The cell through the compiled kernels, if built
    res = BPTT.apply(cell, sched, tag, opts, x, w_ih, w_hh, b_ih, b_hh, *h0, *inits, *params)
    out, finals = res[0], tuple(res[1:1 + cell.N_STATES])
    if opts.return_all:
        return out, finals, tuple(res[1 + cell.N_STATES:-1]), res[-1]
    return out, finals
