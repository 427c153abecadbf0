"""Runs that blow up: a best.pt no better than the untrained model, a resume of a run that stopped
on non-finite steps, and settings that make AdamW's weights grow each step."""
import math

import pytest
import torch

from rnnkit.config import ConfigError
from rnnkit.train import Checkpointer, Trainer
from rnnkit.train.lm import build_lm_task
from rnnkit.train.settings import TrainConfig
from rnnkit.train.trainer import TrainingError

from lm_fixtures import tiny_configs, write_corpus


class Blowup:
    """Wraps a task: its loss is NaN from the ``nan_from``-th call on, and its validation loss
    is ``val_scale`` times the true one (a model whose every evaluation is far off)."""

    def __init__(self, task, nan_from=math.inf, val_scale=1.0):
        self.task, self.model, self.n = task, task.model, 0
        self.nan_from, self.val_scale = nan_from, val_scale

    @property
    def chance_loss(self):
        return self.task.chance_loss

    def train_batch(self, step):
        return self.task.train_batch(step)

    def loss(self, batch):
        loss, count = self.task.loss(batch)
        self.n += 1
        return (loss * math.nan if self.n >= self.nan_from else loss), count

    def evaluate(self):
        metrics = dict(self.task.evaluate())
        metrics["val_loss"] *= self.val_scale
        return metrics


def lm(tmp_path, **blowup):
    data, model, tcfg = tiny_configs(write_corpus(tmp_path), max_steps=80, eval_every=5)
    return Blowup(build_lm_task(data, model, log=lambda *a: None), **blowup), tcfg


def test_a_diverged_run_whose_best_is_worse_than_untrained_fails(tmp_path):
    """Losses of 1e17, then NaN: the run stopped "with best.pt" and exit 0, its best 221 nats a
    character on a vocabulary whose uniform guess is ln 20 = 3."""
    task, tcfg = lm(tmp_path, nan_from=12, val_scale=10.0)
    with pytest.raises(TrainingError, match=r"more than twice a uniform guess's .*nothing was "
                                            r"learned; start again with a lower --lr"):
        Trainer(task, tcfg, [Checkpointer(tmp_path / "run")]).fit()


def test_a_finite_run_whose_best_is_worse_than_untrained_warns(tmp_path):
    task, tcfg = lm(tmp_path, val_scale=10.0)
    tcfg.max_steps = 10
    with pytest.warns(UserWarning, match="the run ended at step 10, and the best validation "
                                         "loss, .*nothing was learned"):
        Trainer(task, tcfg).fit()


def test_a_run_that_learns_says_nothing_of_it(tmp_path, recwarn):
    task, tcfg = lm(tmp_path)
    tcfg.max_steps = 10
    Trainer(task, tcfg).fit()
    assert not [w for w in recwarn if "nothing was learned" in str(w.message)]


def test_resuming_a_diverged_run_goes_on_from_best_pt(tmp_path, capsys):
    """--resume after "the run ends with best.pt; a lower --lr trains on" went on from last.pt's
    blown-up weights and stopped again the same way."""
    task, tcfg = lm(tmp_path, nan_from=8)
    with pytest.warns(UserWarning, match="the run ends with best.pt"):
        first = Trainer(task, tcfg, [Checkpointer(tmp_path / "run")]).fit()
    assert first["steps"] < 80
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    tcfg.lr = 1e-3
    fresh = build_lm_task(*tiny_configs(write_corpus(tmp_path))[:2], log=lambda *a: None)
    trainer = Trainer(fresh, tcfg, [Checkpointer(tmp_path / "run")])
    with torch.no_grad():   # the weights last.pt would have had, had they blown up
        for p in fresh.model.parameters():
            p.fill_(1e30)
    trainer.resume(tmp_path / "run" / "last.pt")
    assert f"going on from best.pt's weights (step {first['best_step']})" in capsys.readouterr().out
    for name, value in fresh.model.state_dict().items():
        assert torch.equal(value, best["model"][name]), name
    assert trainer.step == first["steps"] and not trainer.diverged
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    summary = trainer.fit()
    assert summary["steps"] == 80 and math.isfinite(summary["best_val_loss"])


def test_the_command_resumes_a_diverged_run_from_best_pt(tmp_path):
    """rnnkit train --resume (tasks.common.train) loaded last.pt, found the run diverged and
    ended at once: nothing trained, exit 0, every later resume the same."""
    from rnnkit.tasks.common import train
    from rnnkit.train import load_checkpoint
    task, tcfg = lm(tmp_path, nan_from=8)
    task.unit = "char"
    with pytest.warns(UserWarning, match="the run ends with best.pt"):
        first = train(task, tcfg, tmp_path / "run", quiet=True, log=lambda *a: None)
    fresh = build_lm_task(*tiny_configs(write_corpus(tmp_path))[:2], log=lambda *a: None)
    again = train(fresh, tcfg, tmp_path / "run", quiet=True, log=lambda *a: None,
                  resume_from=load_checkpoint(tmp_path / "run" / "last.pt"))
    assert first["steps"] < 80 == again["steps"] and math.isfinite(again["best_val_loss"])


