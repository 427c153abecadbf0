"""Data-parallel training (rnnkit.train.distributed): real processes on one machine, gloo on the
CPU, each started with the environment torchrun gives its workers.

Two processes on the same global batch reach the parameters of one process; a run saved by two
processes resumes in one (and the reverse) on the same path; bad launches and bad data stop every
rank with one line; a rank killed mid-run stops the others with one line and leaves last.pt
loadable."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from rnnkit.train import distributed, load_checkpoint
from task_fixtures import write_labelled

NET = ["--hidden", "32", "--layers", "1", "--quiet"]
LM = ["--embed", "16", "--batch", "8", "--seq-len", "16", "--warmup-steps", "0",
      "--schedule", "constant", *NET]


def corpus(tmp_path, name="corpus.txt", seed=0):
    import random
    rng = random.Random(seed)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far"]
    path = tmp_path / name
    path.write_text("\n".join(" ".join(rng.choice(words) for _ in range(9)) for _ in range(600)))
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(argv, world, rank_cwd=None, timeout_s=60, ranks=None):
    """``world`` processes of ``python -m rnnkit argv`` with torchrun's worker environment (one
    plain process when ``world`` is 1); ``rank_cwd(rank)`` is each one's working folder."""
    port, procs = free_port(), []
    for rank in (range(world) if ranks is None else ranks):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        if world > 1:
            env.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                       LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                       RNNKIT_THREADS="1", RNNKIT_DDP_TIMEOUT=str(timeout_s))
        procs.append(subprocess.Popen([sys.executable, "-m", "rnnkit", *map(str, argv)],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, cwd=rank_cwd(rank) if rank_cwd else None))
    return procs


def finish(procs, timeout=600):
    """[(exit code, stdout, stderr)] of every process (their pipes read while they run: a
    process that fills one before it exits would otherwise never end)."""
    results = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        results.append((p.returncode, out, err))
    return results


def assert_ok(results):
    for code, out, err in results:
        assert code == 0, err


def same_parameters(a, b, atol=2e-5):
    ma, mb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    assert ma.keys() == mb.keys()
    for k in ma:
        assert torch.allclose(ma[k], mb[k], atol=atol, rtol=1e-4), \
            f"{k}: max difference {(ma[k] - mb[k]).abs().max():.3g}"


def errors(results):
    """The stderr lines that rnnkit printed as errors, per process."""
    return [[line for line in err.splitlines() if line.startswith("rnnkit: error:")]
            for _, _, err in results]


