"""Quality of the CTC recogniser on captchas and spoken digits, through the ``rnnkit`` CLI, on
one CPU thread.

    python benchmarks/quality_recognize.py [--task recognize|image-to-text]
        [--data captcha|spoken-digits] [--steps 2500] [--out runs/bench-recognize] [--threads 1]
        [-- more train flags]

Trains ``rnnkit train recognize --data captcha`` for a step budget (about 15 minutes on one
thread of a 2-core machine; a step budget, so that other load on the machine changes the time
but not the figures), on 20,000 captchas rendered from a fixed seed (the first run renders and
caches them, a few minutes outside the budget), then prints the held-out figures from its
metrics.json next to the exact command that made them. The test set is 1,000 captchas of 4-6
characters from 0-9A-Z, rendered from a fixed seed, the same in every run; never used for model
selection.

spoken-digits: utterances of 3-8 digits made on the fly from the recordings of the training
voices (Debian's asterisk human voice and, after ``make speech-data``, espeak-ng's voices); the
test part is 1,000 utterances of the captcha package's voice, which training never hears. Its
WER counts each digit as a word.

--task image-to-text trains the 1→N model (one vector of the whole image conditioning a
generator) on the same captchas and scores it on the same test images (greedy reading).
"""
import argparse
import json
import shlex
import shutil
from pathlib import Path

import torch

from rnnkit.cli.main import main

KEYS = ["test_sequence_accuracy", "test_cer", "test_wer", "test_beam8_sequence_accuracy",
        "test_beam8_cer"]


def run(task, data, steps, out, extra):
    shutil.rmtree(out, ignore_errors=True)
    argv = ["train", task, "--data", data, "--out", str(out),
            "--max-steps", str(steps), "--quiet", *extra]
    print(f"$ rnnkit {shlex.join(argv)}", flush=True)
    if main(argv) != 0:
        raise SystemExit("training failed")
    return argv, json.loads((out / "metrics.json").read_text())


def table(argv, metrics, threads):
    rows = [("command", f"rnnkit {shlex.join(argv)}  (torch threads: {threads})"),
            ("steps", f"{metrics['steps']:,} in {metrics['wall_seconds'] / 60:.1f} min"),
            ("test examples", f"{metrics['test_size']:,}")]
    rows += [(k, f"{metrics[k]:.4f}") for k in KEYS if k in metrics]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=("recognize", "image-to-text"), default="recognize")
    p.add_argument("--data", choices=("captcha", "spoken-digits"), default="captcha")
    p.add_argument("--steps", type=int, default=2500, help="training steps (batches of 32)")
    p.add_argument("--out", type=Path, default=Path("runs/bench-recognize"))
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("extra", nargs="*", help="more flags for rnnkit train recognize (after --)")
    return p.parse_args()


if __name__ == "__main__":
    args = parse_args()
    torch.set_num_threads(args.threads)
    argv, metrics = run(args.task, args.data, args.steps, args.out / f"{args.task}-{args.data}",
                        args.extra)
    print()
    print(table(argv, metrics, args.threads))
