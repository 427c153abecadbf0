"""Count the aten operations one training step dispatches, for rnnkit at a given checkout.

Op counts are exact and do not depend on machine load, so they show what a change to the time
loop costs per step when wall-clock timing is too noisy. Compare two checkouts:

    git worktree add /tmp/rnnkit-old <commit>
    python benchmarks/op_count.py /tmp/rnnkit-old .
"""
import subprocess
import sys

PROBE = r"""
import sys, torch
sys.path.insert(0, sys.argv[1])
import rnnkit
from torch.profiler import profile
torch.set_num_threads(1)
for cls in (rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN):
    m = cls(32, 32, num_layers=2, bidirectional=True)
    x = torch.randn(50, 4, 32, requires_grad=True)
    m(x)[0].sum().backward()
    with profile() as p:
        m(x)[0].sum().backward()
    print(cls.__name__, sum(e.count for e in p.key_averages() if e.key.startswith("aten::")))
"""


def counts(path):
    out = subprocess.run([sys.executable, "-c", PROBE, path], capture_output=True, text=True,
                         check=True).stdout
    return dict(line.split() for line in out.splitlines() if line and line[0].isupper())


def main(paths):
    rows = {p: counts(p) for p in paths}
    print("aten ops per training step (2 layers, bidirectional, T=50, B=4, H=32)\n")
    print("| checkout | " + " | ".join(next(iter(rows.values()))) + " |")
    print("|---" * (1 + len(next(iter(rows.values())))) + "|")
    for p, c in rows.items():
        print(f"| {p} | " + " | ".join(c.values()) + " |")


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=["."], metavar="CHECKOUT",
                        help="rnnkit checkouts to count (default: this one)")
    main(parser.parse_args().paths)
