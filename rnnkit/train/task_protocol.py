"""What the Trainer reads of a task (:mod:`rnnkit.train.trainer`'s protocol), checked where it
is read: a task of one's own that returns the wrong thing is told so in one line naming the
hook, and numbers from numpy or 0-d tensors are taken as Python's own (they broke the metric
files, and a numpy bool the JSON writer, mid-run).
"""
import math
import numbers

import numpy as np
import torch

REQUIRED = ("model", "train_batch", "loss", "evaluate")
# what the Trainer writes into each evaluation's row beside the task's metrics
TRAINER_KEYS = ("step", "tokens", "seconds", "lr", "train_loss", "grad_norm", "grad_norm_max",
                "skipped_steps", "best")


def check_task(task, config):
    """TypeError naming what the task lacks; ValueError where its model has nothing to train.
    The config is checked again too: a field set after it was made is read as it is now."""
    missing = [name for name in REQUIRED if not hasattr(task, name)]
    if missing:
        raise TypeError(f"the task ({type(task).__name__}) lacks {', '.join(missing)}: a task "
                        f"gives model, train_batch(step), loss(batch) -> (loss, count) and "
                        f"evaluate() -> {{'val_loss': ...}} (rnnkit.train.trainer)")
    if not isinstance(task.model, torch.nn.Module):
        raise TypeError(f"task.model must be a torch.nn.Module, got {type(task.model).__name__}")
    if not any(p.requires_grad for p in task.model.parameters()):
        raise ValueError(f"task.model ({type(task.model).__name__}) has no parameter that "
                         f"requires a gradient: there is nothing to train")
    type(config).__post_init__(config)


def number(value, what):
    """``value`` as a Python number (a numpy number's or a one-element tensor's ``.item()``);
    TypeError naming ``what`` where it is no number."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    value = python_scalar(value)
    if type(value) not in (int, float):
        raise TypeError(f"{what} must be a number, got {type(value).__name__} {value!r:.60}")
    return value


def python_scalar(value):
    """A numpy scalar (np.float64, np.int64, np.bool_: np.float64 is a float too, but pickled
    as numpy's) as Python's own; anything else as it is."""
    if type(value).__module__ == "numpy" and isinstance(value, (numbers.Number, np.bool_)):
        return value.item()
    return value


def python_values(value):
    """``value`` with every numpy scalar inside its lists, tuples and dicts Python's own (a
    metric's per-class figures), so that the metric files and checkpoints take it."""
    if type(value) in (list, tuple):
        return type(value)(python_values(v) for v in value)
    if isinstance(value, dict):
        return {k: python_values(v) for k, v in value.items()}
    return python_scalar(value)


def loss_of(task, batch):
    """``task.loss(batch)``: (the loss, a 0-d tensor with its graph, and the count, a number
    above 0)."""
    out = task.loss(batch)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(f"task.loss(batch) must return (loss, count): the mean loss (a 0-d "
                        f"tensor) and how many predictions it averages, got "
                        f"{type(out).__name__}")
    loss, count = out
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        what = f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) \
            else type(loss).__name__
        raise TypeError(f"task.loss(batch)'s loss must be a one-element tensor, got {what}")
    if not loss.requires_grad:
        raise TypeError("task.loss(batch)'s loss has no graph (requires_grad is False): it was "
                        "computed under no_grad, detached, or from no trained parameter")
    count = number(count, "task.loss(batch)'s count")
    if not count > 0:
        raise ValueError(f"task.loss(batch)'s count must be above 0 (the predictions the loss "
                         f"averages), got {count}")
    return loss.reshape(()), count


def metrics_of(task):
    """``task.evaluate()`` as a dict of Python numbers (others kept as they are), its
    ``val_loss`` a number; names the Trainer's own keys refused."""
    metrics = task.evaluate()
    if not isinstance(metrics, dict):
        raise TypeError(f"task.evaluate() must return a dict of metrics holding 'val_loss', got "
                        f"{type(metrics).__name__}")
    if "val_loss" not in metrics:
        raise KeyError(f"task.evaluate() must return 'val_loss', got keys {sorted(metrics)}")
    clash = sorted(k for k in metrics if k in TRAINER_KEYS)
    if clash:
        raise ValueError(f"task.evaluate() returns {', '.join(map(repr, clash))}, which the "
                         f"Trainer writes itself in each evaluation's row; name "
                         f"{'them' if len(clash) > 1 else 'it'} otherwise")
    out = {k: python_values(v) for k, v in metrics.items()}
    for k, v in metrics.items():
        if k == "val_loss" or (isinstance(v, torch.Tensor) and v.numel() == 1):
            out[k] = number(v, f"task.evaluate()[{k!r}]")
    if math.isinf(out["val_loss"]) and out["val_loss"] < 0:
        raise ValueError("task.evaluate()'s val_loss is -inf: lower is better, so no later "
                         "evaluation could be better")
    return out
