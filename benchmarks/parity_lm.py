"""Parity benchmark: a 2-layer character LSTM on the Shakespeare split, rnnkit.LSTM vs torch.nn.LSTM.

Both runs start from the same weights (torch.nn.LSTM loads rnnkit's state_dict), see the same
batches in the same order and follow the same step-based schedule, so their validation losses
should agree within noise: rnnkit's hand-written BPTT learns exactly as well as torch's.
The step count comes from --steps, or from --minutes by timing rnnkit's own training step and
evaluation first (so the rnnkit run takes about that long; torch.nn is usually faster).

    python benchmarks/parity_lm.py --minutes 30            # the full quality run (both impls)
    python benchmarks/parity_lm.py --minutes 3 --impl rnnkit
"""
import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import torch

from rnnkit.models import LMConfig
from rnnkit.train import Checkpointer, ProgressBar, TrainConfig, Trainer
from rnnkit.tasks.lm import LMData, build_lm_task


def make_task(args, impl):
    torch.manual_seed(args.seed)
    data = LMData(data=args.data, seq_len=args.seq_len, batch=args.batch)
    model = LMConfig(cell="lstm", layers=args.layers, hidden=args.hidden, embed=args.embed,
                     dropout=args.dropout)
    task = build_lm_task(data, model, log=lambda *a: None)
    if impl == "torch":   # the one place torch.nn.LSTM is used: the reference it is measured by
        ref = torch.nn.LSTM(args.embed, args.hidden, args.layers, dropout=args.dropout,
                            batch_first=True)
        ref.load_state_dict(task.model.rnn.state_dict())
        task.model.rnn = ref
    return task


def calibrate_steps(args):
    """Steps that fit in args.minutes of rnnkit training, evaluations included."""
    task = make_task(args, "rnnkit")
    trainer = Trainer(task, train_config(args, 10**9))
    stats = trainer._new_stats()
    trainer.train_step(stats)                         # warm-up, not timed
    t0 = time.perf_counter()
    for _ in range(5):
        trainer.train_step(stats)
    step_s = (time.perf_counter() - t0) / 5
    t0 = time.perf_counter()
    with torch.no_grad():
        task.model.eval()
        task.evaluate()
    eval_s = time.perf_counter() - t0
    steps = int(60 * args.minutes / (step_s + eval_s / args.eval_every))
    print(f"calibration: {step_s * 1000:.0f} ms/step, {eval_s:.1f} s/evaluation -> {steps} steps "
          f"for {args.minutes} min", flush=True)
    return steps


def train_config(args, steps):
    return TrainConfig(lr=args.lr, warmup_steps=100, max_steps=steps, schedule="cosine",
                       min_lr_ratio=0.1, eval_every=min(args.eval_every, steps), seed=args.seed)


def run(args, impl, steps):
    task = make_task(args, impl)
    out = Path(args.out) / impl
    for old in ("metrics.jsonl", "last.pt", "best.pt"):
        (out / old).unlink(missing_ok=True)
    t0 = time.perf_counter()
    summary = Trainer(task, train_config(args, steps), [ProgressBar(file=sys.stderr),
                                                        Checkpointer(out)]).fit()
    wall = time.perf_counter() - t0
    return {"impl": impl, "steps": summary["steps"], "tokens": summary["tokens_seen"],
            "minutes": wall / 60, "tok_s": summary["tokens_seen"] / wall,
            "best_val": summary["best_val_loss"], "bits": summary["best_val_loss"] / math.log(2)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0, help="rnnkit training time per run")
    p.add_argument("--steps", type=int, default=0, help="fixed step count (overrides --minutes)")
    p.add_argument("--impl", choices=["rnnkit", "torch", "both"], default="both")
    p.add_argument("--data", default="shakespeare")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--seq-len", type=int, default=100)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--out", default="runs/quality_lm")
    args = p.parse_args(argv)
    steps = args.steps or calibrate_steps(args)
    impls = ["rnnkit", "torch"] if args.impl == "both" else [args.impl]
    rows = [run(args, impl, steps) for impl in impls]
    print(f"\n$ python benchmarks/parity_lm.py {shlex.join(argv or sys.argv[1:])}")
    print(f"{args.layers}-layer LSTM, hidden {args.hidden}, seq {args.seq_len}, batch {args.batch}, "
          f"{steps} steps, {torch.get_num_threads()} threads; validation: last 5% of {args.data}")
    print(f"{'impl':<8}{'steps':>7}{'tokens':>12}{'minutes':>9}{'tok/s':>9}{'val nats/char':>15}"
          f"{'bits/char':>11}")
    for r in rows:
        print(f"{r['impl']:<8}{r['steps']:>7}{r['tokens']:>12,}{r['minutes']:>9.1f}{r['tok_s']:>9,.0f}"
              f"{r['best_val']:>15.4f}{r['bits']:>11.4f}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
