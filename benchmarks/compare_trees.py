"""Training-step speed of two checkouts of rnnkit, step by step in turn: before/after a change.

Each checkout runs in its own worker process (one thread, both on one core), built with the
same weights and input; the driver asks them for one training step (forward + backward) in
turn, A B A B ..., so neighbouring steps share whatever else the machine is doing, and reports
per configuration the median of each side, the median of the per-pair ratios after / before,
and the ratio of the two sides' fastest steps (other work on the machine only slows a step).

    python benchmarks/compare_trees.py --before /tmp/old-checkout --after . \\
        --cells lstm gru rnn --T 50 --B 32 --H 64 256 --pairs 15
"""
import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys

WORKER = r"""
import json, os, sys, time, torch, rnnkit
torch.set_num_threads(1)
if hasattr(os, "sched_setaffinity"):      # both sides on one core: the same neighbours
    os.sched_setaffinity(0, {int(os.environ["RNNKIT_COMPARE_CPU"])})
LAYERS = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn": rnnkit.RNN}
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "make":
        torch.manual_seed(0)
        m = LAYERS[cmd["cell"]](cmd["H"], cmd["H"], **cmd.get("opts", {}))
        x = torch.randn(cmd["T"], cmd["B"], cmd["H"], requires_grad=True)
        for _ in range(2):
            m(x)[0].sum().backward()
        print(json.dumps({"file": rnnkit.__file__, "kernels": rnnkit.kernels.status()}), flush=True)
    else:
        x.grad = None
        m.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        m(x)[0].sum().backward()
        print(json.dumps({"s": time.perf_counter() - t0}), flush=True)
"""


def worker(tree, cpu):
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree), "OMP_NUM_THREADS": "1",
           "RNNKIT_COMPARE_CPU": str(cpu)}
    return subprocess.Popen([sys.executable, "-c", WORKER], cwd=os.path.abspath(tree), env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def ask(p, **cmd):
    p.stdin.write(json.dumps(cmd) + "\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--cells", nargs="+", default=["lstm", "gru", "rnn"])
    ap.add_argument("--T", nargs="+", type=int, default=[50])
    ap.add_argument("--B", nargs="+", type=int, default=[32])
    ap.add_argument("--H", nargs="+", type=int, default=[64, 256])
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--opts", default="{}", help="layer options as JSON, e.g. '{\"zoneout\": 0.1}'")
    ap.add_argument("--cpu", type=int, default=0, help="the core both workers run on")
    a = ap.parse_args(argv)
    opts = json.loads(a.opts)
    sides = {"before": worker(a.before, a.cpu), "after": worker(a.after, a.cpu)}
    print(f"# {a.pairs} pairs per row, 1 thread, float32, options {opts}")
    print("| cell | T | B | H | before ms | after ms | after / before, median of pairs | "
          "after / before, fastest steps |")
    print("|---|---|---|---|---|---|---|---|")
    try:
        for cell, T, B, H in itertools.product(a.cells, a.T, a.B, a.H):
            for name, p in sides.items():
                info = ask(p, op="make", cell=cell, T=T, B=B, H=H, opts=opts)
                if cell == a.cells[0] and (T, B, H) == (a.T[0], a.B[0], a.H[0]):
                    print(f"# {name}: {info['file']} ({info['kernels']})")
            t = {"before": [], "after": []}
            for i in range(a.pairs):
                order = ("before", "after") if i % 2 == 0 else ("after", "before")
                for name in order:
                    t[name].append(ask(sides[name], op="step")["s"])
            ratio = statistics.median(x / y for x, y in zip(t["after"], t["before"]))
            fastest = min(t["after"]) / min(t["before"])
            print(f"| {cell} | {T} | {B} | {H} | {statistics.median(t['before']) * 1e3:.1f} | "
                  f"{statistics.median(t['after']) * 1e3:.1f} | {ratio:.3f} | {fastest:.3f} |",
                  flush=True)
    finally:
        for p in sides.values():
            p.stdin.close()
            p.wait()


if __name__ == "__main__":
    main()
