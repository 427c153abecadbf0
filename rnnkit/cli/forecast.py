"""``rnnkit train forecast`` and ``rnnkit forecast RUN --steps N``: forecast a series with its
prediction intervals, print and plot it."""
import argparse
import sys

import numpy as np

from rnnkit.cli.options import given_path, image_file, image_format, ranged
from rnnkit.cli.task_runs import TaskRun
from rnnkit.data import DataError
from rnnkit.data.dates import next_labels
from rnnkit.models.forecaster import ForecasterConfig
from rnnkit.outputs import atomic_write
from rnnkit.tasks.forecast import ForecastData, build_forecast_task
from rnnkit.tasks.forecast_scores import LEVELS, MIN_ERRORS
from rnnkit.tasks.forecast_trained import LEGACY, Forecast

# steps of one forecast: far beyond any horizon a series supports, and printed and plotted in
# seconds (100,000 took minutes, with no sign of progress)
MAX_FORECAST = 10_000
TRAIN_DEFAULTS = {"schedule": "cosine", "min_lr_ratio": 0.1, "max_steps": 2000, "eval_every": 100, "warmup_steps": 50, "lr": 3e-3}

RUN = TaskRun("forecast", ForecastData, ForecasterConfig, build_forecast_task, TRAIN_DEFAULTS,
              skip=("features", "horizon", "base", "period", "window", "relative",
                    "per_column"), keeps_choices=True,
              upgrade=lambda ckpt: {**ckpt, "model_config": {**LEGACY, **ckpt["model_config"]}})
TRAIN = ("forecaster for a uni- or multivariate series (CSV)", RUN.add_flags, RUN.run)


def add_parser(sub):
    p = sub.add_parser("forecast", help="forecast with a trained forecaster; writes a PNG")
    p.add_argument("run", type=given_path, help="run folder (uses best.pt) or a checkpoint file")
    p.add_argument("--steps", type=ranged(int, (1, MAX_FORECAST)), default=24,
                   help=f"steps to forecast, at most {MAX_FORECAST:,} (default 24)")
    p.add_argument("--from-end", action="store_true", help="forecast past the last observation "
                   "(default: from the start of the held-out tail, to compare with the truth)")
    p.add_argument("--png", type=image_file, help="plot file (default: RUN/forecast.png)")
    p.add_argument("--intervals", type=levels, default=LEVELS, metavar="P[,P]",
                   help="prediction intervals' coverage in percent, or none (default 80,95)")
    p.add_argument("--series", default="", metavar="A[,B]",
                   help="the series (columns) to print and plot (default: all; the plot shows "
                        f"the first {PLOT_MAX})")
    p.set_defaults(func=run)


PLOT_MAX = 12   # panels in the plot at most (a run over many series: --series chooses)


def chosen(f, text):
    """Indices of the series named in ``text`` (comma-separated; empty: all)."""
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))   # once each
    unknown = [n for n in names if n not in f.names]
    if unknown:
        raise DataError(f"--series {unknown[0]!r}: no such series in the run; it has "
                        f"{_listed(f.names)}")
    return [f.names.index(n) for n in names] if names else list(range(len(f.names)))


def _listed(names, n=10):
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


def levels(text):
    """``80,95`` -> (80.0, 95.0); ``none`` -> (); each level in (0, 100)."""
    if text.strip().lower() in ("none", ""):
        return ()
    try:
        out = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected percents such as 80,95 or none, got {text!r}")
    bad = [v for v in out if not 0 < v < 100]
    if bad:
        raise argparse.ArgumentTypeError(f"each level must lie in (0, 100), got {bad[0]:g}")
    return tuple(dict.fromkeys(out))   # once each (80,80 printed its columns twice)


