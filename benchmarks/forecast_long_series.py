"""The forecaster's time on a long series: a synthetic hourly one of 20,000 steps (daily and
weekly seasons, a trend and noise; seed 0), run through ``rnnkit train forecast --hidden 8
--max-steps 5``, where the choice of its classical parts (the smoothing fits and forecasts) is
most of the time. With ``--before TREE`` (a checkout of other code, e.g. ``git worktree add
/tmp/old COMMIT``) the two run alternately, one thread each; medians of the rounds' wall times.

    python benchmarks/forecast_long_series.py --before /tmp/old --rounds 2
"""
import argparse
import datetime
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def write_series(path, n=20_000, seed=0):
    rng = random.Random(seed)
    start = datetime.datetime(2020, 1, 1)
    with open(path, "w") as f:
        f.write("time,load\n")
        for i in range(n):
            v = (100 + 0.002 * i + 10 * math.sin(2 * math.pi * i / 24)
                 + 5 * math.sin(2 * math.pi * i / 168) + rng.gauss(0, 2))
            f.write(f"{(start + datetime.timedelta(hours=i)).isoformat(sep=' ')},{v:.3f}\n")


def run(tree, data, out):
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rnnkit", "train", "forecast", "--data", str(data),
                    "--hidden", "8", "--max-steps", "5", "--out", str(out), "--quiet"],
                   env=env, check=True, stdout=subprocess.DEVNULL, cwd=out.parent)   # (not a
    # folder holding an rnnkit of its own: ``-m`` puts the working folder first on the path)
    return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", type=Path, help="a tree of other code, run alternately")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    if args.rounds < 1:
        p.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.before and not (args.before / "rnnkit" / "__init__.py").is_file():
        p.error(f"--before {args.before}: no rnnkit/ in it (a checkout of other code, e.g. "
                f"git worktree add /tmp/old COMMIT)")   # (else this code would run as 'before')
    trees = {"this": HERE, **({"before": args.before} if args.before else {})}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp, "hourly.csv")
        write_series(data)
        times = {name: [] for name in trees}
        for r in range(args.rounds):
            for name, tree in trees.items():
                times[name].append(run(tree, data, Path(tmp, f"{name}{r}")))
        for name, ts in times.items():
            print(f"{name:>6}: median {statistics.median(ts):.1f} s  "
                  f"({', '.join(f'{t:.1f}' for t in ts)})")


if __name__ == "__main__":
    main()
