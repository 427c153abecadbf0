"""Training-step speed and peak memory: rnnkit's layers against torch.nn's native CPU kernels.

One training step = forward over the whole sequence + backward to the input and all weights.
Both implementations run side by side in one process, interleaved, with the same weights and
input; the table reports medians and the ratio rnnkit / torch.nn (below 1: rnnkit is faster).
Peak memory is the rise of resident memory at its peak during one step (sampled every
millisecond), each measured in a fresh subprocess.

    python benchmarks/speed.py                       # the full grid (several minutes)
    python benchmarks/speed.py --cells lstm --T 50 --B 16 --H 128 --reps 5
"""
import argparse
import itertools
import json
import math
import resource
import statistics
import subprocess
import sys
import threading
import time

import torch

import rnnkit

IMPLS = {"lstm": (rnnkit.LSTM, torch.nn.LSTM), "gru": (rnnkit.GRU, torch.nn.GRU),
         "rnn": (rnnkit.RNN, torch.nn.RNN)}


def make(cell, T, B, H, seed=0):
    torch.manual_seed(seed)
    ours, theirs = IMPLS[cell]
    ref = theirs(H, H)
    mine = ours(H, H)
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, H, requires_grad=True)
    return mine, ref, x


def step(m, x):
    out, _ = m(x)
    out.sum().backward()


def time_pair(cell, T, B, H, reps):
    """Median seconds per training step for (rnnkit, torch.nn), interleaved."""
    mine, ref, x = make(cell, T, B, H)
    for m in (mine, ref):   # warm-up
        step(m, x)
    times = {"rnnkit": [], "torch": []}
    for _ in range(reps):
        for name, m in (("rnnkit", mine), ("torch", ref)):
            x.grad = None
            m.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            step(m, x)
            times[name].append(time.perf_counter() - t0)
    return statistics.median(times["rnnkit"]), statistics.median(times["torch"])


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_worker(cell, T, B, H, impl):
    """Run in a subprocess: MiB the resident memory rises by, at its peak, during one step.

    A warm-up on a tiny input first loads the kernels; a thread samples RSS every millisecond.
    """
    mine, ref, x = make(cell, T, B, H)
    m = mine if impl == "rnnkit" else ref
    step(m, x[:2, :1].detach().requires_grad_())
    m.zero_grad(set_to_none=True)
    base, peak, done = rss_mib(), [0.0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib())
            time.sleep(0.001)

    th = threading.Thread(target=sample)
    th.start()
    step(m, x)
    done.set()
    th.join()
    return max(peak[0], rss_mib()) - base


def peak_rss(cell, T, B, H, impl):
    cmd = [sys.executable, __file__, "--worker", json.dumps([cell, T, B, H, impl])]
    return float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", nargs="+", default=list(IMPLS), choices=list(IMPLS))
    p.add_argument("--T", nargs="+", type=int, default=[50, 200])
    p.add_argument("--B", nargs="+", type=int, default=[1, 16, 64])
    p.add_argument("--H", nargs="+", type=int, default=[128, 512], help="hidden size (= input size)")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        print(peak_rss_worker(*json.loads(a.worker)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, "
          f"medians of {a.reps} interleaved steps\n")
    print("| cell | T | B | H | torch.nn ms | rnnkit ms | ratio | torch.nn MiB | rnnkit MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    ratios = {c: [] for c in a.cells}
    for cell, T, B, H in itertools.product(a.cells, a.T, a.B, a.H):
        ours, theirs = time_pair(cell, T, B, H, a.reps)
        if B >= 16:
            ratios[cell].append(ours / theirs)
        mem = ("–", "–") if a.no_memory else tuple(
            f"{peak_rss(cell, T, B, H, i):.0f}" for i in ("torch", "rnnkit"))
        print(f"| {cell} | {T} | {B} | {H} | {theirs * 1e3:.1f} | {ours * 1e3:.1f} | "
              f"{ours / theirs:.2f} | {mem[0]} | {mem[1]} |", flush=True)
    for cell, r in ratios.items():
        if r:
            geo = math.exp(sum(map(math.log, r)) / len(r))
            print(f"\n{cell}: geometric mean of rnnkit/torch.nn over B >= 16: {geo:.2f} "
                  f"(worst {max(r):.2f}, best {min(r):.2f})")


if __name__ == "__main__":
    main()
