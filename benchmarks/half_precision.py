"""bfloat16 and float16 layers on the CPU: rnnkit against torch.nn, float32 beside them.

One training step (forward and backward to every parameter) and one forward under no_grad, of
a 2-layer LSTM and GRU, each implementation and dtype interleaved in one process, repeated;
the table gives medians in ms and rnnkit's time / torch.nn's in the same dtype.

    python benchmarks/half_precision.py                     # I=32, H=64, B=8, T=50, one thread
    python benchmarks/half_precision.py --I 64 --H 256 --B 32 --T 100
"""
import argparse
import statistics
import time

import torch
from torch import nn

import rnnkit


def timed(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--I", type=int, default=32)
    p.add_argument("--H", type=int, default=64)
    p.add_argument("--B", type=int, default=8)
    p.add_argument("--T", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=15)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"I={a.I} H={a.H} B={a.B} T={a.T}, 2 layers, {a.threads} thread(s), median of "
          f"{a.reps} interleaved rounds, ms")
    print(f"{'cell':5} {'dtype':9} {'mode':9} {'rnnkit':>8} {'torch.nn':>9} {'ratio':>6}")
    for cell in ("LSTM", "GRU"):
        for dtype in (torch.float32, torch.bfloat16, torch.float16):
            torch.manual_seed(0)
            ours = getattr(rnnkit, cell)(a.I, a.H, 2).to(dtype)
            theirs = getattr(nn, cell)(a.I, a.H, 2).to(dtype)
            theirs.load_state_dict(ours.state_dict())
            x = torch.randn(a.T, a.B, a.I).to(dtype)

            def train(m):
                return lambda: m(x)[0].float().pow(2).mean().backward()

            def infer(m):
                def run():
                    with torch.no_grad():
                        m(x)
                return run

            for mode, make in (("train", train), ("no_grad", infer)):
                times = {"rnnkit": [], "torch": []}
                for _ in range(a.reps):   # interleaved: the machine's load hits both alike
                    times["rnnkit"] += timed(make(ours), 1)
                    times["torch"] += timed(make(theirs), 1)
                r, t = (statistics.median(times[k]) * 1e3 for k in ("rnnkit", "torch"))
                print(f"{cell:5} {str(dtype)[6:]:9} {mode:9} {r:8.2f} {t:9.2f} {r / t:6.2f}")


if __name__ == "__main__":
    main()
