"""Backpropagation through time, written by hand: one autograd node per layer and direction.

The forward pass loops over time without recording autograd and keeps what the backward needs
(each cell's gate activations and the states). The backward walks time in reverse applying the
cell's derived step, then forms every weight gradient with one matmul over all tokens:

    G_i = x_t W_ih^T + b_ih            for all t at once          (N, G·H)   before the loop
    loop t:   state_t = cell(G_i[t], state_{t-1})                            (b_t, H)
    reverse loop t:   dG[t], dstate_{t-1} = cell'(dstate_t, ...)
    dW_ih = dG^T X,  dX = dG W_ih,  dW_hh = dG_h^T H_prev,  db = Σ_t dG            after the loop

N is the number of tokens (T·B for a full batch, Σ lengths for a packed one), G the cell's number
of gates. The graph a layer adds is one node, whatever the sequence length.
"""
import torch
from torch.autograd.function import once_differentiable

from rnnkit.bptt import telemetry


class BPTT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cell, sched, x, w_ih, w_hh, b_ih, b_hh, *h0):
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
        S = [x.new_empty(N, H) for _ in h0]                                  # states per token
        cache = cell.alloc_cache(N, H, x)
        for t in sched.order:
            sl = sched.rows(t)
            prev = tuple(sched.prev(t, s, h) for s, h in zip(S, h0))
            cell.forward_step(gi[sl], prev, w_hh, b_step, cache, sl, S)
        finals = [sched.final(s) for s in S]

        ctx.cell, ctx.sched, ctx.cache, ctx.inner = cell, sched, cache, S[1:]
        ctx.has_bias = b_ih is not None
        ctx.save_for_backward(x, w_ih, w_hh, S[0], *h0)
        return (S[0], *finals)

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, *d_finals):
        cell, sched, cache = ctx.cell, ctx.sched, ctx.cache
        x, w_ih, w_hh, out, *h0 = ctx.saved_tensors
        S = [out, *ctx.inner]
        N, H = out.shape
        GH = w_hh.shape[0]
        # dS[k]: dL/d(state k at each token), gathered from the output, the final state and
        # (as the reverse walk reaches it) the step after
        dS = [d_out.contiguous().clone()] + [torch.zeros_like(s) for s in S[1:]]
        for ds, df in zip(dS, d_finals):
            sched.add_final_grad(ds, df)
        dh0 = [torch.zeros_like(h) for h in h0]
        dG = x.new_empty(N, GH)                                  # dL/d(input pre-activations)
        dGh = dG if cell.FOLD_HH_BIAS else x.new_empty(N, GH)    # dL/d(recurrent pre-activations)
        rec = telemetry.current()
        for t in reversed(sched.order):
            sl = sched.rows(t)
            prev = tuple(sched.prev(t, s, h) for s, h in zip(S, h0))
            dstate = tuple(d[sl] for d in dS)
            if rec is not None:
                rec.record(t, dstate)
            dprev = cell.backward_step(dstate, prev, w_hh, cache, sl, dG[sl], dGh[sl], S)
            for k, d in enumerate(dprev):
                sched.add_to_prev(t, d, dS[k], dh0[k])

        need = ctx.needs_input_grad
        dx = dG @ w_ih if need[2] else None                                   # (N, I)
        dw_ih = dG.t() @ x if need[3] else None                               # (G·H, I)
        dw_hh = dGh.t() @ sched.prev_matrix(out, h0[0]) if need[4] else None  # (G·H, H)
        db_ih = dG.sum(0) if ctx.has_bias and need[5] else None
        db_hh = dGh.sum(0) if ctx.has_bias and need[6] else None
        return (None, None, dx, dw_ih, dw_hh, db_ih, db_hh, *dh0)


def run(cell, sched, x, w_ih, w_hh, b_ih, b_hh, h0):
    """One layer, one direction: (out (N, H), finals tuple)."""
    out, *finals = BPTT.apply(cell, sched, x, w_ih, w_hh, b_ih, b_hh, *h0)
    return out, tuple(finals)
