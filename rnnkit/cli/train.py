"""``rnnkit train TASK``: train a task model; today ``lm`` (a character or word language model)."""
from pathlib import Path

import torch

from rnnkit.cli import cond, translate
from rnnkit.cli import forecast, predict, tag
from rnnkit.cli.options import add_config_flags, config_from_args
from rnnkit.models import LMConfig
from rnnkit.train import Checkpointer, ProgressBar, TrainConfig, Trainer, load_checkpoint
from rnnkit.train.lm import LMData, build_lm_task
from rnnkit.train.trainer import saved_train_config

LM_DEFAULT_STEPS = 5000


def add_parser(sub):
    p = sub.add_parser("train", help="train a model")
    tsub = p.add_subparsers(dest="task", required=True, metavar="TASK")
    for name, (help_text, add_flags, run) in TASKS.items():
        t = tsub.add_parser(name, help=help_text)
        t.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, metrics)")
        t.add_argument("--resume", action="store_true",
                       help="continue from OUT/last.pt; model and data settings come from it, "
                            "training flags given here override its training settings")
        t.add_argument("--quiet", action="store_true", help="no progress bar")
        add_flags(t)
        t.set_defaults(func=run)


def add_lm_flags(p):
    add_config_flags(p, LMData, title="data")
    add_config_flags(p, LMConfig, skip=("vocab_size",), title="model")
    add_config_flags(p, TrainConfig, title="training", defaults={"max_steps": LM_DEFAULT_STEPS})


def run_lm(args):
    data_cfg, model_cfg, train_cfg, ckpt = lm_configs(args)
    torch.manual_seed(train_cfg.seed)
    task = build_lm_task(data_cfg, model_cfg)
    n_params = sum(p.numel() for p in task.model.parameters())
    print(f"model: {model_cfg.layers}-layer {model_cfg.cell.upper()}, hidden {model_cfg.hidden}, "
          f"{n_params:,} parameters; {task.train.tokens_per_pass:,} training tokens a pass, "
          f"{len(task.train):,} batches of {data_cfg.batch}x{data_cfg.seq_len}")
    trainer = Trainer(task, train_cfg, [ProgressBar(disable=args.quiet), Checkpointer(args.out)])
    if ckpt is not None:
        trainer.load_state_dict(ckpt)
        print(f"resuming {args.out} at step {trainer.step:,} ({trainer.seconds() / 60:.1f} min)")
    summary = trainer.fit()
    print(f"best validation loss {summary['best_val_loss']:.4f} nats/{task.unit} after "
          f"{summary['steps']:,} steps, {summary['tokens_seen']:,} tokens, "
          f"{summary['wall_seconds'] / 60:.1f} min -> {args.out}")
    return 0


def lm_configs(args):
    """(data, model, train configs, checkpoint or None) from the flags, or the run being resumed."""
    ckpt = None
    if args.resume:
        ckpt = load_checkpoint(args.out / "last.pt")
        data_cfg = LMData(**ckpt["data_config"])
        model_cfg = LMConfig(**{**ckpt["model_config"], "vocab_size": 0})
        train_cfg = config_from_args(TrainConfig, args, saved_train_config(ckpt["train_config"]))
        return data_cfg, model_cfg, train_cfg, ckpt
    if (args.out / "last.pt").exists():
        raise SystemExit(f"rnnkit: {args.out} already holds a run; pass --resume to continue it "
                         f"or choose another --out")
    base = {"max_steps": 0 if "max_minutes" in vars(args) else LM_DEFAULT_STEPS}
    return (config_from_args(LMData, args), config_from_args(LMConfig, args),
            config_from_args(TrainConfig, args, base), None)


def build_args(out, minutes=None, resume=False, quiet=False, **flags):
    """The namespace ``rnnkit train lm`` would parse, for callers such as the demo."""
    import argparse
    if minutes is not None:
        flags["max_minutes"] = minutes
    return argparse.Namespace(out=Path(out), resume=resume, quiet=quiet, **flags)


TASKS = {
    "lm": ("language model on a text corpus (char-rnn)", add_lm_flags, run_lm),
    "seq2seq": translate.TRAIN,
    "cond": cond.TRAIN,
    "classify": predict.TRAIN,
    "tag": tag.TRAIN,
    "forecast": forecast.TRAIN,
}
