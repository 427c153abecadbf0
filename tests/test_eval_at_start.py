"""A task with ``eval_at_start`` is scored before the first step: best.pt can be the model the
run starts from, a resumed run does not score step 0 twice, a run without a finite validation
loss still fails; a task without it is first scored at ``eval_every`` as before."""
import json
import math

import pytest
import torch

from rnnkit.tasks.common import train
from rnnkit.train import Checkpointer, TrainConfig, Trainer, load_checkpoint
from rnnkit.train.trainer import TrainingError


class DriftTask:
    """y = w·x: validation wants w = 0 (where it starts), training pulls w towards 2, so every
    step makes the validation loss worse."""
    unit = "example"

    def __init__(self, at_start=True, val=0.0):
        torch.manual_seed(0)
        self.model = torch.nn.Linear(3, 1, bias=False)
        torch.nn.init.zeros_(self.model.weight)
        self.val = val
        if at_start:
            self.eval_at_start = True

    def train_batch(self, step):
        return torch.randn(8, 3, generator=torch.Generator().manual_seed(step))

    def loss(self, x):
        return (self.model(x) - 2 * x.sum(1, keepdim=True)).pow(2).mean(), len(x)

    def evaluate(self):
        x = torch.randn(16, 3, generator=torch.Generator().manual_seed(999))
        return {"val_loss": float(self.model(x).pow(2).mean()) + self.val}


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def config(**kw):
    return TrainConfig(**{"lr": 0.1, "max_steps": 6, "eval_every": 2, "warmup_steps": 0,
                          "log_every": 2, **kw})


def test_the_starting_model_can_be_best(tmp_path):
    task = DriftTask()
    metrics = train(task, config(), tmp_path / "run", quiet=True, log=lambda *a: None)
    evals = rows(tmp_path / "run/metrics.jsonl")
    assert [r["step"] for r in evals] == [0, 2, 4, 6]
    assert evals[0]["best"] and not any(r["best"] for r in evals[1:])
    assert evals[0]["train_loss"] is None and evals[1]["train_loss"] > 0   # no step before 0
    assert metrics["best_step"] == 0 and metrics["best_val_loss"] == evals[0]["val_loss"] == 0.0
    best = load_checkpoint(tmp_path / "run/best.pt")
    assert best["trainer"]["step"] == 0 and not best["model"]["weight"].any()
    assert task.model.weight.abs().sum() == 0   # train() left best.pt, the start, in the model


def test_without_the_option_the_first_evaluation_is_at_eval_every(tmp_path):
    metrics = train(DriftTask(at_start=False), config(), tmp_path / "run", quiet=True,
                    log=lambda *a: None)
    assert [r["step"] for r in rows(tmp_path / "run/metrics.jsonl")] == [2, 4, 6]
    assert metrics["best_step"] == 2


class StopAt:
    def __init__(self, step):
        self.step = step

    def on_eval(self, trainer, metrics):
        if metrics["step"] == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("cut", [0, 2])
def test_resumed_run_scores_step_0_once_and_ends_as_a_whole_run(tmp_path, cut):
    whole = Trainer(DriftTask(), config(), [Checkpointer(tmp_path / "whole")])
    whole.fit()
    first = Trainer(DriftTask(), config(), [Checkpointer(tmp_path / "cut"), StopAt(cut)])
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    resumed = Trainer(DriftTask(), config(), [Checkpointer(tmp_path / "cut")])
    resumed.resume(tmp_path / "cut/last.pt")
    assert resumed.step == cut
    summary = resumed.fit()
    assert [r["step"] for r in rows(tmp_path / "cut/metrics.jsonl")] == [0, 2, 4, 6]
    assert summary["best_step"] == 0
    torch.testing.assert_close(resumed.model.weight, whole.model.weight)


def test_no_finite_validation_loss_still_fails(tmp_path):
    with pytest.raises(TrainingError, match="learned nothing: no evaluation gave a finite"):
        train(DriftTask(val=math.nan), config(), tmp_path / "run", quiet=True,
              log=lambda *a: None)
    assert [r["step"] for r in rows(tmp_path / "run/metrics.jsonl")] == [0, 2, 4, 6]