# ------------------------------------------------------------------ slow: real ranks
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lm", "classify"])
def test_two_processes_reach_the_parameters_of_one(tmp_path, kind):
    if kind == "lm":
        argv = ["train", "lm", "--data", corpus(tmp_path), "--max-steps", 6, "--eval-every", 3, *LM]
    else:
        argv = ["train", "classify", "--data", write_labelled(tmp_path), "--batch", 8,
                "--max-steps", 6, "--eval-every", 3, "--warmup-steps", 0, *NET,
                "--dropout", 0, "--word-dropout", 0]   # random masks differ with the world size
    argv += ["--telemetry", 2]
    one = finish(launch([*argv, "--out", tmp_path / "one"], 1))
    two = finish(launch([*argv, "--out", tmp_path / "two"], 2))
    assert_ok(one + two)
    same_parameters(tmp_path / "one" / "last.pt", tmp_path / "two" / "last.pt")
    # the per-step norms ||dL/dh_t|| are the whole batch's, as one process's (they were rank
    # 0's share, about sqrt(2) times them)
    g1, g2 = ([json.loads(x) for x in (tmp_path / run / "gradients.jsonl").read_text().splitlines()]
              for run in ("one", "two"))
    assert [r["step"] for r in g1] == [r["step"] for r in g2] == [0, 2, 4]
    for r1, r2 in zip(g1, g2):
        assert r1["layers"].keys() == r2["layers"].keys()
        for key, states in r1["layers"].items():
            for name, values in states.items():
                if not name.startswith("decay"):
                    assert r2["layers"][key][name] == pytest.approx(values, rel=1e-4, abs=1e-9)
    m1 = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    m2 = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [r["tokens"] for r in m1] == [r["tokens"] for r in m2]   # global counts
    for r1, r2 in zip(m1, m2):
        assert r1["val_loss"] == pytest.approx(r2["val_loss"], abs=1e-5)
        assert r1["train_loss"] == pytest.approx(r2["train_loss"], abs=1e-5,
                                                 nan_ok=True)   # step 0: no training yet
    assert two[1][1] == ""   # rank 1 prints nothing
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == \
        sorted(p.name for p in (tmp_path / "one").iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("kind,random_off", [
    ("tag", ["--dropout", 0, "--feature-dropout", 0, "--word-dropout", 0]),
    ("seq2seq", ["--dropout", 0, "--teacher-forcing", 1.0]),
    ("cond", ["--dropout", 0]),
    ("forecast", ["--dropout", 0]),
    ("recognize", ["--dropout", 0]),
    ("image-to-text", ["--dropout", 0])])
def test_the_other_tasks_reach_the_parameters_of_one_process_too(tmp_path, kind, random_off):
    """The README's claim for every task: with nothing drawn at random in training, two
    processes on the same global batch end at one process's parameters."""
    argv = ["train", *task_argv(kind, tmp_path), "--warmup-steps", 0, *random_off]
    argv[argv.index("--max-steps") + 1] = 4
    one = finish(launch([*argv, "--out", tmp_path / "one"], 1))
    two = finish(launch([*argv, "--out", tmp_path / "two"], 2))
    assert_ok(one + two)
    same_parameters(tmp_path / "one" / "last.pt", tmp_path / "two" / "last.pt")


@pytest.mark.slow
def test_resume_with_another_number_of_processes(tmp_path):
    data = corpus(tmp_path)
    base = ["train", "lm", "--data", data, "--eval-every", 3, *LM]
    straight = finish(launch([*base, "--out", tmp_path / "straight", "--max-steps", 9], 1))
    first = finish(launch([*base, "--out", tmp_path / "run", "--max-steps", 3], 2))
    assert_ok(straight + first)
    resume = ["train", "lm", "--out", tmp_path / "run", "--resume", "--quiet"]
    middle = finish(launch([*resume, "--max-steps", 6], 1))      # 2 processes -> 1
    assert_ok(middle)
    last = finish(launch([*resume, "--max-steps", 9], 2))        # 1 process -> 2
    assert_ok(last)
    same_parameters(tmp_path / "straight" / "last.pt", tmp_path / "run" / "last.pt")


@pytest.mark.slow
def test_a_resume_under_two_processes_with_dropout_is_exact(tmp_path):
    """Rank 1 reseeded its dropout stream at the step a run started from: a resumed run drew
    other masks than the run never stopped (weights 0.02 apart)."""
    data = corpus(tmp_path)
    base = ["train", "lm", "--data", data, "--eval-every", 3, *LM, "--dropout", 0.3]
    straight = finish(launch([*base, "--out", tmp_path / "straight", "--max-steps", 6], 2))
    first = finish(launch([*base, "--out", tmp_path / "run", "--max-steps", 3], 2))
    assert_ok(straight + first)
    last = finish(launch(["train", "lm", "--out", tmp_path / "run", "--resume", "--quiet",
                          "--max-steps", 6], 2))
    assert_ok(last)
    same_parameters(tmp_path / "straight" / "last.pt", tmp_path / "run" / "last.pt", atol=0)


@pytest.mark.slow
def test_bad_launches_stop_every_rank_with_one_line(tmp_path):
    data = corpus(tmp_path)
    base = ["train", "lm", "--data", data, "--max-steps", 2, *NET, "--seq-len", 16]
    # a world size that does not divide the batch
    results = finish(launch([*base, "--batch", 5, "--out", tmp_path / "odd"], 2))
    assert [r[0] for r in results] == [2, 2]
    for rank, lines in enumerate(errors(results)):   # rank 1's line names it
        assert lines == [f"rnnkit: error: {'rank 1: ' * rank}--batch 5 cannot be split over 2 "
                         f"processes: the global batch is shared out evenly, so choose a "
                         f"multiple of 2"]
    assert not (tmp_path / "odd").exists()
    # (other data at the same path on rank 1, as on another machine, cannot be made on one
    # machine: rank 0 sends its absolute path; test_ranks_reading_other_data_are_refused
    # gives same_data the two fingerprints)
    # a rank that never comes: the rendezvous times out
    t0 = time.time()
    results = finish(launch([*base, "--out", tmp_path / "alone"], 2, ranks=[0], timeout_s=5))
    assert time.time() - t0 < 90
    assert results[0][0] == 1
    (line,) = errors(results)[0]
    assert "could not join the 2 processes" in line


@pytest.mark.slow
def test_a_killed_rank_stops_the_run_with_one_line(tmp_path):
    run = tmp_path / "run"
    procs = launch(["train", "lm", "--data", corpus(tmp_path), "--out", run, "--max-steps", 100000,
                    "--eval-every", 5, *LM], 2, timeout_s=60)
    t0 = time.time()
    while not (run / "last.pt").exists():
        assert time.time() - t0 < 300 and all(p.poll() is None for p in procs)
        time.sleep(0.1)
    procs[1].send_signal(signal.SIGKILL)
    t1 = time.time()
    code, out, err = finish(procs[:1], timeout=120)[0]
    assert time.time() - t1 < 60, "the surviving rank waited for the collective timeout"
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error: rank 0 of 2: lost contact "
                                                   "with another rank during ")
    assert "--resume" in lines[0]
    procs[1].wait()
    ckpt = load_checkpoint(run / "last.pt", kind="lm")
    assert ckpt["trainer"]["step"] % 5 == 0 and ckpt["trainer"]["step"] > 0


