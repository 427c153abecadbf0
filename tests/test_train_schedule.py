"""The learning-rate schedules: warm-up–stable–decay (the default), cosine, constant; their
validation; a resumed run follows the same schedule; runs saved before the choice keep cosine."""
import math

import pytest
import torch

from rnnkit.train import TrainConfig, Trainer
from rnnkit.train.settings import lr_multiplier, saved_train_config


class ToyTask:
    unit = "example"

    def __init__(self):
        torch.manual_seed(0)
        self.model = torch.nn.Linear(3, 1)

    def train_batch(self, step):
        g = torch.Generator().manual_seed(step)
        return torch.randn(8, 3, generator=g)

    def loss(self, x):
        return self.model(x).pow(2).mean(), len(x)

    def evaluate(self):
        return {"val_loss": 0.0}


def lrs(config, steps):
    trainer = Trainer(ToyTask(), config)
    out = []
    for _ in range(steps):
        out.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.train_step(trainer._new_stats())
    return out


def test_wsd_is_flat_then_decays_linearly_over_the_last_part():
    assert lr_multiplier("wsd", 0.0) == lr_multiplier("wsd", 0.8) == 1.0
    assert lr_multiplier("wsd", 0.9) == pytest.approx(0.5)
    assert lr_multiplier("wsd", 1.0) == pytest.approx(0.0)
    assert lr_multiplier("wsd", 0.95, decay_fraction=0.1, min_ratio=0.2) == pytest.approx(0.6)
    assert lr_multiplier("cosine", 0.5, min_ratio=0.1) == pytest.approx(0.55)
    assert lr_multiplier("constant", 0.99) == 1.0


def test_trainer_follows_warmup_then_wsd():
    got = lrs(TrainConfig(lr=1.0, max_steps=100, warmup_steps=10), 100)
    assert got[0] == pytest.approx(0.1) and got[9] == pytest.approx(1.0)   # warm-up (step+1)/10
    assert all(v == pytest.approx(1.0) for v in got[10:81])                 # stable
    assert got[90] == pytest.approx(0.5) and got[99] == pytest.approx(0.05)  # linear decay
    cos = lrs(TrainConfig(lr=1.0, max_steps=100, warmup_steps=0, schedule="cosine",
                          min_lr_ratio=0.1), 51)
    assert cos[50] == pytest.approx(0.55)


def test_resumed_run_follows_the_same_schedule():
    config = TrainConfig(lr=1.0, max_steps=40, warmup_steps=5)
    whole = lrs(config, 40)
    first = Trainer(ToyTask(), config)
    for _ in range(25):
        first.train_step(first._new_stats())
    second = Trainer(ToyTask(), config)
    second.load_state_dict(first.state_dict())
    rest = []
    for _ in range(15):
        rest.append(second.optimizer.param_groups[0]["lr"])
        second.train_step(second._new_stats())
    assert rest == pytest.approx(whole[25:])


def test_runs_saved_before_the_schedule_flag_keep_their_cosine():
    old = {"lr": 2e-3, "warmup_steps": 100, "min_lr_ratio": 0.1, "max_steps": 10}
    assert saved_train_config(old)["schedule"] == "cosine"
    assert saved_train_config({**old, "schedule": "wsd"})["schedule"] == "wsd"


@pytest.mark.parametrize("bad", [{"schedule": "linear"}, {"warmup_steps": -1},
                                 {"decay_fraction": 0}, {"decay_fraction": 1.5},
                                 {"min_lr_ratio": -0.1}, {"lr": -1}, {"lr": math.nan},
                                 {"weight_decay": -1}, {"clip": math.nan}])
def test_bad_schedule_settings_are_refused(bad):
    with pytest.raises(ValueError):
        TrainConfig(**{"max_steps": 10, **bad})


class PlateauTask(ToyTask):
    """Validation improves until step 20, then never again."""

    def __init__(self):
        super().__init__()
        self.trainer = None

    def evaluate(self):
        return {"val_loss": 1.0 / (1 + min(self.trainer.step, 20))}


