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
"""
import torch
from torch.autograd.function import once_differentiable

from rnnkit.bptt import telemetry


class BPTT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cell, sched, tag, x, w_ih, w_hh, b_ih, b_hh, *h0):
        """x (N, I) tokens; h0: the cell's initial states, each (B, H).

        Returns the per-token hidden states (N, H) and each state's final value (B, H).
        """
        N, H = x.shape[0], w_hh.shape[1]
        if b_ih is None:
            gi = x @ w_ih.t()                                                # (N, G·H)
        else:
            bias = b_ih + b_hh if cell.FOLD_HH_BIAS else b_ih
            gi = torch.addmm(bias, x, w_ih.t())                              # (N, G·H)
        b_step = None if cell.FOLD_HH_BIAS else b_hh
        w_hh_t = w_hh.t().contiguous()    # (H, G·H): a contiguous operand makes the step's GEMM faster
        S = [x.new_empty(N, H) for _ in h0]                                  # states per token
        cache = cell.alloc_cache(N, H, x)
        gi_t, S_t, cache_t = _split(sched, gi), _split_all(sched, S), _split_all(sched, cache)
        for t in sched.order:
            prev = tuple(sched.prev(t, s, h) for s, h in zip(S_t, h0))
            cell.forward_step(gi_t[t], prev, w_hh_t, b_step, _at(cache_t, t), _at(S_t, t))
        finals = [sched.final(s) for s in S]

        ctx.cell, ctx.sched, ctx.tag, ctx.cache, ctx.inner = cell, sched, tag, cache, S[1:]
        ctx.has_bias = b_ih is not None
        ctx.save_for_backward(x, w_ih, w_hh, S[0], *h0)
        return (S[0], *finals)

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, *d_finals):
        cell, sched = ctx.cell, ctx.sched
        x, w_ih, w_hh, out, *h0 = ctx.saved_tensors
        S = [out, *ctx.inner]
        N, GH = out.shape[0], w_hh.shape[0]
        # dS[k]: dL/d(state k) per token. It starts with the output's and the final state's
        # gradients; each reverse step adds its contribution to the state it came from.
        dS = [d_out.contiguous().clone()] + [torch.zeros_like(s) for s in S[1:]]
        for ds, df in zip(dS, d_finals):
            sched.add_final_grad(ds, df)
        dh0 = [torch.zeros_like(h) for h in h0]
        prev = [sched.prev_matrix(s, h) for s, h in zip(S, h0)]             # (N, H) each
        pre = cell.prepare_backward(ctx.cache, S, prev)
        dG = x.new_empty(N, GH)                                  # dL/d(input half of a_t)
        dGh = dG if cell.FOLD_HH_BIAS else x.new_empty(N, GH)    # dL/d(recurrent half of a_t)
        dS_t, pre_t, dG_t, dGh_t = _split_all(sched, dS), _split_all(sched, pre), \
            _split(sched, dG), _split(sched, dGh)
        for t in reversed(sched.order):
            dprev = tuple(sched.prev_grad(t, d, h) for d, h in zip(dS_t, dh0))
            cell.backward_step(_at(dS_t, t), _at(pre_t, t), w_hh, dG_t[t], dGh_t[t], dprev)
            for d, steps, h in zip(dprev, dS_t, dh0):
                sched.scatter_prev_grad(t, d, steps, h)
        rec = telemetry.current()
        if rec is not None:   # dS now holds the total dL/dstate of every token
            rec.record(ctx.tag, sched, dS)

        need = ctx.needs_input_grad
        dx = dG @ w_ih if need[3] else None                                  # (N, I)
        dw_ih = dG.t() @ x if need[4] else None                              # (G·H, I)
        dw_hh = dGh.t() @ prev[0] if need[5] else None                       # (G·H, H)
        db_ih = dG.sum(0) if ctx.has_bias and need[6] else None
        db_hh = dGh.sum(0) if ctx.has_bias and need[7] else None
        return (None, None, None, dx, dw_ih, dw_hh, db_ih, db_hh, *dh0)


def _split(sched, buf):
    return buf.split(sched.sizes) if not sched.uniform else buf.unflatten(0, (sched.T, sched.B)).unbind(0)


def _split_all(sched, bufs):
    return [_split(sched, b) for b in bufs]


def _at(steps, t):
    return tuple(s[t] for s in steps)


def run(cell, sched, x, w_ih, w_hh, b_ih, b_hh, h0, tag=None):
    """One layer, one direction: (out (N, H), finals tuple)."""
    out, *finals = BPTT.apply(cell, sched, tag, x, w_ih, w_hh, b_ih, b_hh, *h0)
    return out, tuple(finals)
