"""One step of torch's cells (LSTM, GRU, RNN) with its derivative written by hand: what an
``rnnkit.LSTMCell`` / ``GRUCell`` / ``RNNCell`` step is when autograd records it.

The layers' node (:mod:`rnnkit.bptt.function`) is made for a whole sequence: its schedule, its
workspace and its compiled time loop cost more than the arithmetic of one step at a small batch
(a recorded LSTMCell step at batch 1 took twice torch.nn's time). A user's own loop over a cell
records one step at a time, so the step has a node of its own, with the same derivatives::

    a = x W_ih^T + b_ih + h W_hh^T + b_hh                       (B, G·H)
    LSTM: i, f, g, o = σ, σ, tanh, σ of a's quarters;  c' = f c + i g;  h' = o tanh(c')
      δo = δh' tanh(c');  δc = δc' + δh' o (1 - tanh²(c'));  δi = δc g;  δf = δc c;  δg = δc i
      δa = [δi i(1-i), δf f(1-f), δg (1-g²), δo o(1-o)];  δc_prev = δc f
    GRU (torch's: the reset gate on the recurrent half of n):
      r, z = σ of the sums' first two thirds;  n = tanh(a_i,n + r a_h,n);  h' = (1-z) n + z h
      δn = δh' (1-z);  δz = δh' (h - n);  δa_n = δn (1-n²);  δr = δa_n a_h,n
      δa_i = [δr r(1-r), δz z(1-z), δa_n];  δa_h = [.., .., δa_n r];  δh_prev = δh' z + δa_h W_hh
    RNN: h' = tanh(a) or relu(a);  δa = δh' (1-h'²) or δh' [h' > 0]
    δx = δa_i W_ih,  δh_prev += δa_h W_hh,  δW_ih = δa_i^T x,  δW_hh = δa_h^T h,  δb = Σ_rows δa
"""
import torch

from rnnkit.bptt import telemetry
from rnnkit.bptt.function import BPTT, check_first_derivatives, outside_autocast
from rnnkit.bptt.schedule import Schedule

MODES = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")


class CellStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, mode, tag, x, w_ih, w_hh, b_ih, b_hh, *states):
        """x (B, I); states: h (B, H) (and c for the LSTM). Returns the new states."""
        gi = x @ w_ih.t() if b_ih is None else torch.addmm(b_ih, x, w_ih.t())    # (B, G·H)
        h = states[0]
        gh = h @ w_hh.t() if b_hh is None else torch.addmm(b_hh, h, w_hh.t())    # (B, G·H)
        ctx.mode, ctx.tag, ctx.biases = mode, tag, (b_ih is not None, b_hh is not None)
        if mode == "LSTM":
            i, f, g, o = gi.add_(gh).chunk(4, 1)
            i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
            c = torch.addcmul(f * states[1], i, g)
            tc = c.tanh()
            ctx.save_for_backward(x, w_ih, w_hh, h, states[1], i, f, g, o, tc)
            return o * tc, c
        if mode == "GRU":
            H = h.shape[1]
            rz = gi[:, :2 * H].add_(gh[:, :2 * H]).sigmoid_()
            r, z = rz[:, :H], rz[:, H:]
            hn = gh[:, 2 * H:]
            n = torch.addcmul(gi[:, 2 * H:], r, hn).tanh_()
            ctx.save_for_backward(x, w_ih, w_hh, h, r, z, n, hn)
            return (torch.lerp(n, h, z),)          # (1 - z) n + z h
        out = gi.add_(gh)
        out = out.tanh_() if mode == "RNN_TANH" else out.relu_()
        ctx.save_for_backward(x, w_ih, w_hh, h, out)
        return (out,)

    @staticmethod
    def jvp(ctx, *tangents):
        return BPTT.jvp(ctx, *tangents)

    @staticmethod
    def backward(ctx, *d_states):
        check_first_derivatives(d_states[0])   # (autograd gives zeros for an unused output)
        return outside_autocast(d_states[0], _derivatives, ctx, *d_states)


def _derivatives(ctx, *d_states):
    mode, saved = ctx.mode, ctx.saved_tensors   # (read once: a checkpoint's hooks unpack once)
    rec, dc_prev = telemetry.current(), None
    with torch.no_grad():
        if mode == "LSTM":
            x, w_ih, w_hh, h, c0, i, f, g, o, tc = saved
            dh, dc = d_states
            dc = torch.addcmul(dc, dh * o, 1 - tc * tc)   # the total dL/dc', through h' too
            da = torch.cat([dc * g * i * (1 - i), dc * c0 * f * (1 - f),
                            dc * i * (1 - g * g), dh * tc * o * (1 - o)], 1)      # (B, 4H)
            da_h, dh_prev, dc_prev = da, None, dc * f
            d_states = [dh, dc]
        elif mode == "GRU":
            x, w_ih, w_hh, h, r, z, n, hn = saved
            dh, = d_states
            dan = dh * (1 - z) * (1 - n * n)
            dr = dan * hn
            da = torch.cat([dr * r * (1 - r), dh * (h - n) * z * (1 - z), dan], 1)   # (B, 3H)
            da_h = torch.cat([da[:, :-n.shape[1]], dan * r], 1)
            dh_prev = dh * z
        else:
            x, w_ih, w_hh, h, out = saved
            dh, = d_states
            da = dh * (1 - out * out) if mode == "RNN_TANH" else dh * (out > 0)
            da_h, dh_prev = da, None
        if rec is not None:   # the step's total dL/dstate, as a layer's node records it
            rec.record(ctx.tag, Schedule.full(1, dh.shape[0]), d_states,
                       ("h", "c") if mode == "LSTM" else ("h",))
        need = ctx.needs_input_grad
        dx = da @ w_ih if need[2] else None
        dw_ih = da.t() @ x if need[3] else None
        dw_hh = da_h.t() @ h if need[4] else None
        db_ih = da.sum(0) if need[5] and ctx.biases[0] else None
        db_hh = da_h.sum(0) if need[6] and ctx.biases[1] else None
        if need[7]:
            dh_prev = da_h @ w_hh if dh_prev is None else torch.addmm(dh_prev, da_h, w_hh)
        else:
            dh_prev = None
    rest = (dc_prev if need[8] else None,) if mode == "LSTM" else ()
    return (None, None, dx, dw_ih, dw_hh, db_ih, db_hh, dh_prev, *rest)