@pytest.mark.parametrize("patience, steps", [(0, 100), (30, 50), (25, 45)])
def test_patience_stops_a_run_that_no_longer_improves(patience, steps, capsys):
    task = PlateauTask()
    trainer = task.trainer = Trainer(task, TrainConfig(max_steps=100, eval_every=10,
                                                       patience=patience))
    summary = trainer.fit()
    # best at step 20; patience steps later the run validates a last time and ends
    assert trainer.step == steps and summary["best_step"] == 20
    assert ("no better validation loss since step 20" in capsys.readouterr().out) == bool(patience)


def test_a_patience_shorter_than_the_evaluations_is_said():
    """--patience 1 --eval-every 5 validated and checkpointed every step, without a word."""
    with pytest.warns(UserWarning, match="--patience 3 is shorter than --eval-every 10: after "
                                         "each evaluation patience runs out before the next"):
        Trainer(PlateauTask(), TrainConfig(max_steps=100, eval_every=10, patience=3))


class Recorder:
    """Each evaluation's step, learning rate and weights."""

    def __init__(self):
        self.rows = []

    def on_eval(self, trainer, metrics):
        self.rows.append((trainer.step, trainer.optimizer.param_groups[0]["lr"],
                          trainer.model.weight.detach().clone()))


def test_lr_drops_go_back_to_the_best_weights_at_a_lower_rate(capsys):
    task, seen = PlateauTask(), Recorder()
    config = TrainConfig(lr=0.1, max_steps=200, eval_every=10, patience=30, lr_drops=2,
                         schedule="constant", warmup_steps=0)
    trainer = task.trainer = Trainer(task, config, [seen])
    summary = trainer.fit()
    # best at step 20: back to it at 50 (lr 0.01), again at 80 (0.001), the end at 110
    assert trainer.step == 110 and summary["best_step"] == 20 and trainer.drops == 2
    out = capsys.readouterr().out
    assert "step 50: no better validation loss since step 20: back to its weights" in out
    assert "drop 2 of 2" in out and "since step 80 (--patience 30, after 2" in out
    weights = {step: w for step, _, w in seen.rows}
    lr_at = {step: lr for step, lr, _ in seen.rows}
    assert lr_at[40] == pytest.approx(0.1) and lr_at[60] == pytest.approx(0.01)
    assert lr_at[90] == pytest.approx(0.001)
    # ten steps after the drop at 50 the weights have moved from step 20's by ten small steps only
    assert (weights[60] - weights[20]).abs().max() < (weights[50] - weights[20]).abs().max()
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.001)


def test_lr_drops_without_patience_do_nothing_and_say_so():
    task = PlateauTask()
    with pytest.warns(UserWarning, match="--lr-drops 1 does nothing without --patience"):
        trainer = task.trainer = Trainer(task, TrainConfig(max_steps=60, eval_every=10,
                                                           lr_drops=1))
    trainer.fit()
    assert trainer.step == 60 and trainer.drops == 0 and trainer._best_state is None


class Stop(Exception):
    pass


class StopAt:
    def __init__(self, step):
        self.step = step

    def on_eval(self, trainer, metrics):
        if trainer.step == self.step:
            raise Stop


# before the first drop (from best.pt), at its step (saved before it is made), after it
@pytest.mark.parametrize("stop", [40, 50, 60])
def test_a_run_with_lr_drops_resumes_exactly(tmp_path, stop):
    from rnnkit.train.callbacks import Checkpointer
    config = TrainConfig(lr=0.1, max_steps=200, eval_every=10, patience=30, lr_drops=2,
                         schedule="constant", warmup_steps=0)
    task = PlateauTask()
    whole = task.trainer = Trainer(task, config)
    whole.fit()
    task = PlateauTask()
    first = task.trainer = Trainer(task, config, [Checkpointer(tmp_path), StopAt(stop)])
    with pytest.raises(Stop):
        first.fit()
    task = PlateauTask()
    second = task.trainer = Trainer(task, config, [Checkpointer(tmp_path)])
    second.resume(tmp_path / "last.pt").fit()
    assert second.step == whole.step == 110 and second.drops == 2
    assert torch.equal(second.model.weight, whole.model.weight)
    assert torch.equal(second.model.bias, whole.model.bias)


