"""Quality of the CTC recogniser on captchas and spoken digits, through the ``rnnkit`` CLI, on
one CPU thread.

    python benchmarks/quality_recognize.py [--task recognize|image-to-text]
        [--data captcha|spoken-digits] [--steps N] [--out runs/bench-recognize] [--threads 1]
        [-- more train flags]

Trains ``rnnkit train recognize --data captcha`` for a step budget (about 15 minutes on one
thread of a 2-core machine; a step budget, so that other load on the machine changes the time
but not the figures), on 20,000 captchas rendered from a fixed seed (the first run renders and
caches them, a few minutes outside the budget), then prints the held-out figures from its
metrics.json next to the exact command that made them. The test set is 1,000 captchas of 4-6
characters from 0-9A-Z, rendered from a fixed seed, the same in every run; never used for model
selection.

spoken-digits: 20,000 training utterances of 3-8 digits built from the recordings of the
training voices (Debian's asterisk human voice and, after ``make speech-data``, espeak-ng's
voices; built once, about 2-4 minutes, and cached as log-mel features); the test part is 1,000
utterances of the captcha package's voice, which training never hears, and beside it 1,000 new
utterances of the training voices (``seen_voices``: the speaker gap). Its WER counts each digit
as a word. It trains the spoken-digit recipe ``SPEECH_RECIPE``: a narrower front-end and GRU
than the captcha defaults (a step costs about a third as much), each training utterance at a
random tempo between 1/1.5 and 1.5 times, with two masked mel bands and two masked spans. Flags
after ``--`` come after the recipe's, so they override it (``-- --test-voice allison`` holds
out the human voice instead). With jiwer installed (``pip install jiwer``), the test
WER is computed again by jiwer from best.pt's transcripts, as a check on rnnkit's own edit
distance.

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
        "test_beam8_cer", "test_beam8_wer", "seen_voices_size", "seen_voices_sequence_accuracy",
        "seen_voices_wer"]
SPEECH_RECIPE = ["--channels", "8", "--hidden", "96", "--tempo", "1.5", "--freq-mask", "8",
                 "--time-mask", "20"]
STEPS = {"captcha": 2500, "spoken-digits": 1200}


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
    rows += [(k, f"{metrics[k]:,}" if k.endswith("size") else f"{metrics[k]:.4f}")
             for k in KEYS if k in metrics]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def jiwer_check(out):
    """The test WER of best.pt's greedy transcripts by jiwer, each digit a word (None without
    jiwer)."""
    try:
        import jiwer
    except ImportError:
        return None
    from rnnkit.tasks.recognize import Recognizer, RecognizeTask
    from rnnkit.tasks.recognize_data import read_parts
    rec = Recognizer.load(out)
    parts = read_parts(rec.data_config, rec.model.config.time_stride, log=lambda *a: None)
    with torch.no_grad():
        _, hyps, refs = RecognizeTask(rec.model, parts, rec.data_config).decode(parts.test)
    return jiwer.wer([" ".join(r) for r in refs], [" ".join(h) for h in hyps])


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=("recognize", "image-to-text"), default="recognize")
    p.add_argument("--data", choices=("captcha", "spoken-digits"), default="captcha")
    p.add_argument("--steps", type=int, help="training steps (batches of 32; default: 2500 for "
                                             "captcha, 1200 for spoken-digits)")
    p.add_argument("--out", type=Path, default=Path("runs/bench-recognize"))
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("extra", nargs="*", help="more flags for rnnkit train recognize (after --)")
    return p.parse_args()


if __name__ == "__main__":
    args = parse_args()
    torch.set_num_threads(args.threads)
    speech = args.data == "spoken-digits" and args.task == "recognize"
    extra = (SPEECH_RECIPE if speech else []) + args.extra
    out = args.out / f"{args.task}-{args.data}"
    argv, metrics = run(args.task, args.data, args.steps or STEPS[args.data], out, extra)
    print()
    print(table(argv, metrics, args.threads))
    if speech:
        wer = jiwer_check(out)
        print("test_wer by jiwer  " + ("(pip install jiwer)" if wer is None else f"{wer:.4f}"))
