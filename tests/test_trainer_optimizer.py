"""The Trainer with an optimizer of one's own: the schedule scales each group's own rate, a
resumed run goes on exactly, and what is no optimizer of the model's parameters is refused."""
import functools

import pytest
import torch

from rnnkit.train import Checkpointer, Trainer, TrainConfig

from test_trainer_protocol import Regression

CONFIG = dict(max_steps=8, eval_every=4, warmup_steps=2, schedule="cosine", min_lr_ratio=0.1)


def sgd_groups(params):
    """Two groups at their own rates: the LSTM's at 0.1, the read-out's at 0.01."""
    params = list(params)
    return torch.optim.SGD([{"params": params[:-2], "lr": 0.1},
                            {"params": params[-2:], "lr": 0.01}], momentum=0.9)


def test_an_optimizer_of_ones_own_is_scheduled_group_by_group(tmp_path):
    task = Regression()
    seen = []
    trainer = Trainer(task, TrainConfig(**CONFIG), optimizer=sgd_groups)
    step = trainer.optimizer.step
    trainer.optimizer.step = lambda *a: (seen.append([g["lr"] for g in
                                                      trainer.optimizer.param_groups]),
                                         step(*a))[1]
    trainer.fit()
    assert type(trainer.optimizer) is torch.optim.SGD
    assert seen[0] == pytest.approx([0.05, 0.005])                 # warm-up: half of each
    assert 0.09 < seen[1][0] <= 0.1                                # the peak: the groups' own
    assert all(a / b == pytest.approx(10) for a, b in seen)
    assert seen[-1][0] < 0.03


class Interrupt:
    def on_eval(self, trainer, metrics):
        if metrics["step"] == 4:
            raise KeyboardInterrupt


def test_a_run_with_ones_own_optimizer_resumes_exactly(tmp_path):
    whole = Trainer(Regression(), TrainConfig(**CONFIG), [Checkpointer(tmp_path / "a")],
                    optimizer=sgd_groups)
    whole.fit()
    with pytest.raises(KeyboardInterrupt):
        Trainer(Regression(), TrainConfig(**CONFIG), [Checkpointer(tmp_path / "b"), Interrupt()],
                optimizer=sgd_groups).fit()
    resumed = Trainer(Regression(), TrainConfig(**CONFIG), [Checkpointer(tmp_path / "b")],
                      optimizer=sgd_groups).resume(tmp_path / "b" / "last.pt")
    assert resumed.step == 4
    resumed.fit()
    for p, q in zip(whole.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    with pytest.raises(ValueError, match="2 parameter group.*this run's optimizer 1: the state "
                                         "of another optimizer"):
        Trainer(Regression(), TrainConfig(**CONFIG)).resume(tmp_path / "b" / "last.pt")


def test_what_is_no_optimizer_of_the_models_parameters_is_refused():
    task = Regression()
    with pytest.raises(TypeError, match="optimizer= takes a torch.optim.Optimizer or a function"):
        Trainer(task, TrainConfig(**CONFIG), optimizer=lambda params: "sgd")
    with pytest.raises(TypeError, match="got str"):
        Trainer(task, TrainConfig(**CONFIG), optimizer="adam")
    other = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="not the task model's trainable ones"):
        Trainer(task, TrainConfig(**CONFIG), optimizer=torch.optim.SGD(other.parameters(), 0.1))
    made = torch.optim.Adam(task.model.parameters(), lr=1e-3)      # an instance: taken as it is
    assert Trainer(task, TrainConfig(**CONFIG), optimizer=made).optimizer is made
    partial = functools.partial(torch.optim.RMSprop, lr=1e-3)
    assert type(Trainer(task, TrainConfig(**CONFIG), optimizer=partial).optimizer) \
        is torch.optim.RMSprop


def test_a_resume_takes_this_runs_weight_decay_and_optimizer_settings(tmp_path):
    """--weight-decay given on --resume was recorded and never used: the loaded state brought
    the saved run's decay back into every group."""
    with pytest.raises(KeyboardInterrupt):
        Trainer(Regression(), TrainConfig(**CONFIG), [Checkpointer(tmp_path), Interrupt()]).fit()
    more = TrainConfig(**{**CONFIG, "weight_decay": 0.5})
    resumed = Trainer(Regression(), more).resume(tmp_path / "last.pt")
    assert [g["weight_decay"] for g in resumed.optimizer.param_groups] == [0.5]
    own = Trainer(Regression(), TrainConfig(**CONFIG),
                  optimizer=lambda ps: torch.optim.AdamW(ps, lr=1e-3, betas=(0.8, 0.9),
                                                         weight_decay=0.1))
    own.resume(tmp_path / "last.pt")
    group, = own.optimizer.param_groups
    assert (group["betas"], group["weight_decay"]) == ((0.8, 0.9), 0.1)
    assert group["lr"] == pytest.approx(1e-3 * own.lr_factor(None))