def task_argv(kind, tmp_path):
    """A tiny ``rnnkit train KIND`` command line on data written here."""
    from recognize_fixtures import write_captchas
    from seq2seq_fixtures import write_names, write_pairs
    from task_fixtures import write_series, write_tagged
    steps = ["--max-steps", 2, "--eval-every", 2, "--quiet"]
    images = ["--height", 16, "--channels", 4, "--hidden", 8, "--batch", 4,
              "--test-fraction", 0.25, "--val-fraction", 0.25]
    return {
        "lm-adaptive": ["lm", "--data", corpus(tmp_path), "--softmax", "adaptive", *LM],
        "classify": ["classify", "--data", write_labelled(tmp_path), "--batch", 8, *NET],
        "tag": ["tag", "--data", write_tagged(tmp_path), "--hidden", 8, "--embed", 8,
                "--char-embed", 4, "--char-hidden", 4, "--min-count", 1, "--batch", 4],
        "forecast": ["forecast", "--data", write_series(tmp_path), "--window", 24, "--horizon", 6,
                     "--layers", 1, "--hidden", 8, "--batch", 8],
        "seq2seq": ["seq2seq", "--data", write_pairs(tmp_path), "--batch", 8, "--embed", 8,
                    "--enc-hidden", 8, "--hidden", 16, "--test-pairs", 4, "--beam-size", 2],
        "cond": ["cond", "--data", write_names(tmp_path), "--hidden", 16, "--batch", 8],
        "recognize": ["recognize", "--data", write_captchas(tmp_path / "caps"), "--layers", 1,
                      "--time-stride", 2, *images],
        "image-to-text": ["image-to-text", "--data", write_captchas(tmp_path / "caps"),
                          "--conv-layers", 2, "--vector", 8, "--max-len", 6, *images],
    }[kind] + steps


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lm-adaptive", "classify", "tag", "forecast",
                                  "seq2seq", "cond", "recognize", "image-to-text"])
def test_every_task_trains_under_two_processes(tmp_path, kind):
    """Each task's model under DDP: no unused-parameter error (e.g. an adaptive softmax's idle
    tail cluster), the run folder written by rank 0 with its test figures."""
    results = finish(launch(["train", *task_argv(kind, tmp_path), "--out", tmp_path / "run"], 2))
    assert_ok(results)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["steps"] == 2
    if not kind.startswith("lm"):   # the LM has test figures with --test-data only
        assert any(k.startswith("test_") for k in metrics)


@pytest.mark.slow
def test_a_forecaster_with_no_gru_to_train_ends_at_step_0_under_two_processes(tmp_path):
    """A validation part of fewer origins than the horizon trains no GRU: every rank ends its
    loop at step 0 alike (no rank left waiting in a collective), best.pt is the classical
    forecast and the test part is scored."""
    from task_fixtures import write_series
    argv = ["train", "forecast", "--data", write_series(tmp_path), "--horizon", 12,
            "--layers", 1, "--hidden", 8, "--batch", 8, "--max-steps", 20, "--quiet",
            "--out", tmp_path / "run"]
    results = finish(launch(argv, 2))
    assert_ok(results)
    assert "the GRU is not trained" in results[0][1]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["steps"] == 0 and metrics["best_step"] == 0 and "test_mase" in metrics


@pytest.mark.slow
def test_the_linear_start_reads_one_clock_under_two_processes(tmp_path):
    """With --max-minutes the classifier's linear start asks the time left after each penalty:
    rank 0's clock, summed over the ranks, so every rank stops its penalty path alike."""
    argv = ["train", *task_argv("classify", tmp_path), "--max-minutes", 5]
    results = finish(launch([*argv, "--out", tmp_path / "run"], 2))
    assert_ok(results)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == 2
    # Chinese: characters, so the start fits two n-gram orders, each asking the clock
    from test_classify_tokens import write_zh
    argv = ["train", "classify", "--data", write_zh(tmp_path), "--batch", 8, "--min-count", 1,
            *NET, "--max-steps", 2, "--eval-every", 2, "--quiet", "--max-minutes", 5]
    results = finish(launch([*argv, "--out", tmp_path / "zh"], 2))
    assert_ok(results)
    assert json.loads((tmp_path / "zh" / "metrics.json").read_text())["steps"] == 2


