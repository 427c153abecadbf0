"""A user's own loop over rnnkit's cells against torch.nn's: 100 steps of LSTMCell, GRUCell and
RNNCell, under no_grad (generation) and with a backward at the end (training), interleaved in one
process; medians of 7 rounds in microseconds a step, and rnnkit's time / torch.nn's.

    python benchmarks/cell_steps.py          # batch 1 at hidden 32 and 128, batch 32 at 256,
                                             # one thread
"""
import statistics
import time

import torch
from torch import nn

import rnnkit


def loop(cell, x, grad, steps=100):
    h = None
    with torch.enable_grad() if grad else torch.no_grad():
        for _ in range(steps):
            h = cell(x, h)
        if grad:
            (h[0] if isinstance(h, tuple) else h).sum().backward()


def main():
    torch.set_num_threads(1)
    print("cell      B   H    autograd  rnnkit us/step  torch.nn us/step  ratio")
    for name in ("LSTMCell", "GRUCell", "RNNCell"):
        for B, H in ((1, 32), (1, 128), (32, 256)):
            ours, theirs = getattr(rnnkit, name)(H, H), getattr(nn, name)(H, H)
            theirs.load_state_dict(ours.state_dict())
            x = torch.randn(B, H)
            for grad in (False, True):
                times = {"ours": [], "theirs": []}
                for _ in range(7):                     # interleaved: load hits both alike
                    for key, cell in (("ours", ours), ("theirs", theirs)):
                        t0 = time.perf_counter()
                        loop(cell, x, grad)
                        times[key].append((time.perf_counter() - t0) / 100 * 1e6)
                a, b = (statistics.median(times[k]) for k in ("ours", "theirs"))
                print(f"{name:9} {B:2d} {H:4d} {'yes' if grad else 'no':8} {a:14.1f} {b:17.1f} "
                      f"{a / b:6.2f}")


if __name__ == "__main__":
    import argparse
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    main()
