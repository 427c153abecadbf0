"""A layer-normalised LSTM with recurrent dropout: rnnkit's BPTT against the loops users write today.

The alternatives are the same cell (Ba et al. 2016 layer norm on both gate halves and on c_t;
one recurrent-dropout mask per sequence) stepped in a Python loop over autograd, and that loop
compiled with TorchScript (warmed up 5 times first, as its profiling executor needs). One training
step = forward over the sequence + backward to the input and every parameter. The implementations
run interleaved in one process; the table gives medians and each one's time / rnnkit's.

The last row is no implementation: it is the matrix products alone that any of them must run
(the input projection, T recurrent products forward and T backward, and the three weight and
input gradients), timed the same way. No implementation can be faster than it, so it bounds the
speed-up any of them can have over another.

    python benchmarks/options_speed.py                  # B=32, T=100, H=256, the issue's point
    python benchmarks/options_speed.py --B 16 --T 200 --H 128 --reps 5
    python benchmarks/options_speed.py --breakdown      # where rnnkit's step spends its time
"""
import argparse
import collections
import statistics
import time
import warnings

import torch
from torch import nn
from torch.nn import functional as F

import rnnkit


class LoopLNLSTM(nn.Module):
    """The layer-normalised LSTM as users write it: LSTMCell-style maths in a Python loop."""

    def __init__(self, I, H, p):
        super().__init__()
        self.H, self.p = H, p
        self.w_ih = nn.Linear(I, 4 * H)
        self.w_hh = nn.Linear(H, 4 * H)
        self.ln_ih, self.ln_hh, self.ln_c = nn.LayerNorm(4 * H), nn.LayerNorm(4 * H), nn.LayerNorm(H)

    def forward(self, x):
        T, B, _ = x.shape
        h = x.new_zeros(B, self.H)
        c = x.new_zeros(B, self.H)
        mask = F.dropout(x.new_ones(B, self.H), self.p, self.training)
        gx = self.ln_ih(self.w_ih(x))                                   # (T, B, 4H)
        outs = []
        for xt in gx.unbind(0):
            a = xt + self.ln_hh(self.w_hh(h * mask))
            i, f, g, o = a.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(self.ln_c(c))
            outs.append(h)
        return torch.stack(outs), (h, c)


def step(m, x):
    out = m(x)[0]
    out.sum().backward()


class GemmFloor:
    """The matmuls of one training step of the layer, nothing else (same shapes, same order)."""

    def __init__(self, I, H):
        self.w_ih, self.w_hh = torch.randn(4 * H, I), torch.randn(4 * H, H)

    def __call__(self, x):
        T, B, I = x.shape
        H = self.w_hh.shape[1]
        X = x.detach().reshape(T * B, I)
        w_hh_t = self.w_hh.t().contiguous()
        gi = F.linear(X, self.w_ih)                                    # input projection
        h, dh = x.new_zeros(B, H), x.new_zeros(B, H)
        for z in gi.view(T, B, -1).unbind(0):                           # forward recurrence
            torch.mm(h, w_hh_t, out=z)
        for dz in gi.view(T, B, -1).unbind(0):                          # backward recurrence
            dh.addmm_(dz, self.w_hh)
        return gi.t() @ X[:, :H], gi @ self.w_ih, gi.t() @ X            # δW_hh, δx, δW_ih


def breakdown(m, x, reps):
    """Time rnnkit's step by parts: the fused kernels (wrapped), the BPTT nodes, the layer."""
    from rnnkit.bptt import function
    spent = collections.Counter()

    def timed(fn, key):
        def wrapper(*args, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                spent[key] += time.perf_counter() - t0
        return wrapper

    k = rnnkit.kernels.get(x)
    saved = {}
    if k is not None:
        for name in ("lnlstm_fwd_loop", "lnlstm_bwd_loop", "lnlstm_fwd", "lnlstm_bwd",
                     "ln_param_grads"):
            saved[name] = getattr(k, name)
            setattr(k, name, timed(saved[name], f"kernel {name}"))
    fwd, bwd = function.BPTT.forward, function.BPTT.backward
    function.BPTT.forward = staticmethod(timed(fwd, "BPTT node forward (loop + kernels + matmuls)"))
    function.BPTT.backward = staticmethod(timed(bwd, "BPTT node backward (loop + kernels + matmuls)"))
    try:
        for _ in range(3):
            step(m, x)
        spent.clear()
        for _ in range(reps):
            t0 = time.perf_counter()
            out = m(x)[0]
            t1 = time.perf_counter()
            out.sum().backward()
            spent["layer forward"] += t1 - t0
            spent["layer backward"] += time.perf_counter() - t1
    finally:
        function.BPTT.forward, function.BPTT.backward = staticmethod(fwd), staticmethod(bwd)
        for name, fn in saved.items():
            setattr(k, name, fn)
    print("| part of rnnkit's training step | ms / step |\n|---|---|")
    for key, v in spent.items():
        print(f"| {key} | {v / reps * 1e3:.1f} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--B", type=int, default=32)
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--H", type=int, default=256)
    p.add_argument("--p", type=float, default=0.25, help="recurrent dropout")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--breakdown", action="store_true", help="time rnnkit's step by parts instead")
    a = p.parse_args(argv)
    torch.manual_seed(0)
    if a.breakdown:
        m = rnnkit.LSTM(a.H, a.H, layer_norm=True, recurrent_dropout=a.p)
        return breakdown(m, torch.randn(a.T, a.B, a.H, requires_grad=True), a.reps)
    impls = {
        "rnnkit.LSTM(layer_norm=True, recurrent_dropout)":
            rnnkit.LSTM(a.H, a.H, layer_norm=True, recurrent_dropout=a.p),
        "Python loop over autograd": LoopLNLSTM(a.H, a.H, a.p),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                   # TorchScript's deprecation notice
        try:
            impls["TorchScript loop"] = torch.jit.script(LoopLNLSTM(a.H, a.H, a.p))
        except Exception as e:                            # noqa: BLE001 - report, don't die
            print(f"TorchScript unavailable: {type(e).__name__}: {e}")
    x = torch.randn(a.T, a.B, a.H, requires_grad=True)
    floor = "(the matmuls alone: a lower bound for all)"
    runs = {k: (lambda m=m: step(m, x)) for k, m in impls.items()}
    runs[floor] = lambda f=GemmFloor(a.H, a.H): f(x)
    for run in runs.values():
        for _ in range(5):
            run()
    times = {k: [] for k in runs}
    for _ in range(a.reps):
        for k, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[k].append(time.perf_counter() - t0)
    base = statistics.median(times[next(iter(impls))])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, B={a.B} T={a.T} "
          f"I=H={a.H}, recurrent dropout {a.p}, medians of {a.reps} interleaved training steps; "
          f"rnnkit kernels: {rnnkit.kernels.status()}\n")
    print("| implementation | ms / step | × rnnkit |\n|---|---|---|")
    for k, ts in times.items():
        med = statistics.median(ts)
        print(f"| {k} | {med * 1e3:.1f} | {med / base:.2f} |")


if __name__ == "__main__":
    main()
