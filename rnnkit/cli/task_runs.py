"""What ``rnnkit train classify | tag | forecast | seq2seq | cond`` share: flags from the task's
config dataclasses, a fresh run or ``--resume``, the shared trainer (:func:`rnnkit.tasks.common.train`:
progress bar, checkpoints, metrics.json with the held-out test figures), and a closing line.
Each task describes itself once, as a :class:`TaskRun`."""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from rnnkit.cli.options import add_config_flags, config_from_args
from rnnkit.tasks.common import train
from rnnkit.train import TrainConfig, load_checkpoint
from rnnkit.train.trainer import saved_train_config


def layers_cell_hidden(model_cfg):
    return f"({model_cfg.layers}-layer {model_cfg.cell.upper()}, hidden {model_cfg.hidden})"


def held_out_figures(task, metrics):
    shown = {k: round(v, 4) for k, v in metrics.items()
             if k.startswith("test_") and isinstance(v, float)}
    return f"held-out test: {shown}"


@dataclass(frozen=True)
class TaskRun:
    """How ``rnnkit train KIND`` trains its task model; everything else is shared."""
    kind: str                  # the checkpoint kind the task writes, and --resume expects
    data: type                 # data config dataclass
    model: type                # model config dataclass
    build: Callable            # (data config, model config) -> trainer task
    train_defaults: dict       # the task's own TrainConfig defaults (shown in the help)
    skip: tuple = ()           # model fields the builder fills in from the data: no flags
    seeded: bool = False       # build also takes seed=: the training seed orders its batches
    describe: Callable = layers_cell_hidden   # model config -> its text on the "model:" line
    report: Callable = held_out_figures   # (task, metrics) -> the closing line, its test figures
    upgrade: Callable = None   # checkpoint -> checkpoint: fields of runs saved by older versions
    resumes_data: bool = False   # build also takes checkpoint=: a resume reuses its vocabulary

    def add_flags(self, p):
        """Data, model and training flags."""
        add_config_flags(p, self.data, title="data")
        add_config_flags(p, self.model, skip=self.skip, title="model")
        add_config_flags(p, TrainConfig, title="training", defaults=self.train_defaults)

    def configs(self, args):
        """(data, model, train configs, checkpoint resumed or None): from OUT/last.pt with
        --resume (only training flags may change then), else from the flags."""
        last = Path(args.out) / "last.pt"
        if args.resume:
            ckpt = load_checkpoint(last, kind=self.kind)
            if self.upgrade is not None:
                ckpt = self.upgrade(ckpt)
            return (self.data(**ckpt["data_config"]), self.model(**ckpt["model_config"]),
                    config_from_args(TrainConfig, args, saved_train_config(ckpt["train_config"])), ckpt)
        if last.exists():
            raise SystemExit(f"rnnkit: {args.out} already holds a run; pass --resume to continue "
                             f"it or choose another --out")
        base = dict(self.train_defaults)
        if "max_minutes" in vars(args):   # a time limit alone ends the run
            base["max_steps"] = 0
        return (config_from_args(self.data, args), config_from_args(self.model, args),
                config_from_args(TrainConfig, args, base), None)

    def run(self, args):
        """Train (or resume) a task model into args.out; metrics.json gets the test figures."""
        data_cfg, model_cfg, train_cfg, ckpt = self.configs(args)
        torch.manual_seed(train_cfg.seed)
        extra = {"seed": train_cfg.seed} if self.seeded else {}
        if self.resumes_data and ckpt is not None:
            extra["checkpoint"] = ckpt
        task = self.build(data_cfg, model_cfg, **extra)
        n_params = sum(p.numel() for p in task.model.parameters())
        print(f"model: {type(task.model).__name__} {self.describe(model_cfg)}, "
              f"{n_params:,} parameters")
        metrics = train(task, train_cfg, args.out, quiet=args.quiet, resume_from=ckpt)
        print(f"{self.report(task, metrics)} -> {args.out}/metrics.json")
        return 0
