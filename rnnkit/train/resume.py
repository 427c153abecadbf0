"""The checkpoint side of :class:`rnnkit.train.trainer.Trainer`: what a checkpoint holds of a
run (model, optimizer, schedule, counters, the task's own state, the random stream) and how a run
goes on from one, including from best.pt where the run stopped on non-finite steps or drops its
learning rate back to the best weights (--lr-drops).
"""
import os
import warnings
from dataclasses import asdict
from pathlib import Path

import torch

from rnnkit.train.checkpoint import (CheckpointError, built_from, check_optimizer_state,
                                     load_checkpoint)

NEXT_BEST = ".best-next.pt"   # a new best.pt, until last.pt has been written after it


class TrainingError(RuntimeError):
    """A run that cannot learn (every step non-finite, no finite validation loss)."""


def settle_best(out, best_step):
    """Before a resume: a best.pt written aside whose step is the one last.pt records as best
    (the run was stopped after last.pt, before the move) takes best.pt's place; one of another
    step (stopped before last.pt was written: the evaluation is done again) is removed."""
    aside = Path(out) / NEXT_BEST
    if not aside.exists():
        return
    try:
        step = load_checkpoint(aside).get("trainer", {}).get("step")
    except CheckpointError:
        step = None
    if step is not None and step == best_step:
        os.replace(aside, Path(out) / "best.pt")
    else:
        aside.unlink()


FILE_KEYS = ("format", "version", "digest")   # what save_checkpoint adds to every file
# entries of task.checkpoint_extras() that give the model's ids their meaning: a vocabulary's
# tokens, the labels of its classes or tags, an alphabet, the conditions
ID_MEANINGS = ("vocab", "src_vocab", "tgt_vocab", "chars", "labels", "tags", "alphabet",
               "conditions")


def optimizer_class(optimizer):
    """The optimizer's class as a checkpoint names it (``torch.optim.adamw.AdamW``)."""
    return f"{type(optimizer).__module__}.{type(optimizer).__qualname__}"


DEFAULT_OPTIMIZER = "torch.optim.adamw.AdamW"   # what a checkpoint without a class was made with
# (the Trainer took no other optimizer before checkpoints recorded theirs)


def check_same_optimizer(optimizer, ckpt):
    """Refuse a checkpoint of another kind of optimizer than ``optimizer`` (its state would
    crash torch's update, or be dropped), by the class it records (AdamW where it records
    none)."""
    saved = ckpt.get("optimizer_class", DEFAULT_OPTIMIZER)
    mine = optimizer_class(optimizer)
    if saved != mine:
        raise CheckpointError(f"its optimizer is {saved}, this run's {mine}: resume with the "
                              f"optimizer the run was made with (a run made in Python with "
                              f"Trainer(optimizer=...) resumes there)")


def check_same_ids(extras, ckpt):
    """Refuse to go on from ``ckpt`` with a task whose data gave its ids other meanings (a
    vocabulary of other tokens, other labels): the weights would be trained on ids that now
    stand for something else, without a word. Compared where both hold a list of strings (a
    vocabulary's tokens, a ``{"labels": [...]}``'s); a task's entries of other kinds under
    these names are its own business."""
    def names(entry):
        if isinstance(entry, dict):
            entry = entry.get("tokens", entry.get("labels"))
        if isinstance(entry, str):   # an alphabet: its characters
            return list(entry)
        return list(entry) if isinstance(entry, (list, tuple)) and all(
            isinstance(x, str) for x in entry) else None
    for key in ID_MEANINGS:
        mine, theirs = names(extras.get(key)), names(ckpt.get(key))
        if mine is not None and theirs is not None and mine != theirs:
            raise CheckpointError(f"the task's {key} is not the checkpoint's ({len(mine):,} "
                                  f"entries, the checkpoint's {len(theirs):,}): its data was "
                                  f"read into other ids than the run's weights were trained "
                                  f"on; build the task from the run's own data and settings, "
                                  f"or start a new run")


def with_extras(state, extras, who):
    """``state`` and ``extras`` in one dict; ValueError where an extra would replace one of the
    run's own entries (a "model" of one's own made best.pt's weights that value)."""
    if not isinstance(extras, dict):
        raise TypeError(f"{who} must return a dict, got {type(extras).__name__}")
    clash = sorted(k for k in extras if k in state or k in FILE_KEYS)
    if clash:
        raise ValueError(f"{who} holds {', '.join(map(repr, clash))}, the name of the "
                         f"checkpoint's own entr{'ies' if len(clash) > 1 else 'y'} (the run's "
                         f"{', '.join(sorted(state))}, and {', '.join(FILE_KEYS)}); name "
                         f"{'them' if len(clash) > 1 else 'it'} otherwise")
    return {**state, **extras}


