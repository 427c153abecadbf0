"""The Trainer with a task of one's own: what it returns is checked where it is read, what its
checkpoints would hold is checked before the first step, and a resume from Python settles
best.pt and keeps to its own folder."""
import enum
import json
import math

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.config import ConfigError
from rnnkit.train import Checkpointer, Trainer, TrainConfig, load_checkpoint, save_checkpoint
from rnnkit.train.checkpoint import CheckpointError
from rnnkit.train.resume import NEXT_BEST
from rnnkit.train.trainer import TrainingError


class Regression:
    """An LSTM reading 5 steps of 3 features, a linear read-out of its last output."""

    def __init__(self, **overrides):
        torch.manual_seed(0)
        self.model = torch.nn.ModuleDict({"rnn": rnnkit.LSTM(3, 8), "out": torch.nn.Linear(8, 1)})
        g = torch.Generator().manual_seed(1)
        self.x, self.y = torch.randn(64, 5, 3, generator=g), torch.randn(64, 1, generator=g)
        self.__dict__.update(overrides)

    def predict(self, x):
        out, _ = self.model["rnn"](x.transpose(0, 1))
        return self.model["out"](out[-1])

    def train_batch(self, step):
        i = (step * 8) % 64
        return self.x[i:i + 8], self.y[i:i + 8]

    def loss(self, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(self.predict(x), y), len(y)

    def evaluate(self):
        return {"val_loss": float(torch.nn.functional.mse_loss(self.predict(self.x), self.y))}


CONFIG = dict(max_steps=6, eval_every=3, warmup_steps=0)


class Ordinal(enum.IntEnum):
    FIRST = 1


def test_a_checkpoint_entry_of_ones_own_may_not_replace_the_runs(tmp_path):
    """checkpoint_extras() {"model": ...} made best.pt's weights that value; {"version": ...}
    made every checkpoint unreadable."""
    task = Regression(checkpoint_extras=lambda: {"model": {"bogus": 1}})
    with pytest.raises(ValueError, match=r"task.checkpoint_extras\(\) holds 'model', the name of "
                                         r"the checkpoint's own entry"):
        Trainer(task, TrainConfig(**CONFIG), [Checkpointer(tmp_path / "a")]).fit()
    with pytest.raises(ValueError, match=r"Checkpointer\(extras=...\) holds 'version'"):
        Trainer(Regression(), TrainConfig(**CONFIG),
                [Checkpointer(tmp_path / "b", extras={"version": "2.1"})]).fit()
    assert not (tmp_path / "a" / "last.pt").exists()


@pytest.mark.parametrize("value, named", [(np.arange(3), "numpy.ndarray"),
                                          (np.int64(3), "numpy.int64"),
                                          (np.float64(0.5), "numpy.float64"),   # (a float)
                                          (Ordinal.FIRST, "test_trainer_protocol.Ordinal"),
                                          (object(), "builtins.object")])
def test_a_value_loading_cannot_read_is_refused_before_the_first_step(tmp_path, value, named):
    """A numpy number or an object of one's own trained "OK", and every checkpoint of the run
    was then refused on load."""
    task = Regression(checkpoint_extras=lambda: {"vocab": {"ids": [value]}})
    trainer = Trainer(task, TrainConfig(**CONFIG), [Checkpointer(tmp_path)])
    with pytest.raises(TypeError, match=rf"\['vocab'\]\['ids'\]\[0\] is a {named}; a checkpoint "
                                        rf"holds plain data only"):
        trainer.fit()
    assert trainer.step == 0


def test_numbers_from_numpy_and_tensors_are_taken_as_pythons(tmp_path):
    """A numpy val_loss crashed the metrics file (a numpy bool is no JSON); a tensor count
    made tokens_seen a tensor."""
    inner = Regression()
    task = Regression(evaluate=lambda: {"val_loss": np.float64(inner.evaluate()["val_loss"]),
                                        "r2": np.float32(0.5), "ok": np.bool_(True),
                                        "per_class": [np.float64(0.25), np.float64(0.75)]},
                      loss=lambda b: (Regression.loss(inner, b)[0], torch.tensor(8)))
    task.model = inner.model
    summary = Trainer(task, TrainConfig(**CONFIG), [Checkpointer(tmp_path)]).fit()
    assert type(summary["tokens_seen"]) is int and type(summary["best_val_loss"]) is float
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 6] and rows[0]["r2"] == 0.5
    assert rows[0]["ok"] is True and rows[0]["per_class"] == [0.25, 0.75]
    Trainer(task, TrainConfig(**{**CONFIG, "max_steps": 9}), [Checkpointer(tmp_path)]).resume(
        tmp_path / "last.pt").fit()                       # its checkpoints load
    Trainer(task, TrainConfig(**{**CONFIG, "max_steps": 12}), [Checkpointer(tmp_path)]).resume(
        tmp_path / "best.pt")                             # best.pt of the same folder: its own


