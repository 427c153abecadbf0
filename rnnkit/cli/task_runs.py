"""What ``rnnkit train classify | tag | forecast`` share: flags from the task's config dataclasses,
a fresh or resumed run, the shared trainer, and a summary line with the held-out test figures."""
import sys

import torch

from rnnkit.cli.options import add_config_flags, config_from_args
from rnnkit.tasks.common import train
from rnnkit.train import TrainConfig, load_checkpoint


def add_task_flags(p, data_cls, model_cls, skip=(), train_defaults=None):
    """Data, model and training flags; ``train_defaults``: the task's own TrainConfig defaults,
    shown in the help."""
    add_config_flags(p, data_cls, title="data")
    add_config_flags(p, model_cls, skip=skip, title="model")
    add_config_flags(p, TrainConfig, title="training", defaults=train_defaults)


def run_task(args, data_cls, model_cls, build, train_defaults):
    """Train (or resume) a task model into args.out; returns the metrics written to metrics.json."""
    ckpt = None
    if args.resume:
        ckpt = load_checkpoint(args.out / "last.pt")
        data_cfg, model_cfg = data_cls(**ckpt["data_config"]), model_cls(**ckpt["model_config"])
        train_cfg = config_from_args(TrainConfig, args, ckpt["train_config"])
    else:
        if (args.out / "last.pt").exists():
            raise SystemExit(f"rnnkit: {args.out} already holds a run; pass --resume to continue "
                             f"it or choose another --out")
        base = dict(train_defaults)
        if "max_minutes" in vars(args):
            base["max_steps"] = 0
        data_cfg, model_cfg = config_from_args(data_cls, args), config_from_args(model_cls, args)
        train_cfg = config_from_args(TrainConfig, args, base)
    torch.manual_seed(train_cfg.seed)
    task = build(data_cfg, model_cfg)
    n_params = sum(p.numel() for p in task.model.parameters())
    print(f"model: {type(task.model).__name__} ({model_cfg.layers}-layer {model_cfg.cell.upper()}, "
          f"hidden {model_cfg.hidden}), {n_params:,} parameters")
    metrics = train(task, train_cfg, args.out, quiet=args.quiet, resume_from=ckpt)
    shown = {k: round(v, 4) for k, v in metrics.items()
             if k.startswith("test_") and isinstance(v, float)}
    print(f"best validation loss {metrics['best_val_loss']:.4f} after {metrics['steps']:,} steps, "
          f"{metrics['wall_seconds'] / 60:.1f} min; held-out test: {shown} -> {args.out}/metrics.json",
          file=sys.stdout)
    return metrics
