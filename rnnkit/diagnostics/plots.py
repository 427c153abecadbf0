"""Plots of gradient-flow runs (matplotlib, Agg): ||δ_t|| = ||dL/dh_t|| against the distance from
the loss on a log scale, and learning curves, each written as a small PNG."""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rnnkit.diagnostics.experiments import SOLVED_ACCURACY, SOLVED_MSE  # noqa: E402
from rnnkit.diagnostics.tasks import ADDING_BASELINE_MSE, COPY_ALPHABET  # noqa: E402
from rnnkit.outputs import atomic_write  # noqa: E402

COLOURS = {"rnn-tanh": "tab:red", "rnn-relu": "tab:orange", "lstm": "tab:blue", "gru": "tab:green"}
OTHER_COLOURS = ("tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")   # other cells
DPI = 80


def colour(r):
    """By cell; the explosion study (W_hh scaled up) in purple."""
    cell = r["config"]["cell"]
    if r["config"]["gain"] != 1:
        return "tab:purple"
    if cell not in COLOURS and cell not in _OTHERS:   # the next free one: two cells of one
        _OTHERS[cell] = OTHER_COLOURS[len(_OTHERS) % len(OTHER_COLOURS)]   # colour were apart
    return COLOURS.get(cell) or _OTHERS[cell]


_OTHERS = {}   # other cells' colours, in the order they are first drawn


def representative(results):
    """The runs drawn in the gradient-flow plot: one per cell (default init, with clipping, where
    there is one), and the clipped run of the explosion study."""
    def rank(r):
        c = r["config"]
        return (c["init"] != "default", c["gain"] != 1, c["clip"] == 0)
    best = {}
    for r in sorted(results, key=rank):
        best.setdefault(r["config"]["cell"], r)
    picked = ([best[c] for c in COLOURS if c in best]
              + [r for c, r in best.items() if c not in COLOURS])
    study = [r for r in results if r["config"]["gain"] != 1 and r["config"]["clip"] > 0]
    return picked + study[:1]


def plot_gradient_flow(results, path, title):
    """||dL/dh_t|| vs distance d from the end of the sequence: solid at init, dashed after training."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for r in representative(results):
        name = r["config"]["cell"] if r["config"]["gain"] == 1 else r["name"]
        for key, style, label in (("profile_init", "-", f"{name} at init (ρ={r['decay_init']:.3f})"),
                                  ("profile_final", "--", None)):
            h = r[key]["h"]
            d = [i for i, v in enumerate(h) if v > 0 and math.isfinite(v)]
            zero = next((i for i, v in enumerate(h) if v == 0), None)
            if zero is not None:   # a log scale has no 0: the legend says where it vanished
                label = f"{label or name + ' trained'}: 0 from d={zero}"
            ax.semilogy(d, [h[i] for i in d], style, color=colour(r), label=label, lw=1.3)
    ax.set_xlabel("distance d from the end of the sequence (steps)")
    ax.set_ylabel("||dL/dh_t||")
    ax.set_title(title + "  (solid: init, dashed: trained)", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI))
    plt.close(fig)


def plot_learning_curves(results, path, title):
    """Test score vs step for every run of one task and lag, with the baseline and the solve line."""
    task = results[0]["config"]["task"]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for r in results:
        style = "--" if r["config"]["clip"] == 0 else "-"
        pts = [(c["step"], c["score"]) for c in r["curve"] if math.isfinite(c["score"])]
        if pts:
            ax.plot(*zip(*pts), style, color=colour(r), label=r["name"], lw=1.1,
                    alpha=1.0 if r["config"]["init"] == "default" else 0.6)
    if task == "adding":
        ax.set_yscale("log")
        ax.axhline(ADDING_BASELINE_MSE, color="grey", lw=0.8, ls=":", label="predict 1 (1/6)")
        ax.axhline(SOLVED_MSE, color="black", lw=0.8, ls=":", label="solved (0.01)")
        ax.set_ylabel("test MSE")
    else:
        ax.axhline(1 / COPY_ALPHABET, color="grey", lw=0.8, ls=":", label="guess (1/8)")
        ax.axhline(SOLVED_ACCURACY, color="black", lw=0.8, ls=":", label="solved (0.99)")
        ax.set_ylabel("recall accuracy")
    ax.set_xlabel("training step")
    ax.set_title(title + "  (dashed: no clipping)", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6, ncol=2, loc="upper right")
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI))
    plt.close(fig)
