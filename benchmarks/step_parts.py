"""Where a language model's ``model.step`` spends its time at batch 1: the whole call against
the compiled step it makes (``step.cpp``'s ``lm_step`` on the same addresses, called directly
through ctypes, no other Python around it, and without layer 0's product computed ahead, which
``model.step`` gets at two threads), at each thread count, alternating in one process; medians.

    python benchmarks/step_parts.py RUN [--threads 1 2] [--calls 2000] [--reps 5]
"""
import argparse
import ctypes
import statistics
import time
import warnings

import torch

from rnnkit.layers import fast_lm
from rnnkit.tasks.lm import load_lm


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="a trained language-model run (folder or checkpoint)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    try:
        model = load_lm(args.run)[0].eval()
    except (OSError, ValueError, RuntimeError) as e:    # CheckpointError: a RuntimeError
        raise SystemExit(f"step_parts.py: {e}") from None
    m, ids = model._modules, torch.tensor([5])
    with torch.no_grad():
        logits, state = model.step(ids, None)
        plan = fast_lm._lm_ready(m["rnn"], m["embed"], m["head"], ids, state)
    if plan is None or plan.mode != "LSTM":
        raise SystemExit(f"{args.run}: not an LSTM language model that the compiled step runs")
    out = tuple(torch.empty_like(s) for s in state)
    lg, status, k = logits.clone(), ctypes.c_int64(), plan.k
    call = (plan.fixed, 1, state[0].data_ptr(), state[1].data_ptr(), out[0].data_ptr(),
            out[1].data_ptr(), ids.data_ptr(), lg.data_ptr(), ctypes.byref(status))

    def kernel(threads):
        a, f = call + (threads, -1, 0), k.lm_step          # -1: nothing computed ahead
        t = time.perf_counter()
        for _ in range(args.calls):
            f(*a)
        return (time.perf_counter() - t) / args.calls * 1e6

    def whole(threads):
        torch.set_num_threads(threads)
        with torch.no_grad():
            _, st = model.step(ids, None)
            t = time.perf_counter()
            for _ in range(args.calls):
                _, st = model.step(ids, st)
        return (time.perf_counter() - t) / args.calls * 1e6

    res = {}
    for _ in range(args.reps):
        for n in args.threads:
            for name, fn in (("compiled step", kernel), ("model.step", whole)):
                res.setdefault((name, n), []).append(fn(n))
    print(f"{args.run}: {plan.L}x{plan.H} {plan.mode.lower()}, {plan.V} tokens; µs per call at "
          f"batch 1, medians of {args.reps} x {args.calls} calls")
    print("| threads | compiled step | model.step | Python around it |\n|---|---|---|---|")
    for n in args.threads:
        kern, full = (statistics.median(res[(x, n)]) for x in ("compiled step", "model.step"))
        print(f"| {n} | {kern:.0f} | {full:.0f} | {full - kern:.0f} |")


if __name__ == "__main__":
    main()
