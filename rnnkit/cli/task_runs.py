"""What ``rnnkit train classify | tag | forecast | seq2seq | cond`` share: flags from the task's
config dataclasses, a fresh run or ``--resume``, the shared trainer (:func:`rnnkit.tasks.common.train`:
progress bar, checkpoints, metrics.json with the held-out test figures), and a closing line.
Each task describes itself once, as a :class:`TaskRun`.

A run holds its folder (:class:`rnnkit.train.runlock.RunLock`) from the moment its flags are
checked to its end, and records a fingerprint of its data files in every checkpoint: ``--resume``
refuses data that changed since the run started, unless ``--allow-data-change`` is given where the
task can continue on other data (the LM, whose vocabulary is the checkpoint's).

Under ``torchrun`` (:mod:`rnnkit.train.distributed`) rank 0 checks the flags, holds the lock and
reads the checkpoint (sent to the other ranks, so a resume needs the run folder on rank 0's
machine only); every rank reads the data, and their fingerprints must agree. A failure on any
rank at these points stops every rank with the same one-line message."""
import dataclasses
import math
import re
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from rnnkit.cli.fingerprints import (by_name, check_same_data, data_fingerprint, named_set,
                                     same_data)
from rnnkit.cli.options import add_config_flags, config_from_args
from rnnkit.config import ConfigError
from rnnkit.data.datasets import DATASETS, check_regular
from rnnkit.data.text import expanded
from rnnkit.data.text_tokens import WORD_FORM
from rnnkit.data.vocab import Vocab
from rnnkit.tasks.common import train, warn
from rnnkit.train import CheckpointError, TrainConfig, distributed, load_checkpoint
from rnnkit.train.checkpoint import built_from
from rnnkit.train.resume import NEXT_BEST
from rnnkit.train.runlock import RUN_FILES, RunLock, RunLockError
from rnnkit.train.settings import saved_train_config


def layers_cell_hidden(model_cfg):
    return f"({model_cfg.layers}-layer {model_cfg.cell.upper()}, hidden {model_cfg.hidden})"


def held_out_figures(task, metrics):
    # four decimals, or four significant figures where they would show a small figure as 0.0
    # (a series of values near 1e-12); + 0.0: no "-0.0"
    shown = {k: (round(v, 4) if abs(v) >= 1e-3 or v == 0 or not math.isfinite(v)
                 else float(f"{v:.4g}")) + 0.0
             for k, v in metrics.items() if k.startswith("test_") and isinstance(v, float)}
    return f"held-out test: {shown}"


PATH_FIELDS = ("data", "val_data", "test_data")   # data settings that name files or folders


def absolute(path):
    """``path`` as an absolute path (``~`` expanded): a run resumed from another folder reads
    the same files."""
    return str(expanded(path).resolve())


def same_setting(given, stored):
    """A flag restated on --resume is the run's setting: equal, or a text the config composes
    (NFC: an --alphabet typed decomposed) equal once composed."""
    if isinstance(given, str) and isinstance(stored, str):
        return unicodedata.normalize("NFC", given) == unicodedata.normalize("NFC", stored)
    return given == stored


def time_spent(train_cfg, ckpt):
    """Whether the run resumed from ``ckpt`` has trained for all of --max-minutes already."""
    spent = ckpt.get("trainer", {}).get("elapsed", 0)
    return bool(train_cfg.max_minutes) and isinstance(spent, (int, float)) \
        and spent >= 60 * train_cfg.max_minutes


def relaid(train_cfg, ckpt):
    """Warn when a resume lays a decaying learning-rate schedule out over another number of
    steps than the run's so far: it will not equal a run of that many steps from the start."""
    saved = saved_train_config(ckpt["train_config"])
    step = ckpt.get("trainer", {}).get("step", 0)
    before = saved.get("max_steps", train_cfg.max_steps)
    if (step and train_cfg.schedule != "constant" and train_cfg.max_steps != before
            and not (train_cfg.max_steps and step >= train_cfg.max_steps)
            and not time_spent(train_cfg, ckpt)):
        then = f"{before:,} steps" if before else "its time limit"
        now = f"{train_cfg.max_steps:,} steps" if train_cfg.max_steps else "the time limit"
        warn(f"the run's {step:,} steps followed a {train_cfg.schedule} learning-rate schedule "
             f"laid out over {then}; it goes on laid out over {now}, so the run will not equal "
             f"one of that length from the start (only --schedule constant trains the same "
             f"either way)")
    minutes = saved.get("max_minutes", train_cfg.max_minutes)
    if (step and train_cfg.schedule != "constant" and not train_cfg.max_steps and not before
            and train_cfg.max_minutes != minutes and not time_spent(train_cfg, ckpt)):
        warn(f"the run's {step:,} steps followed a {train_cfg.schedule} learning-rate schedule "
             f"laid out over {minutes:g} minutes; it goes on laid out over "
             f"{train_cfg.max_minutes:g}, so the run will not equal one of that many minutes "
             f"from the start (only --schedule constant trains the same either way)")


