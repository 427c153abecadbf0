"""Trainer callbacks: a tqdm progress bar, and the run folder (checkpoints, metric files, plot).

A callback is any object with some of ``on_train_start(trainer)``, ``on_step_start(trainer)``,
``on_log(trainer, stats)``, ``on_eval(trainer, metrics)`` and ``on_train_end(trainer, summary)``.

The loss is labelled ``nats/<task.unit>`` unless the task names it (``task.loss_label``, e.g. a
forecaster's mean squared error).
"""
import json
import math
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from rnnkit.outputs import atomic_write
from rnnkit.train.checkpoint import CheckpointError, check_plain, json_text, save_checkpoint
from rnnkit.train.resume import NEXT_BEST, with_extras
from rnnkit.train.runlock import LOCK_NAME


class ProgressBar:
    """tqdm bar over steps (or seconds, for a time-limited run) with loss, tokens/s and grad norm;
    evaluations are printed above it. Into a log file (the stream not a terminal, where a bar's
    frames would pile up on one line) a plain line every ``PLAIN_EVERY`` seconds instead, each
    ended: the step, the time in and left, and the same figures."""
    PLAIN_EVERY = 30.0

    def __init__(self, file=None, disable=False):
        self.file, self.disable = file, disable
        self.bar = None
        self.plain = False

    def on_train_start(self, trainer):
        c = trainer.config
        self.by_time = not c.max_steps   # a time-limited run: the bar counts seconds
        total = round(60 * c.max_minutes) if self.by_time else c.max_steps
        done = round(trainer.seconds()) if self.by_time else trainer.step
        stream = self.file if self.file is not None else sys.stderr
        self.plain = not self.disable and not bool(getattr(stream, "isatty", lambda: False)())
        self._said = time.perf_counter()       # the last plain line (none at the start)
        self.bar = tqdm(total=total, initial=done, unit="s" if self.by_time else "step",
                        file=self.file, disable=self.disable or self.plain, dynamic_ncols=True,
                        mininterval=0.1)
        self._mark = (time.perf_counter(), trainer.tokens)

    def on_log(self, trainer, stats):
        now = time.perf_counter()
        t0, tok0 = self._mark
        self._mark = (now, trainer.tokens)
        loss = stats["loss_sum"] / stats["count"] if stats["count"] else math.nan   # all skipped
        norm = stats["norms"][-1] if stats["norms"] else math.nan
        lr = float(trainer.optimizer.param_groups[0]["lr"])   # (a rate kept in a tensor too)
        figures = {"loss": f"{loss:.3f}", "tok_s": f"{(trainer.tokens - tok0) / (now - t0):,.0f}",
                   "gnorm": f"{norm:.2f}", "lr": f"{lr:.2e}"}
        self.bar.set_postfix(**figures, refresh=False)
        self.bar.update((round(trainer.seconds()) if self.by_time else trainer.step) - self.bar.n)
        if self.plain and now - self._said >= self.PLAIN_EVERY:
            self._said = now
            self._say(trainer, f"; loss {figures['loss']}, {figures['tok_s']} "
                               f"{getattr(trainer.task, 'unit', 'token')}s/s, grad norm "
                               f"{figures['gnorm']}, lr {figures['lr']}")

    def _say(self, trainer, figures=""):
        """One plain line: where the run is, the time in and (from the pace so far) left."""
        seconds, total = trainer.seconds(), self.bar.total
        if self.by_time:   # the clock against the whole budget (the training part of it ends
            done = min(seconds / max(total, 1), 1.0)   # a final validation's time before it)
            left = f", {_clock(total - seconds)} left" if done < 1 else ""
            where = f"{_clock(seconds)} of {_clock(total)} ({done:.0%}), step {trainer.step:,}"
        else:
            done = trainer.progress()
            left = f", {_clock(seconds * (1 - done) / done)} left" if 0 < done < 1 else ""
            where = f"step {trainer.step:,}/{total:,} ({done:.0%}), {_clock(seconds)} in"
        print(f"{where}{left}{figures}", file=self.file if self.file is not None else sys.stderr,
              flush=True)

    def on_eval(self, trainer, m):
        unit = getattr(trainer.task, "unit", "token")
        trained = m["step"] > 0   # step 0 (a fitted start validated): no training figures yet
        text = (f"step {m['step']}: " + (f"train {m['train_loss']:.4f}, " if trained else "")
                + f"val {m['val_loss']:.4f} {loss_label(trainer.task)}")
        if "val_bits" in m:
            ppl = m["val_ppl"]   # (a diverged run's has a hundred digits)
            text += f", {m['val_bits']:.4f} bits/{unit}, ppl {ppl:.3f}" if ppl < 1e6 else \
                f", {m['val_bits']:.4f} bits/{unit}, ppl {ppl:.4g}"
        if trained:
            text += f", grad norm {m['grad_norm']:.2f} (max {m['grad_norm_max']:.2f})"
        self.bar.write(text + (" *" if m["best"] else ""), file=self.file)
        self._mark = (time.perf_counter(), trainer.tokens)   # tokens/s leaves evaluation time out

    def on_train_end(self, trainer, summary):
        # the steps (or seconds) after the last log line (a log every N steps)
        done = min(round(trainer.seconds()), self.bar.total) if self.by_time else trainer.step
        self.bar.update(max(done - self.bar.n, 0))
        self.bar.close()

    def on_train_abort(self, trainer):
        """Stopped by an exception: the bar ends its line, so the error that follows has a line
        of its own (it was glued to the bar, which tqdm drew again at exit)."""
        if self.bar is not None:
            self.bar.close()


