"""``rnnkit train TASK``: train a task model: lm, classify, tag, forecast, seq2seq, cond."""
import argparse
from pathlib import Path

from rnnkit.cli import cond, translate
from rnnkit.cli import forecast, predict, recognize, tag
from rnnkit.cli.options import given_path, nonneg_int
from rnnkit.cli.task_runs import TaskRun
from rnnkit.models import LMConfig
from rnnkit.models.language_model import saved_lm_config
from rnnkit.tasks.lm import LMData, build_lm_task, saved_lm_data

LM_DEFAULT_STEPS = 5000


def add_parser(sub):
    p = sub.add_parser("train", help="train a model")
    tsub = p.add_subparsers(dest="task", required=True, metavar="TASK")
    for name, (help_text, add_flags, run) in TASKS.items():
        t = tsub.add_parser(name, help=help_text)
        t.add_argument("--out", required=True, type=run_folder, help="run folder (checkpoints, metrics)")
        t.add_argument("--resume", action="store_true",
                       help="continue from OUT/last.pt; model and data settings come from it, "
                            "training flags given here override its training settings")
        t.add_argument("--allow-data-change", action="store_true",
                       help="with --resume: continue although the data files changed since the run "
                            "started (lm only: the vocabulary stays the checkpoint's)")
        t.add_argument("--quiet", action="store_true", help="no progress bar")
        t.add_argument("--telemetry", type=nonneg_int, default=None, metavar="N",
                       help="every N steps, record each recurrent layer's BPTT error signal "
                            "||dL/dh_t|| into OUT/gradients.jsonl (rnnkit view draws it; 0: "
                            "off; on --resume: the run's)")
        add_flags(t)
        t.set_defaults(func=run)


def run_folder(text):
    """An argparse type: a non-empty path (an empty --out would train into the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a folder, got an empty string")
    return given_path(text)


def lm_model(config):
    c = config
    return (f"({c.layers}-layer {c.cell.upper()}, hidden {c.hidden}, embedding {c.embed or 'auto'}, "
            f"tied {c.tie}, softmax {c.softmax})")


def lm_report(task, metrics):
    figures = f"best validation loss {metrics['best_val_loss']:.4f} nats/{task.unit}"
    if "test_loss" in metrics:
        figures += (f"; test {metrics['test_loss']:.4f} nats/{task.unit}, "
                    f"perplexity {metrics['test_ppl']:.2f}")
    return figures


def upgrade_lm(ckpt):
    """Runs saved before tying, the adaptive softmax and the PTB word mode existed."""
    return {**ckpt, "model_config": {**saved_lm_config(ckpt["model_config"]), "vocab_size": 0},
            "data_config": saved_lm_data(ckpt["data_config"])}


LM_RUN = TaskRun("lm", LMData, LMConfig, build_lm_task, {"max_steps": LM_DEFAULT_STEPS},
                 skip=("vocab_size",), describe=lm_model, report=lm_report, upgrade=upgrade_lm,
                 resumes_data=True)


def build_args(out, minutes=None, resume=False, quiet=False, **flags):
    """The namespace ``rnnkit train lm`` would parse, for callers such as the demo."""
    import argparse
    if minutes is not None:
        flags["max_minutes"] = minutes
    return argparse.Namespace(out=Path(out), resume=resume, quiet=quiet, **flags)


TASKS = {
    "lm": ("language model on a text corpus (char-rnn)", LM_RUN.add_flags, LM_RUN.run),
    "seq2seq": translate.TRAIN,
    "cond": cond.TRAIN,
    "classify": predict.TRAIN,
    "tag": tag.TRAIN,
    "forecast": forecast.TRAIN,
    "recognize": recognize.TRAIN,
    "image-to-text": recognize.TRAIN_1N,
}
