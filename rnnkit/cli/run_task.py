"""Shared plumbing of ``rnnkit train seq2seq`` and ``rnnkit train cond``: flags from the config
dataclasses, a new run or ``--resume``, the one Trainer with its callbacks, extra metrics merged
into the run's metrics.json."""
import json
from pathlib import Path

import torch

from rnnkit.cli.options import config_from_args
from rnnkit.cli.task_runs import add_task_flags  # noqa: F401  (re-exported for seq2seq / cond)
from rnnkit.train import Checkpointer, ProgressBar, TrainConfig, Trainer, load_checkpoint
from rnnkit.train.checkpoint import atomic_write


def configs(args, data_cls, model_cls, model_skip, default_steps):
    """(data, model, train configs, resuming?) from the flags, or from OUT/last.pt with --resume
    (then only training flags may change)."""
    last = Path(args.out) / "last.pt"
    if getattr(args, "resume", False):
        ckpt = load_checkpoint(last)
        model = {**ckpt["model_config"], **{k: type(v)() for k, v in ckpt["model_config"].items()
                                             if k in model_skip}}
        return (data_cls(**ckpt["data_config"]), model_cls(**model),
                config_from_args(TrainConfig, args, ckpt["train_config"]), True)
    if last.exists():
        raise SystemExit(f"rnnkit: {args.out} already holds a run; pass --resume to continue it "
                         f"or choose another --out")
    base = {"max_steps": 0 if "max_minutes" in vars(args) else default_steps}
    return (config_from_args(data_cls, args), config_from_args(model_cls, args),
            config_from_args(TrainConfig, args, base), False)


def train(args, task_builder, data_cfg, model_cfg, train_cfg, resuming):
    """Build the task (seeded), describe it, fit it into args.out; returns (task, summary) with
    best.pt's weights in task.model."""
    torch.manual_seed(train_cfg.seed)
    task = task_builder(data_cfg, model_cfg, seed=train_cfg.seed)
    n_params = sum(p.numel() for p in task.model.parameters())
    print(f"model: {type(task.model).__name__} {model_cfg}, {n_params:,} parameters")
    trainer = Trainer(task, train_cfg, [ProgressBar(disable=getattr(args, "quiet", False)),
                                        Checkpointer(args.out)])
    if resuming:
        trainer.resume(Path(args.out) / "last.pt")
        print(f"resuming {args.out} at step {trainer.step:,}")
    summary = trainer.fit()
    task.model.load_state_dict(load_checkpoint(Path(args.out) / "best.pt")["model"])
    task.model.eval()                     # what follows scores best.pt, not the last step
    print(f"best validation loss {summary['best_val_loss']:.4f} nats/{task.unit} after "
          f"{summary['steps']:,} steps, {summary['wall_seconds'] / 60:.1f} min -> {args.out}")
    return task, summary


def add_metrics(out, extra):
    """Merge ``extra`` into OUT/metrics.json (written by the Checkpointer at the end of training)."""
    path = Path(out) / "metrics.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data.update(extra)
    text = json.dumps(data, indent=2) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))
    return data
