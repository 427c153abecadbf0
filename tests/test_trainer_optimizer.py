"""The Trainer with an optimizer of one's own: the schedule scales each group's own rate, a
resumed run goes on exactly, and what is no optimizer of the model's parameters is refused."""
import functools

import pytest
import torch

from rnnkit.train import Checkpointer, CheckpointError, Trainer, TrainConfig

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
    with pytest.raises(CheckpointError, match="its optimizer is torch.optim.sgd.SGD, this run's "
                                              "torch.optim.adamw.AdamW"):
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
    group, = own.optimizer.param_groups        # a user's optimizer: its saved settings, as
    assert (group["betas"], group["weight_decay"]) == ((0.9, 0.999), 0.0)   # torch loads them
    assert group["lr"] == pytest.approx(1e-3 * own.lr_factor(None))   # at its own base rate


def interrupted(tmp_path, optimizer):
    with pytest.raises(KeyboardInterrupt):
        Trainer(Regression(), TrainConfig(**CONFIG), [Checkpointer(tmp_path), Interrupt()],
                optimizer=optimizer).fit()
    return tmp_path / "last.pt"


def test_a_reused_optimizer_object_keeps_its_own_base_rate(tmp_path):
    """The notebook way: one optimizer object, a run stopped, the same object resumed. Its
    groups' rates were the stopped run's scaled ones, taken for the base: every rate after
    the resume 0.775 of the uninterrupted run's."""
    whole = Trainer(Regression(), TrainConfig(**CONFIG), optimizer=sgd_groups)
    whole.fit()
    task = Regression()
    opt = sgd_groups(task.model.parameters())
    with pytest.raises(KeyboardInterrupt):
        Trainer(task, TrainConfig(**CONFIG), [Checkpointer(tmp_path), Interrupt()],
                optimizer=opt).fit()
    again = Trainer(task, TrainConfig(**CONFIG), optimizer=opt).resume(tmp_path / "last.pt")
    assert again.base_lrs == [0.1, 0.01]
    again.fit()
    for p, q in zip(whole.model.parameters(), again.model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


class CountingSGD(torch.optim.SGD):
    """An optimizer that keeps a running count in its groups (as schedule-free ones do)."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, lr=lr)
        for group in self.param_groups:
            group["k"] = 0

    def step(self, closure=None):
        for group in self.param_groups:
            group["k"] += 1
        return super().step(closure)


@pytest.mark.parametrize("make", [lambda ps: CountingSGD(ps),
                                  lambda ps: torch.optim.Adafactor(ps, lr=1e-2),
                                  lambda ps: torch.optim.AdamW(ps, lr=torch.tensor(1e-2))],
                         ids=["counter-in-groups", "adafactor", "tensor-lr"])
def test_other_optimizers_resume_exactly(tmp_path, make):
    """A running count in the groups was reset to the constructor's on resume; Adafactor's
    row and column factors refused as misshapen moments; a tensor rate filled in place."""
    whole = Trainer(Regression(), TrainConfig(**CONFIG), [Checkpointer(tmp_path / "a")],
                    optimizer=make)
    whole.fit()
    last = interrupted(tmp_path / "b", make)
    again = Trainer(Regression(), TrainConfig(**CONFIG), [Checkpointer(tmp_path / "b")],
                    optimizer=make).resume(last)
    again.fit()
    for p, q in zip(whole.model.parameters(), again.model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_another_kind_of_optimizer_and_one_that_needs_a_closure_are_refused(tmp_path):
    last = interrupted(tmp_path, None)                               # the default AdamW
    for other in (lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
                  lambda ps: torch.optim.RMSprop(ps, lr=0.1)):
        with pytest.raises(CheckpointError, match=r"its optimizer is torch.optim.adamw.AdamW, "
                                                  r"this run's torch.optim.\w+.\w+: resume"):
            Trainer(Regression(), TrainConfig(**CONFIG), optimizer=other).resume(last)
    with pytest.raises(TypeError, match="LBFGS's step needs a closure"):
        Trainer(Regression(), TrainConfig(**CONFIG), optimizer=torch.optim.LBFGS)


def test_an_alphabet_in_another_order_is_refused():
    """A recogniser stores its alphabet as a string: "BA21" for "AB12" resumed silently."""
    from rnnkit.train.resume import check_same_ids
    check_same_ids({"alphabet": "AB12"}, {"alphabet": "AB12"})
    with pytest.raises(CheckpointError, match="the task's alphabet is not the checkpoint's"):
        check_same_ids({"alphabet": "BA21"}, {"alphabet": "AB12"})


def test_a_group_added_after_the_trainer_was_made_is_named():
    """torch's scheduler failed on it with "zip() argument 2 is shorter than argument 1"."""
    task = Regression()
    params = list(task.model.parameters())
    opt = torch.optim.SGD(params[:2], lr=0.1)
    trainer = Trainer(task, TrainConfig(**CONFIG), optimizer=opt)
    opt.add_param_group({"params": params[2:]})
    with pytest.raises(ValueError, match="the optimizer has 2 parameter groups, 1 when the "
                                         "Trainer was made"):
        trainer.fit()


def test_a_checkpoint_from_before_the_class_was_recorded_is_adamws(tmp_path):
    """Checkpoints that name no optimizer were made with the default AdamW (the only one the
    Trainer took then): resumed with another kind, refused in one line, not a KeyError in
    torch's update; a refusal inside a checkpoint's loading is said as itself."""
    from rnnkit.train import load_checkpoint, save_checkpoint
    from rnnkit.train.checkpoint import built_from
    last = interrupted(tmp_path, None)
    ckpt = load_checkpoint(last)
    del ckpt["optimizer_class"]
    save_checkpoint(last, {k: v for k, v in ckpt.items() if k not in ("format", "version",
                                                                      "digest")})
    for other in (sgd_groups, lambda ps: torch.optim.Adamax(ps)):
        with pytest.raises(CheckpointError, match=r"its optimizer is torch.optim.adamw.AdamW, "
                                                  r"this run's torch.optim.\w+.\w+: resume"):
            Trainer(Regression(), TrainConfig(**CONFIG), optimizer=other).resume(last)
    Trainer(Regression(), TrainConfig(**CONFIG)).resume(last)       # the same kind: resumes
    with pytest.raises(CheckpointError, match=r"^/x/last.pt: its optimizer is A$"):
        with built_from("/x/last.pt"):   # said as it is, not as content that does not fit
            raise CheckpointError("its optimizer is A")
