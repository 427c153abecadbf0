"""The training settings every ``rnnkit train`` command shares (:class:`TrainConfig`: the
optimizer's rate and decay, the learning-rate schedule, the limits, patience and its drops,
evaluation and logging), the schedules' shape (:func:`lr_multiplier`) and the optimizer
(:func:`adamw`); :mod:`rnnkit.train.trainer` runs them.
"""
import inspect
import math
from dataclasses import dataclass, field

import torch

from rnnkit.config import MAX_COUNT, MAX_SEED, ConfigError, check

SCHEDULES = ("wsd", "cosine", "constant")


@dataclass
class TrainConfig:
    lr: float = field(default=2e-3, metadata={"help": "peak learning rate of AdamW",
                                                "range": "(0, 10]"})
    weight_decay: float = field(default=0.0, metadata={
        "help": "AdamW weight decay (0: none)", "range": (0, 10)})
    schedule: str = field(default="wsd", metadata={
        "help": "after the warm-up: wsd (flat, then decay), cosine or constant",
        "choices": SCHEDULES})
    warmup_steps: int = field(default=20, metadata={
        "help": "steps of linear learning-rate warm-up from 0 (0: none)", "range": (0, MAX_COUNT)})
    decay_fraction: float = field(default=0.2, metadata={
        "help": "wsd: the last part of the step or time budget, where lr decays",
        "range": "(0, 1]"})
    min_lr_ratio: float = field(default=0.0, metadata={
        "help": "the decay ends at lr times this, at the step or time limit", "range": (0, 1)})
    clip: float = field(default=5.0, metadata={"help": "max global gradient norm (0: no clipping)",
                                               "range": (0, 1e6)})
    max_steps: int = field(default=0, metadata={
        "help": "stop after N steps (0: no step limit, the default when --max-minutes is given)",
        "range": (0, MAX_COUNT)})
    max_minutes: float = field(default=0.0, metadata={
        "help": "stop after N minutes, reading the data and resumed parts included (0: none)",
        "range": (0, 1e7)})
    patience: int = field(default=0, metadata={
        "help": "stop when validation has not improved for N steps (0: train to the limit)",
        "range": (0, MAX_COUNT)})
    lr_drops: int = field(default=0, metadata={
        "help": "on --patience, N times: back to best.pt's weights, lr x --drop-factor",
        "range": (0, 10)})
    drop_factor: float = field(default=0.1, metadata={
        "help": "what each --lr-drops drop multiplies the learning rate by", "range": "(0, 1)"})
    eval_every: int = field(default=200, metadata={
        "help": "validate and checkpoint (last.pt, best.pt) every N steps", "range": (1, MAX_COUNT)})
    log_every: int = field(default=10, metadata={
        "help": "log train loss and gradient norm (progress bar, train.jsonl) every N steps",
        "range": (1, MAX_COUNT)})
    seed: int = field(default=1337, metadata={
        "help": "torch random seed: model initialisation and dropout (seq2seq, cond: batch order)",
        "range": (0, MAX_SEED)})

    def __post_init__(self):
        check(self)
        if self.lr * self.weight_decay >= 1:
            raise ConfigError(f"lr {self.lr:g} x weight_decay {self.weight_decay:g} = "
                              f"{self.lr * self.weight_decay:g}: AdamW scales every weight by "
                              f"1 - lr x weight_decay a step, so the product must be below 1 "
                              f"(the weights would flip sign and grow)")
        if self.max_steps == 0 and self.max_minutes == 0:
            raise ConfigError("set max_steps or max_minutes (both are 0: the run would never end)")


def lr_multiplier(schedule, progress, decay_fraction=0.2, min_ratio=0.0):
    """The learning rate after the warm-up, as a fraction of the peak, at ``progress`` in [0, 1]
    of the run's budget (steps or time, whichever is further along).

    wsd: warm-up–stable–decay (Hu et al. 2024, MiniCPM; Hägele et al. 2024): the peak until the
    last ``decay_fraction`` of the budget, then linear to ``min_ratio``. It trains at the full rate
    for most of any budget, which is what a short, time-limited run needs, and the end depends
    only on where the budget ends, so a resumed run reaches the same end.
    cosine: half a cosine from 1 to ``min_ratio`` over the whole budget (Loshchilov & Hutter 2017).
    """
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    into_decay = (progress - (1 - decay_fraction)) / decay_fraction
    return 1.0 - (1 - min_ratio) * min(1.0, max(0.0, into_decay))


def adamw(params, lr, weight_decay):
    """torch's AdamW, with its fused kernel (one pass over each parameter instead of a dozen
    elementwise ops over all of them: 7-9x faster on CPU for a 1,000,000-row bag, the step's
    largest cost there) wherever every parameter is a floating tensor on a device that has it.
    The same update up to rounding (float32: 2e-7 after 50 steps). A resumed run keeps the
    setting its checkpoint was saved with (the optimizer's state holds it), so it resumes
    exactly."""
    fused = all(p.dtype.is_floating_point and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def make_optimizer(params, config, optimizer=None):
    """The run's optimizer over ``params`` (the model's trainable parameters): :func:`adamw` at
    the config's lr and weight decay, or the user's: a ``torch.optim.Optimizer`` over some of
    them, or a function of them that returns one (``functools.partial(torch.optim.SGD,
    lr=0.5, momentum=0.9)``). The schedule scales each group's own rate."""
    if optimizer is None:
        return adamw(params, config.lr, config.weight_decay)
    made = optimizer if isinstance(optimizer, torch.optim.Optimizer) else \
        optimizer(params) if callable(optimizer) else None
    if not isinstance(made, torch.optim.Optimizer):
        raise TypeError(f"optimizer= takes a torch.optim.Optimizer or a function of the "
                        f"parameters that returns one, got {type(made or optimizer).__name__}")
    step = inspect.signature(made.step).parameters.get("closure")
    if step is not None and step.default is inspect.Parameter.empty:
        raise TypeError(f"optimizer=: {type(made).__name__}'s step needs a closure that "
                        f"evaluates the loss again, which the Trainer's loop does not give")
    mine = {id(p) for p in params}
    if any(id(p) not in mine for group in made.param_groups for p in group["params"]):
        raise ValueError("optimizer= updates parameters that are not the task model's "
                         "trainable ones (another model's, or frozen ones)")
    return made


def base_rate(group):
    """An optimizer group's own rate, which the schedule scales: its first (``initial_lr``,
    where a schedule has already scaled a reused optimizer's rate), a rate kept in a tensor as
    a copy of it (torch's schedulers multiply that tensor, so a resumed run rounds alike)."""
    lr = group.get("initial_lr", group["lr"])
    return lr.detach().clone() if isinstance(lr, torch.Tensor) else float(lr)


def saved_train_config(d):
    """A checkpoint's training settings as TrainConfig fields: runs saved before the schedule
    could be chosen decayed by a cosine to a tenth of the peak, and keep doing so."""
    return {"schedule": "cosine", "min_lr_ratio": 0.1, **d} if "schedule" not in d else dict(d)