def test_resuming_a_diverged_run_without_best_pt_is_refused(tmp_path):
    task, tcfg = lm(tmp_path, nan_from=8)
    with pytest.warns(UserWarning, match="the run ends with best.pt"):
        Trainer(task, tcfg, [Checkpointer(tmp_path / "run")]).fit()
    (tmp_path / "run" / "best.pt").unlink()
    fresh = build_lm_task(*tiny_configs(write_corpus(tmp_path))[:2], log=lambda *a: None)
    with pytest.raises(TrainingError, match="best.pt is missing: there is nothing sound"):
        Trainer(fresh, tcfg).resume(tmp_path / "run" / "last.pt")


@pytest.mark.parametrize("lr, decay", [(10.0, 0.1), (1.0, 1.0), (10.0, 9.9)])
def test_a_weight_decay_that_flips_the_weights_is_refused(lr, decay):
    """AdamW scales each weight by 1 - lr·weight_decay a step: at 10 and 9.9 by -98."""
    with pytest.raises(ConfigError, match=r"AdamW scales every weight by 1 - lr x weight_decay"):
        TrainConfig(lr=lr, weight_decay=decay, max_steps=1)
    TrainConfig(lr=lr, weight_decay=0.99 / lr, max_steps=1)


def test_a_run_that_ends_before_its_first_step_says_so(tmp_path):
    """--max-minutes 1e-9 trained no step, saved the untrained model as best.pt and exited 0
    without a word."""
    task, _ = lm(tmp_path)
    config = TrainConfig(max_minutes=1e-9, warmup_steps=0)
    with pytest.warns(UserWarning, match="the run ended before its first step"):
        summary = Trainer(task, config).fit()
    assert summary["steps"] == 0


def test_a_classifier_that_blew_up_is_judged_too(tmp_path):
    """Classify (and tag) had no chance_loss: a diverged run with a best of 7e5 nats ended
    with it, exit 0."""
    from task_fixtures import classify_task
    inner = classify_task(tmp_path, bag="off")
    assert inner.chance_loss == pytest.approx(math.log(inner.model.config.num_classes))
    task = Blowup(inner, nan_from=12, val_scale=1e6)
    config = TrainConfig(max_steps=80, eval_every=5, warmup_steps=0)
    with pytest.raises(TrainingError, match="more than twice a uniform guess's"):
        Trainer(task, config).fit()


def test_a_diverged_run_whose_best_was_reset_goes_on_from_best_pt(tmp_path, capsys):
    """--allow-data-change resets the best (best_step None): going back to best.pt then
    raised a TypeError formatting the step."""
    from rnnkit.train import load_checkpoint
    task, tcfg = lm(tmp_path, nan_from=8)
    with pytest.warns(UserWarning, match="the run ends with best.pt"):
        Trainer(task, tcfg, [Checkpointer(tmp_path / "run")]).fit()
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    ckpt["trainer"] = {**ckpt["trainer"], "best_val": math.inf, "best_step": None}
    fresh = build_lm_task(*tiny_configs(write_corpus(tmp_path))[:2], log=lambda *a: None)
    trainer = Trainer(fresh, tcfg)
    trainer.load_state_dict(ckpt)
    trainer.back_to_best(tmp_path / "run" / "last.pt")
    assert "going on from best.pt's weights at --lr" in capsys.readouterr().out


def test_a_recogniser_that_blew_up_is_judged_too(tmp_path):
    """The CTC recogniser had no chance_loss: a run whose best was a million times its true
    loss ended with best.pt, exit 0. Its floor is the CTC loss of an even guess at every
    frame, which an untrained model's validation loss is near."""
    from recognize_fixtures import recognize_task
    inner = recognize_task(tmp_path)
    guess = inner.chance_loss
    assert 0 < guess < math.inf
    assert inner.evaluate()["val_loss"] == pytest.approx(guess, rel=0.3)
    task = Blowup(inner, nan_from=6, val_scale=1e6)
    config = TrainConfig(max_steps=80, eval_every=5, warmup_steps=0)
    with pytest.raises(TrainingError, match="more than twice a uniform guess's"):
        Trainer(task, config).fit()


def test_the_ctc_floor_counts_alignments_whatever_the_alphabet(tmp_path):
    """The even guess's CTC loss of a transcript is T log C less the log of its alignments:
    computed over the transcript's own labels, not a (frames x batch x classes) tensor."""
    import types
    from rnnkit.tasks.recognize import uniform_loss
    model = types.SimpleNamespace(config=types.SimpleNamespace(num_classes=20_000),
                                  frames=lambda widths: widths)
    part = [(torch.zeros(1, 4), [7, 7], None), (torch.zeros(1, 3), [19_999], None),
            (torch.zeros(1, 2), [5, 5], None)]                 # the last cannot fit: left out
    full = []   # torch's CTC loss of the even guess over the whole alphabet, per label
    for x, y, _ in part[:2]:
        T = x.shape[-1]
        logp = torch.full((T, 1, 20_000), -math.log(20_000), dtype=torch.float64)
        full.append(float(torch.nn.functional.ctc_loss(
            logp, torch.tensor([y]), torch.tensor([T]), torch.tensor([len(y)]))))
    assert uniform_loss(model, part) == pytest.approx(sum(full) / 2, rel=1e-12)