def warn_unread(data_cfg):
    """Warn of a fraction a given part's file replaces (--val-fraction beside --val-data), and
    of a data set name that a file or folder here also has (the data set is read)."""
    defaults = {f.name: f.default for f in dataclasses.fields(data_cfg)}
    for part in ("val", "test"):
        file, fraction = f"{part}_data", f"{part}_fraction"
        if getattr(data_cfg, file, "") and fraction in defaults \
                and getattr(data_cfg, fraction) != defaults[fraction]:
            warn(f"--{part}-fraction {getattr(data_cfg, fraction):g} is not used: --{part}-data "
                 f"{getattr(data_cfg, file)} is the {'validation' if part == 'val' else 'test'} "
                 f"part")
    for name in by_name(data_cfg):
        value = getattr(data_cfg, name, "")
        if value in DATASETS and Path(value).exists():
            warn(f"--{name.replace('_', '-')} {value} reads the data set of that name, not the "
                 f"{'folder' if Path(value).is_dir() else 'file'} {value} here: give "
                 f"./{value} to read it")


def finished_files(out):
    """The files of a run that got past its first evaluation, best.pt and metrics.json, that
    ``out`` holds."""
    return [n for n in ("best.pt", "metrics.json") if (Path(out) / n).exists()]


def why_no_last(out):
    """Why a run folder without last.pt cannot be resumed, and what to do."""
    kept = finished_files(out)
    if kept:
        return (f"{out} holds a run's {' and '.join(kept)} (its last.pt is gone, so it cannot "
                f"be resumed); choose another --out, or move them away to train a new run there")
    if any((Path(out) / name).exists() for name in RUN_FILES):
        return ("the run stopped before its first last.pt was written; start it again without "
                "--resume")
    return f"{out} holds no run to resume"


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
    keeps_choices: bool = False  # build also takes checkpoint=: a resume keeps what the data
    # decided (the forecaster's transform and baseline, how seq2seq and cond split words), as
    # the data stays the same
    check_resume: Callable = None   # (args, model config, last.pt) on --resume: refuse what
    # the flag-by-flag check cannot tell (a bool flag whose False is both "auto" and "none")

    def add_flags(self, p):
        """Data, model and training flags."""
        add_config_flags(p, self.data, title="data")
        add_config_flags(p, self.model, skip=self.skip, title="model")
        add_config_flags(p, TrainConfig, title="training", defaults=self.train_defaults)

    def configs(self, args, say=True):
        """(data, model, train configs, checkpoint resumed or None): from OUT/last.pt with
        --resume (only training flags may change then), else from the flags. A checkpoint's
        settings are checked like flags; one out of range is refused by the file's name.
        ``say``: warn of flags that go unused (False for the check before the lock: the
        second call says it once)."""
        last = Path(args.out) / "last.pt"
        if args.resume:
            if not last.exists() and not last.is_symlink() and Path(args.out).is_dir():
                raise CheckpointError(f"{last}: no such checkpoint file: " + why_no_last(args.out))
            ckpt = load_checkpoint(last, kind=self.kind)
            try:
                if self.upgrade is not None:
                    ckpt = self.upgrade(ckpt)
                data_cfg, model_cfg = self.data(**ckpt["data_config"]), self.model(**ckpt["model_config"])
                saved = saved_train_config(ckpt["train_config"])
                TrainConfig(**saved)
                step = ckpt["trainer"]["step"]
                if isinstance(step, bool) or not isinstance(step, int) or step < 0:
                    raise ValueError(f"the trainer's step is {step!r}, not a count of steps")
                for key in ("vocab", "src_vocab", "tgt_vocab"):   # a resume reads text by them
                    if isinstance(ckpt.get(key), dict):
                        Vocab.from_dict(ckpt[key])
                if ckpt.get("word_form", 1) not in range(1, WORD_FORM + 1):
                    raise ValueError(f"its word_form is {ckpt['word_form']!r}, not 1 to "
                                     f"{WORD_FORM}")
            except (ConfigError, TypeError, ValueError, KeyError) as e:
                what = re.sub(r" \(--[\w-]+\)$", "", str(e))   # from the file, not a flag
                raise CheckpointError(f"{last}: its settings are not usable: {what}") from None
            moved = {name: vars(args)[name] for name in PATH_FIELDS
                     if vars(args).get(name) and not named_set(data_cfg, name, vars(args)[name])
                     and getattr(data_cfg, name, "")   # a part the run had: not one added
                     and expanded(vars(args)[name]).exists()}
            if moved:   # the same data at another path: its fingerprint is checked below
                data_cfg = dataclasses.replace(data_cfg, **{k: absolute(v) for k, v in moved.items()
                                                            if hasattr(data_cfg, k)})
            flags = ckpt.get("flags") if isinstance(ckpt.get("flags"), dict) else {}
            for cfg, part in ((data_cfg, "data"), (model_cfg, "model")):   # a flag that would
                asked = flags.get(part) if isinstance(flags.get(part), dict) else {}   # change
                for f in dataclasses.fields(cfg):   # them is refused (skip: model fields the
                    if f.name not in vars(args):    # data fills in)
                        continue
                    given = vars(args)[f.name]
                    if cfg is data_cfg and f.name in moved:
                        given = absolute(given)
                    skipped = cfg is model_cfg and f.name in self.skip
                    # the run's own flag, which the data resolved (--embed 0, --bag auto), is
                    # no change
                    if not skipped and not same_setting(given, getattr(cfg, f.name)) \
                            and not (f.name in asked and same_setting(given, asked[f.name])):
                        flag = f.name.replace('_', '-')
                        shown = given if isinstance(given, str) and given and \
                            given.strip() == given and " " not in given else repr(given)
                        said = (f"--{flag}" if given is True else f"--no-{flag}"
                                if given is False else f"--{flag} {shown}")
                        raise ConfigError(
                            f"{said}: on --resume the model and data settings are the run's "
                            f"({getattr(cfg, f.name)!r}); only training flags may change; "
                            f"start a new run with another --out to change it")
            if self.check_resume is not None:
                self.check_resume(args, model_cfg, ckpt)
            best_step = ckpt["trainer"].get("best_step")
            if best_step is not None and not any((Path(args.out) / n).is_file()
                                                 for n in ("best.pt", NEXT_BEST)):
                raise CheckpointError(f"{Path(args.out) / 'best.pt'}: missing: the run's best "
                                      f"model (step {best_step}) is gone, and a resumed run would "
                                      f"end without one; put it back, or start a new run with "
                                      f"another --out")
            if "seed" in vars(args) and not same_setting(args.seed, saved.get("seed")):
                raise ConfigError(
                    f"--seed {args.seed}: on --resume the run goes on with its own random stream "
                    f"(--seed {saved.get('seed')}: its batch order, dropout and initial "
                    f"weights); start a new run with another --out for another seed")
            train_cfg = config_from_args(TrainConfig, args, saved)
            step = ckpt.get("trainer", {}).get("step", 0)
            if train_cfg.max_steps and step >= train_cfg.max_steps:
                warn(f"{args.out} is at step {step:,} and --max-steps is {train_cfg.max_steps:,}: "
                     f"nothing to train; give a larger --max-steps to train on")
            if time_spent(train_cfg, ckpt):   # the clock ends it too
                spent = ckpt["trainer"]["elapsed"]
                warn(f"{args.out} has trained {spent / 60:.2g} min and --max-minutes is "
                     f"{train_cfg.max_minutes:g}: nothing to train; give a larger --max-minutes "
                     f"(or --max-minutes 0 with --max-steps) to train on")
            return data_cfg, model_cfg, train_cfg, ckpt
        if last.exists():
            live = RunLock.holder(args.out)
            if live:   # --resume would meet the lock: say that first
                raise RunLockError(f"{args.out}: another rnnkit run is training into this "
                                   f"folder ({live}); wait for it to end or choose another --out")
            raise RunLockError(f"{args.out} already holds a run; pass --resume to continue it or "
                               f"choose another --out")
        if finished_files(args.out):   # a run whose last.pt was removed (it holds the
            raise RunLockError(why_no_last(args.out))   # optimizer): no fresh run over it
        base = dict(self.train_defaults)
        if "max_minutes" in vars(args):   # a time limit alone ends the run
            base["max_steps"] = 0
        data_cfg = config_from_args(self.data, args)
        if not str(getattr(data_cfg, "data", "x")).strip():   # Path('') is this folder
            raise ConfigError("--data must name a file, a folder or a data set, got an empty "
                              "string")
        for name in PATH_FIELDS:   # a pipe is read once (the fingerprint) or waits for a writer
            value = getattr(data_cfg, name, "")
            if value and not named_set(data_cfg, name, value):
                check_regular(expanded(value), f"--{name.replace('_', '-')}", value)
        if say:
            warn_unread(data_cfg)
        data_cfg = dataclasses.replace(data_cfg, **{   # a resume from another folder finds them
            name: absolute(getattr(data_cfg, name)) for name in PATH_FIELDS
            if getattr(data_cfg, name, "")
            and not named_set(data_cfg, name, getattr(data_cfg, name))
            and (expanded(getattr(data_cfg, name)).is_file()
                 or expanded(getattr(data_cfg, name)).is_dir())})   # (/dev/stdin kept)
        return (data_cfg, config_from_args(self.model, args),
                config_from_args(TrainConfig, args, base), None)

    def run(self, args):
        """Train (or resume) a task model into args.out; metrics.json gets the test figures."""
        world = distributed.setup()   # a no-op outside torchrun
        try:
            if not args.resume:   # flags are checked before the run folder is touched
                distributed.agree(lambda: world.main and self.configs(args, say=False),
                                  "the check of the flags")
            lock = RunLock(args.out)
            distributed.agree(lambda: world.main and lock.acquire(), "the lock of the run folder")
            try:
                return self._run(args)
            finally:
                lock.release()
        finally:
            distributed.teardown()

    def _run(self, args):
        world = distributed.current()
        loaded = distributed.agree(lambda: self.configs(args) if world.main else None,
                                   "the check of the flags and the checkpoint")
        data_cfg, model_cfg, train_cfg, ckpt = distributed.broadcast(loaded,
                                                                     "the checkpoint's broadcast")
        if hasattr(data_cfg, "batch"):
            distributed.check_batch(data_cfg.batch, resumed=ckpt is not None)
        if getattr(args, "allow_data_change", False) and ckpt is None and world.main:
            warn("--allow-data-change is not used: it lets --resume continue on changed data, "
                 "and this run starts afresh")
        fingerprint = distributed.agree(lambda: data_fingerprint(data_cfg),
                                        "the data's fingerprint")
        same_data(fingerprint, distributed.all_gather(fingerprint, "the data's fingerprint"))
        if ckpt is not None and "data_fingerprint" in ckpt:
            allowed = getattr(args, "allow_data_change", False)
            if allowed and not self.resumes_data:
                raise ConfigError(f"--allow-data-change: a {self.kind} run takes its vocabulary "
                                  f"and labels from its data, so it cannot continue on changed "
                                  f"data; start a new run with another --out")
            hint = " or pass --allow-data-change (the vocabulary stays the checkpoint's)" if self.resumes_data else ""
            with built_from(Path(args.out) / "last.pt"):   # a fingerprint that is not a dict
                if not isinstance(ckpt["data_fingerprint"], dict):
                    raise TypeError(f"its data fingerprint is a "
                                    f"{type(ckpt['data_fingerprint']).__name__}, not a table")
            changed = check_same_data(args.out, ckpt["data_fingerprint"], fingerprint, allowed,
                                      hint, {name: getattr(data_cfg, name, "")
                                             for name in PATH_FIELDS})
            parts = {k.split(":")[0] for k in changed or ()}
            if ("val_data" in parts or "data" in parts and not getattr(data_cfg, "val_data", ""))\
                    and ckpt["trainer"].get("best_step") is not None:
                # best.pt's validation loss was measured on the old validation text: no
                # evaluation on the new one could count as better than a figure of other text.
                # The run is evaluated again where it stands (also with no step left to train)
                best = ckpt["trainer"].get("best_val")
                ckpt["trainer"] = {**ckpt["trainer"], "best_val": math.inf, "best_step": None,
                                   "last_eval": {"step": -1}}   # (none: evaluated again)
                if world.main:
                    warn(f"--allow-data-change: best.pt's validation loss, {best:.4g}, was "
                         f"measured on the old validation text; the next evaluation on the new "
                         f"one sets the best (and replaces best.pt)")
        if ckpt is not None and world.main:
            relaid(train_cfg, ckpt)
        flags = ckpt.get("flags") if ckpt is not None else {   # the run's own, unresolved
            "data": dataclasses.asdict(data_cfg), "model": dataclasses.asdict(model_cfg)}
        torch.manual_seed(train_cfg.seed)
        extra = {"seed": train_cfg.seed} if self.seeded else {}
        if (self.resumes_data or self.keeps_choices) and ckpt is not None:
            extra["checkpoint"] = ckpt
        started = time.perf_counter()
        task = distributed.agree(lambda: self.build(data_cfg, model_cfg, **extra),
                                 "reading the data")
        n_params = sum(p.numel() for p in task.model.parameters())
        print(f"model: {type(task.model).__name__} {self.describe(model_cfg)}, "
              f"{n_params:,} parameters")
        telemetry = getattr(args, "telemetry", None)   # not given on --resume: the run's
        if telemetry is None:
            telemetry = ckpt.get("telemetry", 0) if ckpt is not None else 0
        metrics = train(task, train_cfg, args.out, quiet=args.quiet, resume_from=ckpt,
                        extras={"data_fingerprint": fingerprint, "telemetry": telemetry,
                                **({"flags": flags} if flags is not None else {})},
                        telemetry=telemetry, spent=time.perf_counter() - started)
        if world.main:   # the other ranks have the training summary alone
            print(f"{self.report(task, metrics)} -> {args.out}/metrics.json")
        return 0
