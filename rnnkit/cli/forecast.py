"""``rnnkit train forecast`` and ``rnnkit forecast RUN --steps N``: forecast a series, print and plot it."""
from pathlib import Path

from rnnkit.cli.options import ranged
from rnnkit.cli.task_runs import TaskRun
from rnnkit.models.forecaster import ForecasterConfig
from rnnkit.tasks.forecast import ForecastData, build_forecast_task
from rnnkit.tasks.forecast_trained import Forecast
from rnnkit.train.checkpoint import atomic_write

# steps of one forecast: far beyond any horizon a series supports, and printed and plotted in
# seconds (100,000 took minutes, with no sign of progress)
MAX_FORECAST = 10_000
TRAIN_DEFAULTS = {"schedule": "cosine", "min_lr_ratio": 0.1, "max_steps": 2000, "eval_every": 100, "warmup_steps": 50, "lr": 3e-3}

RUN = TaskRun("forecast", ForecastData, ForecasterConfig, build_forecast_task, TRAIN_DEFAULTS,
              skip=("features", "horizon", "base", "period", "window", "relative"))
TRAIN = ("forecaster for a uni- or multivariate series (CSV)", RUN.add_flags, RUN.run)


def add_parser(sub):
    p = sub.add_parser("forecast", help="forecast with a trained forecaster; writes a PNG")
    p.add_argument("run", type=Path, help="run folder (uses best.pt) or a checkpoint file")
    p.add_argument("--steps", type=ranged(int, (1, MAX_FORECAST)), default=24,
                   help=f"steps to forecast, at most {MAX_FORECAST:,} (default 24)")
    p.add_argument("--from-end", action="store_true", help="forecast past the last observation "
                   "(default: from the start of the held-out tail, to compare with the truth)")
    p.add_argument("--png", type=Path, help="plot file (default: RUN/forecast.png)")
    p.set_defaults(func=run)


def run(args):
    f = Forecast.load(args.run)
    origin = len(f.y) if args.from_end else f.split[1]
    pred = f.forecast(args.steps, origin)                                     # (steps, F)
    truth = f.y[origin:origin + args.steps]
    print("step\t" + "\t".join(f"{n}_forecast\t{n}_truth" for n in f.names))
    for i in range(args.steps):
        label = f.labels[origin + i] if origin + i < len(f.labels) else f"+{origin + i - len(f.y) + 1}"
        cells = [(f"{pred[i, k]:.3f}", f"{truth[i, k]:.3f}" if i < len(truth) else "")
                 for k in range(len(f.names))]
        print(label + "\t" + "\t".join(f"{a}\t{b}" for a, b in cells))
    png = args.png or (args.run / "forecast.png" if args.run.is_dir() else args.run.with_suffix(".png"))
    plot(f, origin, pred, png)
    print(f"plot: {png}")
    return 0


def plot(f, origin, pred, png):
    """History before the origin, the forecast, and the held-out truth, one panel a variable."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, F = pred.shape
    start = max(0, origin - max(4 * steps, f.window))
    fig, axes = plt.subplots(F, 1, figsize=(9, 3.2 * F), squeeze=False)
    for k, ax in enumerate(axes[:, 0]):
        ax.plot(range(start, origin), f.y[start:origin, k], color="0.3", label="history")
        end = min(len(f.y), origin + steps)
        if end > origin:
            ax.plot(range(origin, end), f.y[origin:end, k], color="tab:green", label="held-out truth")
        ax.plot(range(origin, origin + steps), pred[:, k], color="tab:red", label="forecast")
        ax.axvline(origin, color="0.6", ls=":")
        ax.set_ylabel(f.names[k])
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    axes[-1, 0].set_xlabel(f"time step (the forecast starts after {f.labels[origin - 1]})")
    fig.tight_layout()
    atomic_write(png, lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)
