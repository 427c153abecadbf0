"""Data-parallel training without a second process (rnnkit.train.distributed): the launch's
environment checked, error lines per rank, batch shards, the end-of-run barrier. The runs with
real ranks are in test_ddp.py."""
import os
import re
import subprocess
import sys

import pytest
import torch

from rnnkit.train import distributed


def test_world_size_without_rendezvous_is_one_line(tmp_path):
    env = {**os.environ, "WORLD_SIZE": "2"}
    for k in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    p = subprocess.run([sys.executable, "-m", "rnnkit", "train", "lm", "--data", "x.txt",
                        "--out", tmp_path / "run", "--max-steps", "1"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "rnnkit: error: WORLD_SIZE=2 asks for a data-parallel run but RANK, LOCAL_RANK, "
        "MASTER_ADDR, MASTER_PORT are not set: launch with torchrun --nproc_per_node N (and "
        "--rdzv-endpoint HOST:PORT for several machines), or unset WORLD_SIZE"]
    assert not (tmp_path / "run").exists()


def test_a_ranks_error_line_names_it_and_is_one_write(monkeypatch, capsys):
    """Every rank writes its error: a line in two writes ran into another rank's, and three
    alike lines did not say which rank wrote which."""
    from rnnkit.cli.main import fail
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "2")
    writes = []
    monkeypatch.setattr("sys.stderr.write", writes.append, raising=False)
    assert fail("--batch 8 cannot be split over 3 processes", 2) == 2
    assert writes == ["rnnkit: error: rank 2: --batch 8 cannot be split over 3 processes\n"]
    monkeypatch.setenv("RANK", "0")
    fail("bad data", 2)
    assert writes[-1] == "rnnkit: error: bad data\n"


def test_resume_under_another_process_count_names_the_counts_that_fit(monkeypatch):
    """On --resume the batch cannot change, and the message said to choose another batch."""
    from rnnkit.config import ConfigError
    monkeypatch.setattr(distributed, "_world", distributed.World(0, 3))
    with pytest.raises(ConfigError, match=r"on --resume the batch is the run's: launch 1, 2, 4, "
                                          r"8 processes"):
        distributed.check_batch(8, resumed=True)
    with pytest.raises(ConfigError, match="choose a multiple of 3"):
        distributed.check_batch(8)


@pytest.mark.parametrize("name, value, said", [   # (a short timeout: a regression fails fast)
    ("RNNKIT_THREADS", "-3", "RNNKIT_THREADS=-3: expected threads in [1, 1024]"),
    ("RNNKIT_THREADS", "abc", "RNNKIT_THREADS='abc': expected a count of threads"),
    ("RNNKIT_DDP_TIMEOUT", "abc", "RNNKIT_DDP_TIMEOUT='abc': expected whole seconds")])
def test_the_users_own_variables_are_checked_in_their_words(monkeypatch, name, value, said):
    """RNNKIT_THREADS=-3 was passed over; a bad value of either was '(torchrun sets it)'."""
    from rnnkit.config import ConfigError
    for k, v in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1",
                 "MASTER_PORT": "1", "RNNKIT_DDP_TIMEOUT": "1", name: value}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(distributed, "_world", distributed.World(0, 1))
    with pytest.raises(ConfigError, match=re.escape(said)):
        distributed.setup()


def test_ranks_reading_other_data_are_refused():
    """Every rank hashes the data at the path rank 0 sent; another machine's other file at
    that path is refused on every rank, naming the rank and the flag."""
    from rnnkit.cli.fingerprints import same_data
    from rnnkit.data import DataError
    mine = {"data": "sha256:" + "a" * 64}
    same_data(mine, [mine, dict(mine)])
    with pytest.raises(DataError, match=r"rank 1 reads another --data than rank 0 "
                                        r"\(sha256:bbbbbbbbbbbb\.\.\. against sha256:aaaa"):
        same_data(mine, [mine, {"data": "sha256:" + "b" * 64}])
    with pytest.raises(DataError, match="rank 1 reads another --val-data"):
        same_data(mine, [mine, {**mine, "val_data": "sha256:" + "c" * 64}])


def test_shards_and_the_lm_state_whatever_the_world(monkeypatch):
    from rnnkit.config import ConfigError
    from rnnkit.tasks.lm import LMTask
    whole = torch.arange(2 * 8 * 3.0).view(2, 8, 3)                    # (L, B, H)
    parts = []
    for rank in range(4):
        monkeypatch.setattr(distributed, "_world", distributed.World(rank, 4))
        assert distributed.shard(list(range(8))) == [2 * rank, 2 * rank + 1]
        task = LMTask.__new__(LMTask)
        task.load_state_dict({"state": [whole, -whole]})
        assert torch.equal(task.state[0], whole[:, 2 * rank:2 * rank + 2])
        parts.append(task.state_dict())
        with pytest.raises(ConfigError, match="split evenly over 4 processes"):
            distributed.shard(list(range(6)))
    joined = LMTask.join_states(parts)["state"]
    assert torch.equal(joined[0], whole) and torch.equal(joined[1], -whole)


