"""``rnnkit gradflow``: vanishing and exploding gradients, measured on long-lag tasks.

    rnnkit gradflow --task adding --lags 10 50 100 200 --preset quick --out runs/gradflow

Trains each cell × init × clipping of the preset on each task and lag (runs already saved under
OUT are reused), then writes OUT/report.md and its PNGs (or into --report-dir).
"""
import argparse
import dataclasses
import os
import shlex
import time
from pathlib import Path

import torch

from rnnkit.cli.options import (given_path, nonneg_float, positive_float, positive_int,
                                random_seed, ranged)
from rnnkit.config import MAX_BATCH, MAX_STEPS, MAX_WIDTH
from rnnkit.diagnostics.experiments import ALIASES, CELLS, INITS, PRESETS, grid, run_grid
from rnnkit.diagnostics.tasks import TASKS
from rnnkit.config import ConfigError
from rnnkit.data import DataError, read_text
from rnnkit.tasks.common import warn

# the preset's scalars that flags override, and what each flag accepts
SCALARS = {"steps": positive_int, "hidden": ranged(int, (1, MAX_WIDTH)),
           "batch": ranged(int, (1, MAX_BATCH)), "lr": positive_float, "eval_every": positive_int,
           "test_size": ranged(int, (1, 1_000_000)), "explode_gain": nonneg_float,
           "copy_symbols": ranged(int, (1, 10_000)),
           "seed": random_seed}


def add_parser(sub):
    p = sub.add_parser("gradflow", help="measure vanishing/exploding gradients on the adding and "
                                        "copy-memory tasks, write plots and a report")
    p.add_argument("--task", nargs="+", choices=sorted(TASKS), default=["adding"],
                   help="the tasks (default adding)")
    p.add_argument("--lags", nargs="+", type=ranged(int, (3, MAX_STEPS)),
                   default=[10, 50, 100, 200], metavar="T",
                   help="sequence lengths, at least 3: the decay ρ is fitted past the "
                        "read-out (default 10 50 100 200)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick",
                   help="the grid and training sizes (default quick)")
    p.add_argument("--out", type=folder, default=Path("runs/gradflow"), help="run records (JSON; default runs/gradflow)")
    p.add_argument("--report-dir", type=folder, default=None,
                   help="report.md and PNGs (default OUT)")
    p.add_argument("--cells", nargs="+", choices=list(CELLS), default=None,
                   help="cells to run (default: the preset's)")
    p.add_argument("--inits", nargs="+", choices=list(INITS), default=None,
                   help="initialisations to run (default: the preset's)")
    p.add_argument("--clips", nargs="+", type=nonneg_float, default=None, metavar="MAX_NORM",
                   help="0 means no clipping")
    defaults = PRESETS["quick"]
    for name, parse in SCALARS.items():
        kind = type(getattr(defaults, name))
        p.add_argument("--" + name.replace("_", "-"), type=parse, default=None,
                       metavar=kind.__name__.upper(), help="override the preset")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: report every run saved under OUT for these tasks and lags")
    p.add_argument("--notes", type=given_path, default=None,
                   help="markdown file added to the report")
    p.add_argument("--threads", type=ranged(int, (1, 1024)), default=1,
                   help="torch threads (default 1)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def folder(text):
    """An argparse type: a folder to write into (made if missing); an empty name (the current
    folder, by accident) and an existing file are refused before any work."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder name, got an empty one")
    path = given_path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: a file, a folder was expected")
    return path


def preset_from_args(args):
    """The chosen preset with the flags given on the command line applied over it (a cell
    named twice, ``rnn`` being ``rnn-tanh``, is one)."""
    changes = {n: getattr(args, n) for n in SCALARS if getattr(args, n) is not None}
    if args.cells is not None:
        args.cells = list(dict.fromkeys(ALIASES.get(c, c) for c in args.cells))
    for n in ("cells", "inits", "clips"):
        if getattr(args, n) is not None:
            changes[n] = tuple(dict.fromkeys(getattr(args, n)))
    return dataclasses.replace(PRESETS[args.preset], **changes)


def run(args):
    from rnnkit.diagnostics.plots import plot_gradient_flow, plot_learning_curves
    from rnnkit.diagnostics.report import by_task_lag, write_report

    torch.set_num_threads(args.threads)
    if args.report_only:
        given = [f"--{n.replace('_', '-')}" for n in ("cells", "inits", "clips", *SCALARS)
                 if getattr(args, n) is not None]
        if given:
            raise ConfigError(f"--report-only reports every run saved under {args.out} as it was "
                              f"trained; {', '.join(given)} choose{'s' if len(given) == 1 else ''} "
                              f"runs to train: leave {'it' if len(given) == 1 else 'them'} out")
    notes = read_text(args.notes) if args.notes else ""   # a bad file is named before the work
    preset = preset_from_args(args)
    configs = grid(preset, args.task, args.lags)
    if not configs and not args.report_only:
        raise ConfigError(f"no run to train: cells {', '.join(preset.cells)} with inits "
                          f"{', '.join(preset.inits)} make no pair (identity is for rnn-relu "
                          f"only; orthogonal needs a matrix W_hh)")
    report_dir = args.report_dir or args.out
    if not args.report_only:                             # unwritable folders: before the work
        writable(args.out)
    writable(report_dir)
    log = (lambda *a: None) if args.quiet else (lambda s: print(s, flush=True))
    if args.report_only:
        log(f"reporting the runs saved under {args.out} for {', '.join(args.task)}, T = "
            f"{', '.join(map(str, args.lags))}")
    else:
        log(f"{len(configs)} runs: {preset}")
    t0 = time.perf_counter()
    command = _command(args)
    if args.report_only:
        results = load_saved(args.out, args.task, args.lags)
    else:
        args.out.mkdir(parents=True, exist_ok=True)

        def training():   # the report names the commands that trained its runs: not one
            with open(args.out / "commands.txt", "a", encoding="utf-8") as f:   # refused
                f.write(command + "\n")
        results = run_grid(configs, args.out, log=log, training=training)
    if not results:
        raise ConfigError(f"no gradflow runs under {args.out} for {', '.join(args.task)}, T = "
                          f"{', '.join(map(str, args.lags))}")
    missing = [f"{task} T={T}" for task in args.task for T in args.lags
               if not any(r["config"]["task"] == task and r["config"]["lag"] == T
                          for r in results)]
    if missing:
        warn(f"no runs saved under {args.out} for {', '.join(missing)}: the report leaves "
             f"{'it' if len(missing) == 1 else 'them'} out")
    plots = []
    for (task, T), rs in by_task_lag(results).items():
        flow, curves = f"gradflow_{task}_T{T}.png", f"learning_{task}_T{T}.png"
        plot_gradient_flow(rs, report_dir / flow, f"{task}, T={T}: ||dL/dh_t||")
        plot_learning_curves(rs, report_dir / curves, f"{task}, T={T}: learning curves")
        plots += [(f"{task}, T={T}: gradient flow", flow), (f"{task}, T={T}: learning curves", curves)]
    if args.report_only:
        log_file = args.out / "commands.txt"
        made = log_file.read_text().splitlines() if log_file.exists() else []
        settings = ("Report of the runs saved under the output folder, trained by:\n\n" +
                    "".join(f"    {c}\n" for c in dict.fromkeys(made)))
    else:
        settings = (f"Preset `{args.preset}`: {_describe(preset)}. {len(configs)} runs; this "
                    f"invocation took {time.perf_counter() - t0:.0f} s with {args.threads} torch "
                    f"thread(s) (runs already saved under the output folder are reused).")
    path = write_report(results, command, settings, report_dir / "report.md", plots, notes)
    print(f"{len(results)} runs -> {path}")
    return 0


def writable(path):
    """ConfigError, before any training, where ``path`` cannot be made or written into."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{path}: cannot make the folder ({e.strerror or e})") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"{path}: the folder is not writable")