def run(args):
    f = Forecast.load(args.run)
    keep = chosen(f, args.series)
    origin = len(f.y) if args.from_end else f.split[1]
    if not f.window <= origin <= len(f.y):   # too short a stored series for any forecast
        f.forecast(args.steps, origin)
    pred, lo, hi = f.intervals(f.y, [origin], args.steps, args.intervals)
    pred, lo, hi = pred[0], lo[:, 0], hi[:, 0]                # (steps, F), (L, steps, F)
    truth = f.y[origin:origin + args.steps]
    bands = [f"{side}{v:g}" for v in args.intervals for side in ("lo", "hi")]
    print("step\t" + "\t".join(f"{f.names[k]}_forecast\t" + "".join(
        f"{f.names[k]}_{b}\t" for b in bands) + f"{f.names[k]}_truth" for k in keep))
    n = len(f.labels)   # the dates ahead where the series' steps say them, else +k
    ahead = (next_labels(f.labels, max(0, origin + args.steps - n)) if n == len(f.y) else None) or []

    def row_label(i):
        j = origin + i - n
        return (f.labels[origin + i] if j < 0 else ahead[j] if j < len(ahead)
                else f"+{origin + i - len(f.y) + 1}")
    for i in range(args.steps):
        label = row_label(i)
        cells = [[pred[i, k]] + [v for j in range(len(lo)) for v in (lo[j, i, k], hi[j, i, k])]
                 for k in keep]
        print(label + "\t" + "\t".join(
            "\t".join("" if np.isnan(v) else f"{v:.3f}" for v in row)
            + "\t" + (f"{truth[i, k]:.3f}" if i < len(truth) else "")
            for k, row in zip(keep, cells)))
    far = runaway(f, origin, pred, keep)
    if far:
        print(runaway_note(f, pred, far, row_label(far[0])), file=sys.stderr)
    missing = [v for j, v in enumerate(args.intervals) if np.isnan(lo[j]).any()]
    if missing:
        print(f"note: no {', '.join(f'{v:g}%' for v in missing)} interval at the steps where "
              f"fewer than {MIN_ERRORS} past forecasts' errors are known: left empty",
              file=sys.stderr)
    png = args.png or (args.run / "forecast.png" if args.run.is_dir() else args.run.with_suffix(".png"))
    shown = keep[:PLOT_MAX]
    plot(f, origin, pred, png, (args.intervals, lo, hi), shown)
    print(f"plot: {png}" + (f" (the first {len(shown)} of {len(keep)} series; --series chooses)"
                            if len(shown) < len(keep) else ""), file=sys.stderr)
    return 0


RUNAWAY = 10   # ... ranges outside the history's: a forecast fed back on itself that diverged


def runaway(f, origin, pred, keep):
    """(step, series) of the first forecast past the horizon that lies more than ``RUNAWAY``
    times the history's range outside it (a sine between 7 and 14 forecast 10,000 steps
    ahead reached 7.7e7): past the horizon the model reads its own forecasts, and their errors
    compound. Growth that the history shows (4% a step, 36 steps on) stays well inside it.
    None where none does."""
    K = f.model.config.horizon
    for k in keep:
        past = f.y[:origin, k][np.isfinite(f.y[:origin, k])]
        if not len(past):
            continue
        low, high = float(past.min()), float(past.max())
        span = max(high - low, 1e-12)
        ahead = pred[K:, k].astype(np.float64)   # (float32 overflows near its largest values)
        out = np.flatnonzero(np.abs(ahead - (low + high) / 2) > (RUNAWAY + 0.5) * span)
        if len(out):
            return int(out[0]) + K, k, (low, high)
    return None


def runaway_note(f, pred, far, label):
    i, k, (low, high) = far
    return (f"note: at {label} (forecast step {i + 1}) the forecast of {f.names[k]} "
            f"({pred[i, k]:.4g}) lies more than {RUNAWAY} times the history's range "
            f"[{low:.4g}, {high:.4g}] outside it; past the horizon ({f.model.config.horizon} "
            f"steps) the model forecasts from its own forecasts and their errors compound: it "
            f"has diverged there")


def plot(f, origin, pred, png, bands=((), None, None), shown=None):
    """History before the origin, the forecast with its intervals (levels, lo, hi (L, steps,
    F)), and the held-out truth, one panel a variable (those in ``shown``, default all)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, F = pred.shape
    shown = list(range(F)) if shown is None else shown
    start = max(0, origin - max(4 * steps, f.window))
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 3.2 * len(shown)), squeeze=False)
    for k, ax in zip(shown, axes[:, 0]):
        ax.plot(range(start, origin), f.y[start:origin, k], color="0.3", label="history")
        end = min(len(f.y), origin + steps)
        if end > origin:
            ax.plot(range(origin, end), f.y[origin:end, k], color="tab:green", label="held-out truth")
        ax.plot(range(origin, origin + steps), pred[:, k], color="tab:red", label="forecast")
        levels, lo, hi = bands
        for j in sorted(range(len(levels)), key=lambda j: -levels[j]):   # widest first
            ax.fill_between(range(origin, origin + steps), lo[j, :, k], hi[j, :, k],
                            color="tab:red", alpha=0.12, lw=0, label=f"{levels[j]:g}% interval")
        ax.axvline(origin, color="0.6", ls=":")
        ax.set_ylabel(f.names[k])
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    axes[-1, 0].set_xlabel(f"time step (the forecast starts after {f.labels[origin - 1]})")
    fig.tight_layout()
    atomic_write(png, lambda fh: fig.savefig(fh, format=image_format(png), dpi=100))
    plt.close(fig)