@pytest.mark.parametrize("hook, value, message", [
    ("loss", lambda b: 0.5, r"task.loss\(batch\) must return \(loss, count\)"),
    ("loss", lambda b: (torch.tensor(0.5), 8), r"loss has no graph"),
    ("loss", lambda b: (torch.ones(2, requires_grad=True).sum() * 0, 0), r"count must be above 0"),
    ("evaluate", lambda: 0.5, r"task.evaluate\(\) must return a dict"),
    ("evaluate", lambda: {"val_loss": "low"}, r"task.evaluate\(\)\['val_loss'\] must be a number"),
    ("evaluate", lambda: {"val_loss": 1.0, "step": 999}, r"returns 'step', which the Trainer "
                                                         r"writes itself"),
])
def test_a_hook_that_returns_the_wrong_thing_is_named(hook, value, message):
    task = Regression(**{hook: value})
    with pytest.raises((TypeError, ValueError), match=message):
        Trainer(task, TrainConfig(**CONFIG)).fit()


def test_what_a_task_lacks_or_a_config_changed_since_is_said_at_once():
    task = Regression()
    del task.__dict__["x"]
    with pytest.raises(TypeError, match=r"lacks evaluate"):
        Trainer(type("NoEval", (), {"model": task.model, "train_batch": task.train_batch,
                                    "loss": task.loss})(), TrainConfig(**CONFIG))
    frozen = Regression()
    frozen.model.requires_grad_(False)
    with pytest.raises(ValueError, match="has no parameter that requires a gradient"):
        Trainer(frozen, TrainConfig(**CONFIG))
    config = TrainConfig(**CONFIG)
    config.max_steps = 0                                   # trained forever
    with pytest.raises(ConfigError, match="set max_steps or max_minutes"):
        Trainer(Regression(), config)


def test_a_validation_loss_nan_at_every_evaluation_is_an_error():
    """fit() returned best_val_loss inf, best_step None, and no best.pt, without a word."""
    task = Regression(evaluate=lambda: {"val_loss": math.nan})
    with pytest.raises(TrainingError, match="no evaluation gave a finite validation loss"):
        Trainer(task, TrainConfig(**CONFIG)).fit()


def test_the_runs_own_error_survives_a_callback_that_fails_on_abort():
    class Faulty:
        def on_train_abort(self, trainer):
            raise RuntimeError("the callback's own")
    task = Regression(evaluate=lambda: {"val_loss": math.nan})
    with pytest.raises(TrainingError) as e:
        Trainer(task, TrainConfig(**CONFIG), [Faulty()]).fit()
    assert "on_train_abort raised RuntimeError: the callback's own" in e.value.__notes__[0]


def test_resume_from_python_keeps_to_its_own_folder_and_settles_best_pt(tmp_path):
    """Resuming run A with a Checkpointer on run B's folder cut B's metrics and replaced its
    checkpoints; a best.pt written aside before a stop stayed aside (best.pt an older step)."""
    for name in ("a", "b"):
        Trainer(Regression(), TrainConfig(**CONFIG), [Checkpointer(tmp_path / name)]).fit()
    b_rows = (tmp_path / "b" / "metrics.jsonl").read_text()
    more = TrainConfig(**{**CONFIG, "max_steps": 9})
    with pytest.raises(CheckpointError, match="holds another run .* than the one resumed from"):
        Trainer(Regression(), more, [Checkpointer(tmp_path / "b")]).resume(
            tmp_path / "a" / "last.pt").fit()
    assert (tmp_path / "b" / "metrics.jsonl").read_text() == b_rows
    # a stop after last.pt, before the move: best.pt an older step's, the new one aside
    a = tmp_path / "a"
    last = load_checkpoint(a / "last.pt")
    (a / "best.pt").rename(a / NEXT_BEST)
    older = {k: v for k, v in last.items() if k not in ("format", "version", "digest")}
    save_checkpoint(a / "best.pt", {**older, "trainer": {**older["trainer"], "step": 3}})
    Trainer(Regression(), more, [Checkpointer(a)]).resume(a / "last.pt")
    assert not (a / NEXT_BEST).exists()
    assert load_checkpoint(a / "best.pt")["trainer"]["step"] == last["trainer"]["best_step"]


@pytest.mark.parametrize("labels", [torch.tensor([0.1, 0.9]), [0.0, math.nan], 7,
                                    {"weights": [1, 2]}])
def test_an_own_entry_named_labels_is_the_tasks_business(tmp_path, labels):
    """The check that a resumed task's ids mean what the run's did compares lists of names
    only: a tensor under "labels" was a traceback, a NaN refused as another label."""
    task = Regression(checkpoint_extras=lambda: {"labels": labels})
    Trainer(task, TrainConfig(**CONFIG), [Checkpointer(tmp_path)]).fit()
    again = Regression(checkpoint_extras=lambda: {"labels": labels})
    Trainer(again, TrainConfig(**{**CONFIG, "max_steps": 9}), [Checkpointer(tmp_path)]).resume(
        tmp_path / "last.pt").fit()
    named = tmp_path / "named"
    Trainer(Regression(checkpoint_extras=lambda: {"labels": ["a", "b"]}), TrainConfig(**CONFIG),
            [Checkpointer(named)]).fit()
    with pytest.raises(CheckpointError, match="the task's labels is not the checkpoint's"):
        Trainer(Regression(checkpoint_extras=lambda: {"labels": ["b", "a"]}),
                TrainConfig(**CONFIG)).resume(named / "last.pt")
