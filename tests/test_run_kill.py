"""Real processes: a run killed with SIGKILL and resumed ends bit-identical to one never
interrupted; a second run on a live run's folder is refused and the first is unharmed."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from rnnkit.train import load_checkpoint

pytestmark = pytest.mark.slow

FLAGS = ["--hidden", "32", "--embed", "16", "--layers", "1", "--batch", "8", "--seq-len", "32",
         "--eval-every", "10", "--warmup-steps", "0", "--quiet"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def rnnkit(*argv, **kw):
    return subprocess.Popen([sys.executable, "-m", "rnnkit", *map(str, argv)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def corpus(tmp_path):
    import random
    rng = random.Random(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far"]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(" ".join(rng.choice(words) for _ in range(9)) for _ in range(3000)))
    return path


def wait_for_step(run, step, proc, timeout=300):
    t0 = time.time()
    while time.time() - t0 < timeout:
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()] \
            if (run / "metrics.jsonl").exists() else []
        if rows and rows[-1]["step"] >= step:
            return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    raise TimeoutError(f"{run} never reached step {step}")


def test_kill_9_then_resume_is_bit_identical(tmp_path):
    data = corpus(tmp_path)
    straight = rnnkit("train", "lm", "--data", data, "--out", tmp_path / "straight",
                      "--max-steps", 60, *FLAGS)
    assert straight.wait(timeout=600) == 0, straight.stderr.read()

    run = tmp_path / "killed"
    proc = rnnkit("train", "lm", "--data", data, "--out", run, "--max-steps", 60, *FLAGS)
    wait_for_step(run, 20, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = rnnkit("train", "lm", "--out", run, "--resume", "--quiet")
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()

    assert not list(run.glob(".*.tmp"))
    a, b = load_checkpoint(tmp_path / "straight" / "last.pt"), load_checkpoint(run / "last.pt")
    assert a["trainer"]["step"] == b["trainer"]["step"] == 60
    for name, w in a["model"].items():
        assert torch.equal(w, b["model"][name]), name
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) == [10, 20, 30, 40, 50, 60]
    best = load_checkpoint(run / "best.pt")
    assert best["trainer"]["best_val"] == b["trainer"]["best_val"]


def test_concurrent_run_on_one_folder_is_refused(tmp_path):
    data, run = corpus(tmp_path), tmp_path / "run"
    first = rnnkit("train", "lm", "--data", data, "--out", run, "--max-steps", 100000, *FLAGS)
    wait_for_step(run, 10, first)
    for argv in (["--data", data, "--out", run, "--max-steps", 5, *FLAGS],
                 ["--out", run, "--resume", "--quiet"]):
        second = rnnkit("train", "lm", *argv)
        assert second.wait(timeout=300) == 2
        err = second.stderr.read().strip()
        assert ("another rnnkit run is training into this folder" in err
                or "already holds a run" in err) and "Traceback" not in err
    assert first.poll() is None                        # the first run trains on, unharmed
    first.send_signal(signal.SIGINT)                   # Ctrl-C: one line, exit 130
    assert first.wait(timeout=120) == 130
    assert first.stderr.read().strip().endswith("rnnkit: interrupted")
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(10, steps[-1] + 1, 10))
    # Ctrl-C between a metrics row and its checkpoint leaves the row one evaluation ahead;
    # --resume drops it (Checkpointer.on_train_start)
    assert load_checkpoint(run / "last.pt")["trainer"]["step"] in (steps[-1], steps[-1] - 10)
