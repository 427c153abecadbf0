"""A user's cell without C++: through rnnkit's hand-BPTT node against its own autograd loop.

The same cell two ways, forward + backward to the input, the weights and the initial state:

- **hand BPTT**: the BPTT node (:func:`rnnkit.bptt.function.run`) running the cell's Python
  ``forward_step`` / ``backward_step`` (no compiled kernel: the cells here are not rnnkit's own
  classes, so none is looked up);
- **autograd loop**: the cell's ``reference_step`` stepped in a Python loop, autograd recording
  every step and doing BPTT. It gets the same head start as the node: the input half
  x_t W_ih^T + b_ih of all steps in one matmul before the loop.

Cells: the tutorial's vanilla RNN (docs/examples/my_rnn_cell.py) and rnnkit's LSTM maths in a user
subclass (its Python steps). One thread; both run side by side in one process, interleaved, with
the same weights and input; the table reports medians and the ratio autograd / hand BPTT (above
1: the node is faster). The goal of issue 12 is ≥ 1.5 at B=32, T=100, H=256.

    python benchmarks/user_cell_speed.py                    # B=32 T=100 H=256, 11 reps
    python benchmarks/user_cell_speed.py --B 8 --T 50 --H 64 --reps 5
"""
import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

from rnnkit.bptt.function import run
from rnnkit.bptt.schedule import Schedule
from rnnkit.cells.lstm import LSTMMath

ROOT = Path(__file__).resolve().parents[1]


def tutorial_cell():
    path = ROOT / "docs" / "examples" / "my_rnn_cell.py"
    spec = importlib.util.spec_from_file_location("my_rnn_cell", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MyRNNCell()


class UserLSTM(LSTMMath):
    """rnnkit's LSTM maths as a user's own class: its Python steps, no kernel."""


CELLS = {"rnn (tutorial)": tutorial_cell, "lstm (Python)": UserLSTM}


def make(cell, T, B, H, seed=0):
    g = torch.Generator().manual_seed(seed)
    GH = cell.N_GATES * H
    k = H ** -0.5
    w = [((torch.rand(*s, generator=g) * 2 - 1) * k).requires_grad_()
         for s in ((GH, H), (GH, H), (GH,), (GH,))]
    x = torch.randn(T * B, H, generator=g).requires_grad_()                # (T·B, I), I = H
    h0 = [torch.zeros(B, H).requires_grad_() for _ in range(cell.N_STATES)]
    r = torch.randn(T * B, H, generator=g)                                 # loss weights
    return x, w, h0, r


def hand(cell, T, B, x, w, h0, r):
    out, _ = run(cell, Schedule.full(T, B), x, *w, tuple(h0))
    (out * r).sum().backward()
    return out


def autograd_loop(cell, T, B, x, w, h0, r):
    w_ih, w_hh, b_ih, b_hh = w
    gi = torch.addmm(b_ih, x, w_ih.t())                                    # (T·B, G·H)
    state, outs = tuple(h0), []
    for t in range(T):
        state = cell.reference_step(gi[t * B:(t + 1) * B], state, w_hh, b_hh)
        outs.append(state[0])
    out = torch.cat(outs)
    (out * r).sum().backward()
    return out


def same(cell, T, B, H):
    """Both ways give the same outputs and gradients (float32 tolerance)."""
    res = []
    for f in (hand, autograd_loop):
        x, w, h0, r = make(cell, T, B, H)
        out = f(cell, T, B, x, w, h0, r)
        res.append([out.detach(), *(t.grad for t in (x, *w, *h0))])
    return all(torch.allclose(a, b, rtol=1e-3, atol=1e-4) for a, b in zip(*res))


def time_pair(cell, T, B, H, reps):
    """Median seconds per forward + backward for (hand BPTT, autograd loop), interleaved."""
    x, w, h0, r = make(cell, T, B, H)
    leaves = (x, *w, *h0)
    times = {hand: [], autograd_loop: []}
    for i in range(reps + 1):                    # the first round warms up
        for f in times:
            for t in leaves:
                t.grad = None
            t0 = time.perf_counter()
            f(cell, T, B, x, w, h0, r)
            if i:
                times[f].append(time.perf_counter() - t0)
    return statistics.median(times[hand]), statistics.median(times[autograd_loop])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--B", type=int, default=32)
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--H", type=int, default=256, help="hidden size (= input size)")
    p.add_argument("--reps", type=int, default=11)
    p.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print(f"# {' '.join(['python', 'benchmarks/user_cell_speed.py', *sys.argv[1:]])}")
    print(f"# torch {torch.__version__}, 1 thread, B={args.B} T={args.T} H={args.H}, "
          f"median of {args.reps} interleaved reps, forward + backward")
    print(f"{'cell':16s} {'hand BPTT ms':>12s} {'autograd ms':>12s} {'ratio':>6s}  same")
    for name in args.cells:
        cell = CELLS[name]()
        ok = same(cell, min(args.T, 10), min(args.B, 4), min(args.H, 32))
        ours, ref = time_pair(cell, args.T, args.B, args.H, args.reps)
        print(f"{name:16s} {ours * 1e3:12.1f} {ref * 1e3:12.1f} {ref / ours:6.2f}  "
              f"{'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
