"""Training: loss falls, checkpoints reproduce samples, resume continues exactly, bad steps skip."""
import json
import math

import pytest
import torch

import rnnkit

from rnnkit.decode import sample
from rnnkit.train import Checkpointer, Trainer
from rnnkit.train.lm import build_lm_task, load_lm

from lm_fixtures import CHINESE, tiny_configs, write_corpus


def train(tmp_path, corpus, out="run", callbacks=(), **cfg):
    data, model, tcfg = tiny_configs(corpus, **cfg)
    torch.manual_seed(tcfg.seed)
    task = build_lm_task(data, model, log=lambda *a: None)
    trainer = Trainer(task, tcfg, [Checkpointer(tmp_path / out), *callbacks])
    return trainer, trainer.fit()


def test_loss_falls_and_run_folder_is_complete(tmp_path):
    trainer, summary = train(tmp_path, write_corpus(tmp_path))
    rows = [json.loads(l) for l in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30]
    assert rows[-1]["val_loss"] < rows[0]["val_loss"] < math.log(trainer.task.model.config.vocab_size)
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert {"val_bits", "val_ppl", "grad_norm", "lr", "tokens"} <= set(rows[0])
    final = json.loads((tmp_path / "run/metrics.json").read_text())
    assert final["steps"] == 30
    assert final["tokens_seen"] == sum(trainer.task.train[i][1].numel() for i in range(30))
    assert final["best_val_loss"] == min(r["val_loss"] for r in rows)
    logged = [json.loads(l) for l in (tmp_path / "run/train.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [5, 10, 15, 20, 25, 30]
    assert all(r["grad_norm"] > 0 for r in logged)
    for name in ("best.pt", "last.pt", "loss.png"):
        assert (tmp_path / "run" / name).stat().st_size > 0


def test_save_load_gives_identical_samples(tmp_path):
    trainer, _ = train(tmp_path, write_corpus(tmp_path, CHINESE))
    model, vocab = load_lm(tmp_path / "run/last.pt")
    prime = vocab.encode("床前")
    a = list(sample(trainer.task.model, prime, 40, 1.0, top_k=5, seed=7))
    b = list(sample(model, prime, 40, 1.0, top_k=5, seed=7))
    assert torch.equal(torch.cat(a), torch.cat(b))
    assert all(ch in CHINESE for ch in vocab.decode(torch.cat(b)))


class Interrupt:
    def __init__(self, at):
        self.at = at

    def on_eval(self, trainer, metrics):
        if metrics["step"] == self.at:
            raise KeyboardInterrupt


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    corpus = write_corpus(tmp_path)
    full, _ = train(tmp_path, corpus, out="full")
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, corpus, out="cut", callbacks=[Interrupt(at=20)])
    data, model, tcfg = tiny_configs(corpus)
    task = build_lm_task(data, model, log=lambda *a: None)
    resumed = Trainer(task, tcfg, [Checkpointer(tmp_path / "cut")]).resume(tmp_path / "cut/last.pt")
    assert resumed.step == 20
    resumed.fit()
    for (name, p), q in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(p, q, msg=name)
    steps = [json.loads(l)["step"] for l in (tmp_path / "cut/metrics.jsonl").read_text().splitlines()]
    assert steps == [10, 20, 30]
    logged = [json.loads(l)["step"] for l in (tmp_path / "cut/train.jsonl").read_text().splitlines()]
    assert logged == [5, 10, 15, 20, 25, 30]


class NaNOnce:
    """Wraps a task so that one step's loss is NaN."""

    def __init__(self, task, bad_step):
        self.task, self.bad_step, self.model, self.n = task, bad_step, task.model, 0

    def train_batch(self, step):
        return self.task.train_batch(step)

    def loss(self, batch):
        loss, count = self.task.loss(batch)
        self.n += 1
        return (loss * math.nan if self.n == self.bad_step else loss), count

    def evaluate(self):
        return self.task.evaluate()


def test_non_finite_loss_is_skipped_and_counted(tmp_path):
    data, model, tcfg = tiny_configs(write_corpus(tmp_path), max_steps=6, eval_every=6)
    task = NaNOnce(build_lm_task(data, model, log=lambda *a: None), bad_step=3)
    with pytest.warns(UserWarning, match="non-finite loss"):
        summary = Trainer(task, tcfg).fit()
    assert summary["skipped_steps"] == 1 and math.isfinite(summary["best_val_loss"])
    assert all(torch.isfinite(p).all() for p in task.model.parameters())


def test_a_finite_gradient_past_float32s_squares_is_clipped_not_skipped():
    """A ReLU RNN with W_hh = 1.5·I over 100 steps has finite gradients of norm ~3e35, whose
    float32 squares overflow: every step was skipped as a non-finite gradient, with the loss
    shown as its value, where --clip should scale it."""
    from rnnkit.train.gradients import clip_gradients
    torch.manual_seed(0)
    rnn, out = rnnkit.RNN(1, 16, nonlinearity="relu"), torch.nn.Linear(16, 1)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(1.5 * torch.eye(16))
    h, _ = rnn(torch.rand(100, 8, 1))
    torch.nn.functional.mse_loss(out(h[-1]), torch.rand(8, 1)).backward()
    params = [*rnn.parameters(), *out.parameters()]
    assert all(torch.isfinite(p.grad).all() for p in params)
    norm = clip_gradients(params, 5.0)
    assert math.isfinite(norm) and norm > 1e30
    after = torch.linalg.vector_norm(torch.stack([p.grad.double().norm() for p in params]))
    assert float(after) == pytest.approx(5.0, rel=1e-4)


def test_a_log_interval_of_skipped_steps_has_no_training_loss(tmp_path):
    """train.jsonl said train_loss 0.0 for an interval whose every step was skipped."""
    data, model, tcfg = tiny_configs(write_corpus(tmp_path), max_steps=4, eval_every=4)
    tcfg.log_every = 1
    task = NaNOnce(build_lm_task(data, model, log=lambda *a: None), bad_step=3)
    with pytest.warns(UserWarning, match="non-finite loss"):
        Trainer(task, tcfg, [Checkpointer(tmp_path / "run")]).fit()
    rows = [json.loads(l) for l in open(tmp_path / "run" / "train.jsonl")]
    assert [r["train_loss"] is None for r in rows] == [False, False, True, False]


class NaNFrom(NaNOnce):
    def loss(self, batch):
        loss, count = self.task.loss(batch)
        self.n += 1
        return (loss * math.nan if self.n >= self.bad_step else loss), count


def test_a_run_that_diverges_after_a_finite_best_ends_with_it(tmp_path):
    """50 non-finite steps in a row after a good best.pt: the run raised, exit 1 and no
    metrics.json, though its best model stood."""
    from rnnkit.tasks.common import train
    data, model, tcfg = tiny_configs(write_corpus(tmp_path), max_steps=80, eval_every=5)
    task = NaNFrom(build_lm_task(data, model, log=lambda *a: None), bad_step=8)
    task.unit = "char"
    with pytest.warns(UserWarning, match="the run ends with best.pt"):
        metrics = train(task, tcfg, tmp_path / "run", quiet=True)
    assert metrics["steps"] < 80 and metrics["best_step"] is not None
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_a_run_whose_folder_is_replaced_writes_nothing_into_the_new_one(tmp_path):
    """The folder deleted mid-run and made again (another run's): the first run wrote its rows
    and checkpoints into the other run's files."""
    import shutil
    from rnnkit.train import CheckpointError
    out = tmp_path / "run"

    class Replace:
        def on_log(self, trainer, stats):
            if trainer.step == 2:
                shutil.rmtree(out)
                out.mkdir()
                (out / ".lock").write_text("pid 2 since later: rnnkit train lm ...")
                (out / "other.txt").write_text("another run's")
    data, model, tcfg = tiny_configs(write_corpus(tmp_path), max_steps=6, eval_every=3)
    tcfg.log_every = 1
    task = build_lm_task(data, model, log=lambda *a: None)
    out.mkdir()
    (out / ".lock").write_text("pid 1 since now: rnnkit train lm ...")   # as RunLock writes
    with pytest.raises(CheckpointError, match="the run folder was removed or replaced"):
        Trainer(task, tcfg, [Replace(), Checkpointer(out)]).fit()
    assert sorted(p.name for p in out.iterdir()) == [".lock", "other.txt"]


def test_train_log_rows_cover_every_step_whatever_log_every(tmp_path):
    """With --log-every 7 and --eval-every 10, the steps between a log row and an evaluation
    were dropped (the row at 14 held 11-14 only, 21 held 21 alone, 29-30 none)."""
    def rows(every, out):
        torch.manual_seed(0)
        data, model, tcfg = tiny_configs(write_corpus(tmp_path), max_steps=30, eval_every=10)
        tcfg.log_every = every
        task = build_lm_task(data, model, log=lambda *a: None)
        Trainer(task, tcfg, [Checkpointer(tmp_path / out)]).fit()
        return [json.loads(l) for l in (tmp_path / out / "train.jsonl").read_text().splitlines()]
    one = rows(1, "one")
    each = {r["step"]: (r["train_loss"], r["tokens"] - t) for r, t in
            zip(one, [0] + [r["tokens"] for r in one])}              # (loss, tokens) a step
    seven = rows(7, "seven")
    assert [r["step"] for r in seven] == [7, 10, 14, 20, 21, 28, 30]
    start = 0
    for r in seven:   # each row: the token-weighted mean of its steps' losses
        window = [each[s] for s in range(start + 1, r["step"] + 1)]
        mean = sum(l * n for l, n in window) / sum(n for _, n in window)
        assert r["train_loss"] == pytest.approx(mean, rel=1e-5)
        start = r["step"]


def test_resume_into_a_task_of_other_ids_is_refused(tmp_path):
    """A task built from Python on other text (its vocabulary other tokens, the same size or
    not) would go on training the run's weights with ids that mean other characters."""
    from rnnkit.train import CheckpointError
    train(tmp_path, write_corpus(tmp_path))
    other = tmp_path / "other"
    other.mkdir()
    data, model, tcfg = tiny_configs(write_corpus(other, CHINESE))
    task = build_lm_task(data, model, log=lambda *a: None)
    with pytest.raises(CheckpointError, match="the task's vocab is not the checkpoint's"):
        Trainer(task, tcfg).resume(tmp_path / "run/last.pt")
    data, model, tcfg = tiny_configs(write_corpus(other))           # the run's own text: fine
    Trainer(build_lm_task(data, model, log=lambda *a: None), tcfg).resume(tmp_path / "run/last.pt")