class Resumable:
    """Mixed into the Trainer: :meth:`state_dict` / :meth:`load_state_dict` and :meth:`resume`."""

    def state_dict(self):
        """Everything a resumed run needs, as plain data (see :mod:`rnnkit.train.checkpoint`)."""
        task = self.task
        state = {"model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "optimizer_class": optimizer_class(self.optimizer),
                "scheduler": self.scheduler.state_dict(),
                "trainer": {"step": self.step, "tokens": self.tokens, "elapsed": self.seconds(),
                            "best_val": self.best_val, "best_step": self.best_step,
                            "drops": self.drops, "drop_step": self.drop_step,
                            "skipped_steps": self.skipped_steps,
                            "eval_seconds": self.eval_seconds,
                            "diverged": self.diverged,
                            "last_eval": dict(self.last_eval)},
                "train_config": asdict(self.config),
                "task": (self._task_state if self._task_state is not None  # all ranks' rows
                         else task.state_dict() if hasattr(task, "state_dict") else {}),
                "rng": torch.get_rng_state()}
        return with_extras(state, task.checkpoint_extras() if hasattr(task, "checkpoint_extras")
                           else {}, "task.checkpoint_extras()")

    def load_state_dict(self, ckpt):
        if hasattr(self.task, "checkpoint_extras"):
            check_same_ids(self.task.checkpoint_extras(), ckpt)
        self.resumed = True
        self.model.load_state_dict(ckpt["model"])
        check_same_optimizer(self.optimizer, ckpt)
        check_optimizer_state(self.optimizer, ckpt["optimizer"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scheduler.base_lrs = list(self.base_lrs)   # this run's --lr, not the saved one
        t = ckpt["trainer"]
        self.step, self.tokens, self.elapsed = t["step"], t["tokens"], t["elapsed"]
        self.best_val, self.skipped_steps = t["best_val"], t["skipped_steps"]
        self.best_step = t.get("best_step")   # None in checkpoints from before it was kept
        self.drops, self.drop_step = t.get("drops", 0), t.get("drop_step")
        self.eval_seconds = t.get("eval_seconds", 0.0)   # (0 in checkpoints from before it)
        self.diverged = t.get("diverged", False)
        # a run saved at its final evaluation is not evaluated (and logged) a second time
        self.last_eval = dict(t.get("last_eval") or {"step": self.step})
        if hasattr(self.task, "load_state_dict"):
            self.task.load_state_dict(ckpt["task"])
        torch.set_rng_state(ckpt["rng"])
        # the next step's rate under this run's --lr and schedule: the loaded optimizer kept the
        # saved one, so a resume with a tenth of the rate (or more --max-steps after an annealed
        # end) took one step at the old rate; unchanged settings give the saved value exactly
        self.set_lr()
        self._resumed = True

    def set_lr(self):
        """After an optimizer state was loaded: each parameter group's --weight-decay is this
        run's (the default AdamW's; a loaded state brings the saved run's), and its rate is the
        group's own base rate (--lr, or the user optimizer's) times the schedule's factor now
        (:meth:`lr_factor`)."""
        factor = self.lr_factor(None)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            if self.own_decay:
                group["weight_decay"] = self.config.weight_decay
            if isinstance(group["lr"], torch.Tensor):   # a rate kept in a tensor: filled in
                group["lr"].fill_(base * factor)         # place, as torch's schedulers do
            else:
                group["lr"] = base * factor

    def resume(self, path):
        """Continue from a checkpoint written by :class:`rnnkit.train.callbacks.Checkpointer`
        (and, with a drop of --lr-drops to come, from best.pt beside it: :meth:`read_best`)."""
        self.load_state_dict(load_checkpoint(path))
        self.continue_from(path)
        return self

    def continue_from(self, path):
        """After :meth:`load_state_dict` of ``path`` (a run's last.pt): back to best.pt's
        weights where the run stopped on non-finite steps, and best.pt's state kept where an
        --lr-drops drop is to come. The one way on from a checkpoint: :meth:`resume` and the
        command's run (:func:`rnnkit.tasks.common.train`) both take it."""
        self.resumed_from = Path(path)
        if self.world.main:   # a best.pt written aside before a stop: completed or dropped
            settle_best(Path(path).parent, self.best_step)
        if self.diverged:
            self.back_to_best(path)
        self.read_best(Path(path).with_name("best.pt"))

    def back_to_best(self, path):
        """A run that stopped on non-finite steps goes on from best.pt's model and optimizer
        state, not from the blown-up weights ``path`` (its last.pt) holds; the step count, the
        data order and the random stream go on, at this run's --lr."""
        best = Path(path).with_name("best.pt")
        state = self.best_state_from(best)
        if state is None:
            raise TrainingError(f"{path} stopped on non-finite steps at step {self.step:,} and "
                                f"{best} is missing: there is nothing sound to go on from; "
                                f"start a new run with a lower --lr")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.set_lr()
        self.diverged, self.skipped_in_a_row = False, 0
        if self.world.main:
            at = f" (step {self.best_step:,})" if self.best_step is not None else ""
            print(f"{path} stopped on non-finite steps at step {self.step:,}: going on from "
                  f"best.pt's weights{at} at --lr {self.config.lr:g}")

    def read_best(self, path):
        """After :meth:`load_state_dict`, with a drop of --lr-drops still to come: the state it
        goes back to, from ``path`` (the run's best.pt), read on rank 0 and sent to every rank.
        Without the file the run warns and stops at patience until a better evaluation."""
        if not (self.drops < self.config.lr_drops and self.config.patience
                and self.best_step is not None):
            return
        self._best_state = self.best_state_from(path)
        if self._best_state is None:
            warnings.warn(f"{path} is missing: no --lr-drops drop until a better validation "
                          f"loss; at --patience the run stops")

    def best_state_from(self, path):
        """{"model", "optimizer"} of the checkpoint ``path`` (a run's best.pt), read on rank 0
        and sent to every rank; None where there is no such file."""
        def read():
            if not Path(path).is_file():
                return None
            ckpt = load_checkpoint(path)
            with built_from(path):
                check_optimizer_state(self.optimizer, ckpt["optimizer"])
            return {"model": ckpt["model"], "optimizer": ckpt["optimizer"]}
        state = self.dist.agree(lambda: read() if self.world.main else None, f"reading {path}")
        return self.dist.broadcast(state, f"{path}'s state")
