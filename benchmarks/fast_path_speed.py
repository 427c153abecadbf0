"""A cell's compiled fast path against its Python steps: the peephole LSTM and IndRNN (each a
rnnkit/cells/<cell>.py + rnnkit/kernels/<cell>.cpp), a training step (forward + backward),
median of interleaved repetitions, one thread.

    python benchmarks/fast_path_speed.py [--cells peephole-lstm indrnn] [--B 32] [--T 100]
                                         [--H 256] [--reps 7]
"""
import argparse
import statistics
import time

import torch

import rnnkit
from rnnkit import kernels


def step(m, x):
    t0 = time.perf_counter()
    out, _ = m(x)
    out.sum().backward()
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", nargs="+", default=["peephole-lstm", "indrnn"])
    p.add_argument("--B", type=int, default=32)
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--H", type=int, default=256)
    p.add_argument("--reps", type=int, default=7)
    a = p.parse_args()
    torch.set_num_threads(1)
    print(f"# torch {torch.__version__}, 1 thread, B={a.B} T={a.T} H={a.H}, median of {a.reps} "
          f"interleaved reps, forward + backward; {kernels.status()}")
    for cell in a.cells:
        torch.manual_seed(0)
        m = rnnkit.Recurrent(cell, a.H, a.H)
        x = torch.randn(a.T, a.B, a.H)
        fast, slow = [], []
        for i in range(a.reps + 1):
            f = step(m, x)
            with kernels.disabled():
                s = step(m, x)
            if i:                                   # the first of each: warm-up
                fast.append(f)
                slow.append(s)
        f, s = statistics.median(fast) * 1e3, statistics.median(slow) * 1e3
        print(f"{cell:14s} compiled loop {f:8.1f} ms   Python steps {s:8.1f} ms   {s / f:5.2f}x")


if __name__ == "__main__":
    main()
