"""Quality at a time budget: ``rnnkit train lm`` with its defaults against what a user would
otherwise write, side by side on the same machine, corpus and split.

    python benchmarks/quality_lm.py --minutes 3 --data fortunes pd1998-text            # vs plain
    python benchmarks/quality_lm.py --minutes 5 --data fortunes --against gpt          # vs nanoGPT

For each corpus, rnnkit (``rnnkit train lm --data X --max-minutes M``, nothing else) and the
baseline (``benchmarks/lm_baselines.py``: the plain torch.nn.LSTM script with Adam 2e-3 constant,
or nanoGPT's CPU configuration) run at the same time, each in its own process with
``--threads`` threads, so that whatever else the machine does slows both alike. Each reports the
best validation loss in nats per character on the last 5% of the corpus. The Shakespeare corpus
is the one rnnkit's defaults were developed on; fortunes (English) and pd1998-text (Chinese news)
are held out; fortunes-zh was used to choose the large-vocabulary settings.
"""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
THREADS_PY = "import sys, torch; torch.set_num_threads({t}); sys.argv[0] = {prog!r}; "


def command(kind, data, minutes, out, threads):
    """(argv, result file) of one side of the comparison."""
    if kind == "rnnkit":
        code = THREADS_PY.format(t=threads, prog="rnnkit") + \
            "from rnnkit.cli.main import main; sys.exit(main(sys.argv[1:]))"
        return ([sys.executable, "-c", code, "train", "lm", "--data", data, "--max-minutes",
                 f"{minutes:g}", "--out", str(out), "--quiet"], out / "metrics.json")
    code = THREADS_PY.format(t=threads, prog="lm_baselines") + \
        f"sys.path.insert(0, {str(HERE)!r}); import lm_baselines; lm_baselines.main()"
    return ([sys.executable, "-c", code, kind, "--data", data, "--minutes", f"{minutes:g}",
             "--out", str(out) + ".json"], Path(str(out) + ".json"))


def side_by_side(data, args):
    root = Path(args.out) / data
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    runs = {kind: command(kind, data, args.minutes, root / kind, args.threads)
            for kind in ("rnnkit", args.against)}
    procs = {kind: subprocess.Popen(argv, env=env, stdout=open(root / f"{kind}.log", "w"),
                                    stderr=subprocess.STDOUT) for kind, (argv, _) in runs.items()}
    row = {"data": data}
    for kind, proc in procs.items():
        if proc.wait() != 0:
            sys.exit(f"{kind} on {data} failed: see {root / kind}.log")
        result = json.loads(runs[kind][1].read_text())
        row[kind] = result.get("best_val_loss", result.get("best_val"))
        row[f"{kind}_steps"] = result["steps"]
    row["gap"] = row["rnnkit"] - row[args.against]
    print(json.dumps(row), flush=True)
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=3.0, help="training time of each side")
    p.add_argument("--data", nargs="+", default=["fortunes", "pd1998-text"])
    p.add_argument("--against", choices=["plain", "gpt"], default="plain")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--out", default="runs/quality_lm")
    args = p.parse_args()
    rows = [side_by_side(data, args) for data in args.data]
    print(f"\n$ python benchmarks/quality_lm.py {shlex.join(sys.argv[1:])}")
    print(f"| corpus | rnnkit defaults | {args.against} | rnnkit − {args.against} | steps |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['data']} | {r['rnnkit']:.4f} | {r[args.against]:.4f} | {r['gap']:+.4f} | "
              f"{r['rnnkit_steps']:,} / {r[args.against + '_steps']:,} |")
    (Path(args.out) / f"results-{args.against}-{args.minutes:g}min.json").write_text(
        json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