def load_saved(out, tasks, lags):
    """Every run record saved under ``out`` for these tasks and lags, whatever its settings; a
    damaged one is a DataError naming it."""
    from rnnkit.diagnostics.records import read_record
    records = []
    for task in tasks:
        for T in lags:
            for p in sorted((out / task / f"T{T}").glob("*.json")):
                record = read_record(p)
                if record is None:
                    raise DataError(f"{p}: not a gradflow run record (damaged, or not written by "
                                    f"rnnkit gradflow); delete it, and a run without "
                                    f"--report-only trains it again")
                records.append(record)
    return records


def _command(args):
    """The command line that reproduces this invocation (the flags that were given)."""
    parts = ["rnnkit", "gradflow", "--task", *args.task, "--lags", *map(str, args.lags),
             "--preset", args.preset, "--out", str(args.out)]
    if args.report_dir:
        parts += ["--report-dir", str(args.report_dir)]
    if args.report_only:
        parts += ["--report-only"]
    if args.notes:
        parts += ["--notes", str(args.notes)]
    for n in ("cells", "inits", "clips", *SCALARS):
        v = getattr(args, n)
        if v is not None:
            parts += ["--" + n.replace("_", "-"), *map(str, v if isinstance(v, list) else [v])]
    return " ".join(shlex.quote(p) for p in parts)


def _describe(p):
    return (f"cells {', '.join(p.cells)}; inits {', '.join(p.inits)} (identity for rnn-relu only); "
            f"clipping max-norm {', '.join(f'{c:g}' for c in p.clips)} (0 = none); Adam lr {p.lr:g}, "
            f"up to {p.steps} steps of batch {p.batch}, hidden {p.hidden}, evaluated every "
            f"{p.eval_every} steps on {p.test_size} held-out sequences, stopped once solved; "
            + (f"explosion study: rnn-relu with W_hh = {p.explode_gain:g}·I, SGD (momentum 0.9, "
               f"lr {p.explode_lr:g}) with and without clipping at 1"
               if p.explode_gain and "rnn-relu" in p.cells else "no explosion study"))