def test_a_resumed_run_without_best_pt_stops_at_patience_instead_of_dropping(tmp_path):
    from rnnkit.train.callbacks import Checkpointer
    config = TrainConfig(lr=0.1, max_steps=200, eval_every=10, patience=30, lr_drops=1,
                         schedule="constant", warmup_steps=0)
    task = PlateauTask()
    first = task.trainer = Trainer(task, config, [Checkpointer(tmp_path), StopAt(40)])
    with pytest.raises(Stop):
        first.fit()
    (tmp_path / "best.pt").unlink()
    task = PlateauTask()
    second = task.trainer = Trainer(task, config)
    with pytest.warns(UserWarning, match="best.pt is missing"):
        second.resume(tmp_path / "last.pt")
    second.fit()
    assert second.step == 50 and second.drops == 0


def test_the_cli_resume_path_reads_best_pt_for_a_drop_to_come(tmp_path, capsys, monkeypatch):
    """``rnnkit train ... --resume`` goes through tasks.common.train with the checkpoint's
    contents (not Trainer.resume): a drop still to come must find best.pt there too."""
    import rnnkit.tasks.common as common
    from rnnkit.train import load_checkpoint

    class Tied(Trainer):   # the PlateauTask reads its step from the trainer that runs it
        def __init__(self, task, *a, **k):
            super().__init__(task, *a, **k)
            task.trainer = self
    monkeypatch.setattr(common, "Trainer", Tied)
    base = dict(lr=0.1, max_steps=200, eval_every=10, patience=30, schedule="constant",
                warmup_steps=0)
    quiet = dict(quiet=True, log=lambda *a: None)
    first = common.train(PlateauTask(), TrainConfig(**base), tmp_path, **quiet)
    assert first["steps"] == 50 and first["best_step"] == 20   # stopped: no drop asked for
    summary = common.train(PlateauTask(), TrainConfig(**base, lr_drops=1), tmp_path,
                           resume_from=load_checkpoint(tmp_path / "last.pt"), **quiet)
    assert summary["steps"] == 80   # dropped at 50 back to step 20's state, stopped at 80
    assert "step 50: no better validation loss since step 20: back to its weights" in \
        capsys.readouterr().out


def timed_task(monkeypatch, pass_seconds):
    """A ToyTask class on a clock of its own: a step takes 1 s, the n-th validation pass
    ``pass_seconds(n)`` s (n from 0). Returns (the class, the passes' end times)."""
    import types

    import rnnkit.train.trainer as trainer_module
    clock, passes = [1000.0], []
    monkeypatch.setattr(trainer_module, "time",
                        types.SimpleNamespace(perf_counter=lambda: clock[0]))

    class Timed(ToyTask):
        def loss(self, x):
            clock[0] += 1.0
            return super().loss(x)

        def evaluate(self):
            clock[0] += pass_seconds(len(passes))
            passes.append(clock[0])
            return {"val_loss": 0.0}
    return Timed, passes


def test_a_time_limited_run_keeps_its_last_validations_time_for_the_final_one(monkeypatch):
    """A step of 1 s and a validation pass of 10 s under --max-minutes 1: the run trained
    until the clock said 60 s, then validated once more, 70 s in all; it now stops training
    when the last pass's time is left, and ends at 60 s. A resumed run keeps that time."""
    Timed, _ = timed_task(monkeypatch, lambda n: 10.0)
    config = TrainConfig(lr=0.1, max_steps=0, max_minutes=1.0, eval_every=25, warmup_steps=0)
    trainer = Trainer(Timed(), config)
    summary = trainer.fit()
    assert summary["wall_seconds"] == 60.0 and summary["steps"] == 40
    assert trainer.eval_seconds == 10.0
    state = trainer.state_dict()
    again = Trainer(Timed(), config)
    again.load_state_dict(state)
    assert again.eval_seconds == 10.0 and again.progress() == 1.0


def test_a_time_limited_run_ends_at_its_first_pass_past_the_limit(monkeypatch):
    """The pass at the limit, faster than the one before, shrank the time kept back for it:
    the run took more steps and validated again (steps 41-47, a third pass)."""
    Timed, passes = timed_task(monkeypatch, lambda n: 10.0 if n == 0 else 2.0)
    config = TrainConfig(lr=0.1, max_steps=0, max_minutes=1.0, eval_every=25, warmup_steps=0)
    summary = Trainer(Timed(), config).fit()
    assert summary["steps"] == 40 and len(passes) == 2