def _clock(seconds):
    """Seconds as h:mm:ss."""
    s = max(int(round(seconds)), 0)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"




def plain_numbers(row):
    """``row`` with NaN and infinities as None: strict JSON (a bare NaN is not)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in row.items()}


def _identity(folder):
    """(device, inode) of a folder: a folder removed and made again under its name is another."""
    st = os.stat(folder)
    return st.st_dev, st.st_ino


class Checkpointer:
    """Keeps the run folder: ``last.pt`` and ``best.pt`` at every evaluation, ``metrics.jsonl``
    (one line per evaluation), ``train.jsonl`` (train loss and global gradient norm every
    ``log_every`` steps), and at the end ``metrics.json`` and ``loss.png``. ``extras`` (plain
    data) go into every checkpoint beside the trainer's state, e.g. the data's fingerprint.

    A new best.pt is written aside (:data:`NEXT_BEST`) before last.pt and moved into place
    after it, so best.pt always holds the step last.pt records as best: a run killed between the
    writes resumes from last.pt with the best.pt it names (:func:`settle_best` completes or drops
    the one written aside), and an --lr-drops drop goes back to the same weights as in the run
    that was not killed."""

    def __init__(self, out_dir, extras=None):
        self.out = Path(out_dir)
        self.extras = dict(extras or {})
        self._seen = (0.0, 0, 0)   # loss_sum, count, norms already logged from the current stats
        self._folder = self._note = None   # the run folder's identity, from on_train_start

    def _same_folder(self):
        """CheckpointError where the run folder was removed or replaced (another run may train
        in a new folder of its name) since the run started: its rows and checkpoints would go
        into the other run's files."""
        if self._folder is None:   # not started (a test calling on_eval alone)
            return
        try:   # the lock's note (pid, host, time) tells a new run's folder from this one's,
            same = _identity(self.out) == self._folder   # where an inode may be reused
            if same and self._note is not None:
                same = (self.out / LOCK_NAME).read_bytes() == self._note
        except OSError:
            same = False
        if not same:
            raise CheckpointError(f"{self.out}: the run folder was removed or replaced while "
                                  f"this run trained; it stops without writing there")

    def on_train_start(self, trainer):
        self.out.mkdir(parents=True, exist_ok=True)
        self._folder = _identity(self.out)
        lock = self.out / LOCK_NAME   # rnnkit train's (RunLock); none from Python
        self._note = lock.read_bytes() if lock.is_file() else None
        # what every checkpoint will hold, checked before the first step: an entry that would
        # replace the run's own, or a value loading cannot read, found at the first evaluation
        check_plain(with_extras(trainer.state_dict(), self.extras, "Checkpointer(extras=...)"))
        came = getattr(trainer, "resumed_from", None)   # (Trainer.resume, continue_from)
        if (getattr(trainer, "resumed", False) and came is not None
                and (self.out / "last.pt").exists()
                and os.path.realpath(Path(came).parent) != os.path.realpath(self.out)):
            raise CheckpointError(f"{self.out} holds another run (its own last.pt) than the one "
                                  f"resumed from {came}, whose checkpoints would replace it: "
                                  f"give the Checkpointer {Path(came).parent} or a new folder")
        if not getattr(trainer, "resumed", True) and (self.out / "last.pt").exists():
            raise CheckpointError(f"{self.out} already holds a run (last.pt); a new run there "
                                  f"would replace it: continue it (Trainer.resume with its "
                                  f"last.pt) or choose another folder")
        # resumed: drop lines written after the checkpoint we continue from (metrics and train
        # lines count steps done; gradient telemetry names the 0-based step it recorded); a
        # fresh run drops every line, a run stopped before its first last.pt left (its step
        # 0's validation came twice)
        resumed = getattr(trainer, "resumed", True)
        for name, done in (("metrics.jsonl", 0), ("train.jsonl", 0), ("gradients.jsonl", 1)):
            log = self.out / name
            if log.exists():
                keep = "".join(json.dumps(plain_numbers(r)) + "\n" for r in read_metrics(log)
                               if resumed and r["step"] + done <= trainer.step)
                atomic_write(log, lambda f: f.write(keep.encode()))

    def on_log(self, trainer, stats):
        self._same_folder()
        loss_sum, count, n = self._seen
        if stats["count"] < count:   # the trainer started new stats after an evaluation
            loss_sum, count, n = 0.0, 0, 0
        norms = stats["norms"][n:]
        row = {"step": trainer.step, "tokens": trainer.tokens,
               "train_loss": ((stats["loss_sum"] - loss_sum) / (stats["count"] - count)
                              if stats["count"] > count else math.nan),   # every step skipped
               "grad_norm": sum(norms) / len(norms) if norms else math.nan,
               "lr": float(trainer.optimizer.param_groups[0]["lr"])}
        self._seen = (stats["loss_sum"], stats["count"], len(stats["norms"]))
        with open(self.out / "train.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(plain_numbers(row)) + "\n")

    def on_eval(self, trainer, metrics):
        self._same_folder()
        self._seen = (0.0, 0, 0)
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(plain_numbers(metrics)) + "\n")
        state = with_extras(trainer.state_dict(), self.extras, "Checkpointer(extras=...)")
        if metrics["best"]:   # the task may stand for another model than its live one (a mix)
            model = getattr(getattr(trainer, "task", None), "best_model_state", lambda: None)()
            save_checkpoint(self.out / NEXT_BEST,
                            state if model is None else {**state, "model": model})
        save_checkpoint(self.out / "last.pt", state)
        if metrics["best"]:
            os.replace(self.out / NEXT_BEST, self.out / "best.pt")

    def on_train_end(self, trainer, summary):
        self._same_folder()
        text = json_text(summary)
        atomic_write(self.out / "metrics.json", lambda f: f.write(text.encode()))
        plot_losses(self.out / "metrics.jsonl", self.out / "loss.png",
                    unit=getattr(trainer.task, "unit", "token"), label=loss_label(trainer.task))


def loss_label(task):
    return getattr(task, "loss_label", f"nats/{getattr(task, 'unit', 'token')}")


def read_metrics(path):
    """The evaluation lines of a metrics.jsonl file (a torn last line, from a crash, is ignored)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return rows


def plot_losses(metrics_path, png_path, unit="token", label=None):
    """Train loss (from ``train.jsonl`` beside ``metrics_path`` when there, else per evaluation)
    and validation loss against tokens seen, written atomically as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evals = read_metrics(metrics_path)
    train_log = Path(metrics_path).with_name("train.jsonl")
    train = read_metrics(train_log) if train_log.exists() else evals
    fig, ax = plt.subplots(figsize=(7, 4))
    number = lambda v: math.nan if v is None else v                   # null: NaN when written
    ax.plot([r["tokens"] for r in train], [number(r["train_loss"]) for r in train], label="train",
            lw=1)
    ax.plot([r["tokens"] for r in evals], [number(r["val_loss"]) for r in evals], "o-",
            label="validation")
    ax.set_xlabel(f"{unit}s seen")
    ax.set_ylabel(f"loss ({label or 'nats/' + unit})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write(png_path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
