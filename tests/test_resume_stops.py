"""Runs stopped between writes and runs whose last.pt does not fit: a best.pt written aside is
completed or dropped so that the resume ends as the uninterrupted run; weights, steps or trainer
state that do not fit are one line; metrics lines are strict JSON; SIGTERM is one line."""
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import torch

from rnnkit.cli.main import main
from rnnkit.train import load_checkpoint
from rnnkit.train.resume import NEXT_BEST, settle_best
from rnnkit.train.checkpoint import save_checkpoint

from lm_fixtures import write_corpus

LM = ["--seq-len", "16", "--batch", "4", "--layers", "1", "--hidden", "16", "--embed", "8",
      "--eval-every", "1", "--patience", "2", "--lr-drops", "1", "--schedule", "constant",
      "--warmup-steps", "0", "--lr", "0.3", "--quiet"]


def run(corpus, out, steps, *more):
    assert main(["train", "lm", "--data", str(corpus), "--out", str(out), "--max-steps",
                 str(steps), *LM, *more]) == 0


def weights(folder):
    return load_checkpoint(folder / "last.pt")["model"]


def test_a_stop_between_best_and_last_resumes_to_the_same_end(tmp_path):
    """A kill after best.pt (step s + 1) and before last.pt (step s) left a best.pt newer than
    the best last.pt names; an --lr-drops drop then went back to the wrong weights."""
    corpus = write_corpus(tmp_path)
    whole = tmp_path / "whole"
    run(corpus, whole, 30)
    rows = [json.loads(line) for line in (whole / "metrics.jsonl").read_text().splitlines()]
    bests = [r["step"] for r in rows if r["best"]]
    step = next(s for s in bests if s > 2 and s - 1 not in bests and s - 2 not in bests)
    before, after = tmp_path / "before", tmp_path / "after"
    run(corpus, before, step - 1)
    run(corpus, after, step)
    stopped = tmp_path / "stopped"                     # best.pt of step written aside, no last.pt
    shutil.copytree(before, stopped)
    shutil.copy(after / "best.pt", stopped / NEXT_BEST)
    assert main(["train", "lm", "--out", str(stopped), "--resume", "--max-steps", "30",
                 "--quiet"]) == 0
    assert not (stopped / NEXT_BEST).exists()
    for k, v in weights(whole).items():
        assert torch.equal(v, weights(stopped)[k]), k
    moved = tmp_path / "moved"                          # stopped after last.pt, before the move
    shutil.copytree(after, moved)
    shutil.copy(before / "best.pt", moved / "best.pt")
    shutil.copy(after / "best.pt", moved / NEXT_BEST)
    settle_best(moved, load_checkpoint(moved / "last.pt")["trainer"]["best_step"])
    assert load_checkpoint(moved / "best.pt")["trainer"]["step"] == step
    assert not (moved / NEXT_BEST).exists()
    for line in (whole / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


def test_a_last_pt_that_does_not_fit_is_one_line(tmp_path, capsys):
    corpus = write_corpus(tmp_path)
    out = tmp_path / "run"
    run(corpus, out, 2)
    good = load_checkpoint(out / "last.pt")
    for change, said in (
            (lambda c: c["model"].pop(next(iter(c["model"]))), "its content does not fit"),
            (lambda c: c["trainer"].update(step="ten"), "the trainer's step is 'ten'"),
            (lambda c: c["trainer"]["optimizer"]["param_groups"].clear()
             if "optimizer" in c["trainer"] else c["optimizer"]["param_groups"].clear(),
             "its content does not fit"),
            (lambda c: c["optimizer"]["state"][0].update(exp_avg=torch.zeros(3)),   # corrupted
             "its optimizer state's exp_avg of parameter 0 has shape (3,)")):       # memory
        bad = copy.deepcopy({k: v for k, v in good.items() if k != "digest"})
        change(bad)
        save_checkpoint(out / "last.pt", bad)
        assert main(["train", "lm", "--out", str(out), "--resume", "--max-steps", "4",
                     "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0] and "last.pt" in err[0], err
    save_checkpoint(out / "last.pt", {k: v for k, v in good.items() if k != "digest"})


def test_sigterm_is_one_line_and_exit_143(tmp_path):
    corpus = write_corpus(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-m", "rnnkit", "train", "lm", "--data", str(corpus),
                          "--out", str(tmp_path / "run"), "--max-steps", "100000", *LM],
                         env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (tmp_path / "run" / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and err.strip().splitlines() == ["rnnkit: terminated (SIGTERM)"]
    assert not [f for f in os.listdir(tmp_path / "run") if f.endswith(".tmp")]


STOPPED_SAVE = """
import sys, torch, torch.serialization as ts
from rnnkit.train.checkpoint import save_checkpoint
def stop(self, *args):   # a signal between the last record and the end of the zip file
    raise KeyboardInterrupt
ts._open_zipfile_writer_buffer.__exit__ = stop
try:
    save_checkpoint(sys.argv[1], {"model": {"w": torch.ones(3)}})
except KeyboardInterrupt:
    print("stopped")
"""


def test_a_save_stopped_by_a_signal_ends_without_an_abort(tmp_path):
    """torch's zip writer, stopped before its end, wrote the end when freed: after the file had
    been closed, so it raised in its C++ destructor and the process aborted (SIGABRT) after
    'rnnkit: terminated (SIGTERM)', about one SIGTERM in ten under load."""
    done = subprocess.run([sys.executable, "-c", STOPPED_SAVE, str(tmp_path / "last.pt")],
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "stopped\n", "")
    assert not os.listdir(tmp_path)


def test_a_fresh_run_in_a_folder_of_a_run_stopped_before_its_first_checkpoint(tmp_path):
    """A run stopped before last.pt existed left metrics.jsonl lines; the fresh run started in
    its folder kept the ones of step 0, so its step-0 validation came twice."""
    corpus, out = write_corpus(tmp_path), tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"step": 0, "val_loss": 9.0}\n')
    (out / "gradients.jsonl").write_text('{"step": 0, "layers": {}}\n')
    run(corpus, out, 4, "--eval-every", "2", "--quiet")
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4] and not (out / "gradients.jsonl").read_text()