def test_a_run_ends_with_every_rank_at_a_barrier(monkeypatch):
    """A rank that left the process group while another's last messages were in flight could
    abort at exit (gloo); finish() waits for every rank, and a rank lost there is one line."""
    from rnnkit.train.distributed import DistributedError
    calls = []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed.dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(distributed, "_world", distributed.World())
    distributed.finish()                           # one process: nothing to wait for
    assert calls == []
    monkeypatch.setattr(distributed, "_world", distributed.World(1, 2))
    distributed.finish()
    assert calls == ["barrier"]

    def lost():
        raise RuntimeError("Connection closed by peer")
    monkeypatch.setattr(distributed.dist, "barrier", lost)
    with pytest.raises(DistributedError, match=r"^rank 1 of 2: lost contact with another rank "
                                               r"during the end of the run"):
        distributed.finish()


def test_training_meets_the_barrier_after_fit_and_before_the_test_part(monkeypatch, tmp_path):
    """The barrier waits for every rank's last collective, not for rank 0's test scoring (a
    long test part timed the other ranks out there), and a failed fit never reaches it (a
    rank would wait for ranks that stopped)."""
    from rnnkit.tasks import common
    from rnnkit.train import TrainConfig
    from task_fixtures import classify_task
    order = []
    monkeypatch.setattr(distributed, "finish", lambda: order.append("barrier"))
    task = classify_task(tmp_path)
    scored = task.test_metrics
    monkeypatch.setattr(task, "test_metrics", lambda: order.append("test") or scored())
    config = TrainConfig(max_steps=1, eval_every=1, warmup_steps=0)
    common.train(task, config, tmp_path / "run", quiet=True, log=lambda *a: None)
    assert order == ["barrier", "test"]

    def broken(self):
        raise ValueError("bad batch")
    monkeypatch.setattr(common.Trainer, "fit", broken)
    with pytest.raises(ValueError):
        common.train(task, config, tmp_path / "other", quiet=True, log=lambda *a: None)
    assert order == ["barrier", "test"]


def test_the_classifiers_word_dropout_draws_per_rank(monkeypatch, tmp_path):
    """Every rank seeded its share's mask by the step alone: the same pattern on each half."""
    from rnnkit.tasks import classify
    from task_fixtures import classify_task
    task = classify_task(tmp_path, dropout=0.0)
    task.data_config.word_dropout = 0.5
    seeds = []
    monkeypatch.setattr(classify, "drop_tokens",
                        lambda x, p, gen, unk: seeds.append(gen.initial_seed()) or x)
    task.train_batch(3)                                  # one process: the step, as before
    for rank in range(2):
        monkeypatch.setattr(distributed, "_world", distributed.World(rank, 2))
        task.train_batch(3)
    monkeypatch.setattr(distributed, "_world", distributed.World())
    assert seeds[0] == 3 and len(set(seeds)) == 3


def test_rnnkit_threads_holds_for_one_process_too(monkeypatch):
    """torchrun --nproc_per_node 1 (WORLD_SIZE 1) and a plain run ignored RNNKIT_THREADS, and
    took a value that is no count without a word."""
    from rnnkit.config import ConfigError
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("RNNKIT_THREADS", "1")
        distributed.setup()
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("RNNKIT_THREADS", "abc")
        with pytest.raises(ConfigError, match="RNNKIT_THREADS='abc': expected a count"):
            distributed.setup()
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("value, on", [("0", False), ("false", False), ("off", False),
                                       ("no", False), ("1", True), ("on", True), ("", False)])
def test_ddp_find_unused_reads_rnnkits_on_and_off(monkeypatch, value, on):
    """RNNKIT_DDP_FIND_UNUSED=false switched it on: only '' and '0' were off."""
    from rnnkit.train.distributed import may_skip_parameters
    monkeypatch.setenv("RNNKIT_DDP_FIND_UNUSED", value)
    assert may_skip_parameters(torch.nn.Linear(2, 2)) is on


def test_a_data_warning_is_said_by_rank_0_alone(monkeypatch, capsys):
    """Every rank reads the data: each printed its warnings, interleaved on one line."""
    from rnnkit.tasks.common import warn
    for rank in range(2):
        monkeypatch.setattr(distributed, "_world", distributed.World(rank, 2))
        warn(f"from rank {rank}")
    monkeypatch.setattr(distributed, "_world", distributed.World())
    assert capsys.readouterr().err == "rnnkit: warning: from rank 0\n"


def test_a_batch_over_the_data_is_checked_when_the_task_is_built(monkeypatch):
    """--batch 64 over 43 examples: every step's batch is the 43, which 2 processes cannot
    share; it failed at the first step, after step 0's checkpoint, so the run could never
    go on."""
    from rnnkit.config import ConfigError
    from rnnkit.data.pairs import PairBatches
    from rnnkit.tasks.common import Batches
    monkeypatch.setattr(distributed, "_world", distributed.World(0, 2))
    try:
        with pytest.raises(ConfigError, match=r"--batch 64 is more than the 43 training "
                                              r"examples.*at most 42"):
            Batches(43, 64)
        with pytest.raises(ConfigError, match=r"--batch 64 is more than the 43 training"):
            PairBatches([([1], [2])] * 43, 64)
        assert Batches(44, 64).batch == 44 and Batches(43, 8).batch == 8
        monkeypatch.setattr(distributed, "_world", distributed.World(0, 4))
        with pytest.raises(ConfigError, match=r"no batch fits; launch at most 3 processes"):
            Batches(3, 4)
    finally:
        monkeypatch.setattr(distributed, "_world", distributed.World())