class CarriedState:
    """A trainer task on rnnkit.LSTM with layer norm and learned initial states, the state
    carried between steps (so the initial states go unused on odd steps)."""
    unit = "step"

    def __init__(self):
        import rnnkit
        torch.manual_seed(0)
        self.model = rnnkit.LSTM(3, 4, batch_first=True, layer_norm=True, learn_init=True)
        self.state = None

    def train_batch(self, step):
        g = torch.Generator().manual_seed(step)
        x, y = torch.randn(8, 5, 3, generator=g), torch.randn(8, 5, 4, generator=g)
        return distributed.shard(x), distributed.shard(y), step % 2 == 0

    def loss(self, batch):
        x, y, first = batch
        out, state = self.model(x, None if first else self.state)
        self.state = tuple(s.detach() for s in state)
        return torch.nn.functional.mse_loss(out, y), len(x)

    def evaluate(self):
        return {"val_loss": 0.0}


def train_carried(rank=0, port=0, out=None):
    from rnnkit.train import TrainConfig, Trainer
    if port:
        os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                          LOCAL_WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                          RNNKIT_THREADS="1", RNNKIT_DDP_TIMEOUT="60")
        distributed.setup()
    task = CarriedState()
    config = TrainConfig(max_steps=4, eval_every=4, warmup_steps=0, schedule="constant", lr=0.05)
    Trainer(task, config).fit()
    if rank == 0 and out is not None:
        torch.save(task.model.state_dict(), out)
    distributed.teardown()
    return task.model.state_dict()


@pytest.mark.slow
def test_layer_norm_and_learned_initial_states_under_ddp(tmp_path):
    """The hand-written BPTT node under DDP's gradient hooks, with parameters that some steps
    leave without a gradient (learned initial states once a state is carried)."""
    import torch.multiprocessing as mp
    one = train_carried()
    assert any(k.startswith("init_") for k in one) and any(k.startswith("ln_") for k in one)
    mp.spawn(train_carried, args=(free_port(), tmp_path / "two.pt"), nprocs=2)
    two = torch.load(tmp_path / "two.pt")
    for k in one:
        assert torch.allclose(one[k], two[k], atol=2e-5), \
            f"{k}: {(one[k] - two[k]).abs().max():.3g}"


@pytest.mark.slow
def test_torchrun_itself(tmp_path):
    """The real launcher: ``torchrun --nproc_per_node 2 -m rnnkit train lm ...``."""
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    if not os.path.exists(torchrun):
        pytest.skip("no torchrun beside this Python")
    run = tmp_path / "run"
    p = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", str(free_port()),
                        "-m", "rnnkit", "train", "lm", "--data", str(corpus(tmp_path)),
                        "--out", str(run), "--max-steps", "2", "--eval-every", "2", *map(str, LM)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("best validation loss") == 2   # rank 0's two closing lines, once
    assert json.loads((run / "metrics.json").read_text())["steps"] == 2


@pytest.mark.slow
def test_an_lr_drop_is_made_alike_under_two_processes(tmp_path):
    """--lr-drops under DDP: every rank goes back to the same best state at the same step, so
    two processes reach the parameters of one (a high rate makes validation stall early)."""
    argv = ["train", "classify", "--data", write_labelled(tmp_path), "--batch", 8,
            "--max-steps", 16, "--eval-every", 1, "--patience", 2, "--lr-drops", 2,
            "--lr", 0.3, "--warmup-steps", 0, "--schedule", "constant", *NET,
            "--dropout", 0, "--word-dropout", 0]
    one = finish(launch([*argv, "--out", tmp_path / "one"], 1))
    two = finish(launch([*argv, "--out", tmp_path / "two"], 2))
    assert_ok(one + two)
    assert "back to its weights" in one[0][1] and one[0][1].count("drop") == \
        two[0][1].count("drop")
    same_parameters(tmp_path / "one" / "last.pt", tmp_path / "two" / "last.pt")


@pytest.mark.slow
def test_the_ranks_read_one_clock_before_their_first_step(tmp_path, monkeypatch):
    """Rank 0 alone writes the step-0 evaluation's checkpoints (here slowed to 15 s): by its own
    clock it was past --max-minutes and stopped, while rank 1's said take a step, and the run
    hung to the timeout, then said 'lost contact with another rank (a process died ...)'."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os, time\n"
        "if os.environ.get('RANK') == '0':\n"
        "    import rnnkit.train.callbacks as callbacks\n"
        "    save = callbacks.save_checkpoint\n"
        "    callbacks.save_checkpoint = lambda *a, **k: (time.sleep(15), save(*a, **k))[1]\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]))
    argv = ["train", *task_argv("classify", tmp_path), "--max-steps", 50, "--max-minutes", 0.2,
            "--out", tmp_path / "run"]
    results = finish(launch(argv, 2, timeout_s=40))
    assert_ok(results)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == 0
