"""Gradient-flow experiments: train each cell × init × clipping on a long-lag task and record δ_t.

The textbook argument (Bengio et al. 1994; Pascanu et al. 2013): in a vanilla RNN the error term
δ_t = dL/dh_t travels back one step as δ_{t-1} = W_hhᵀ diag[f'(net_t)] δ_t, so over a distance d
its norm is bounded by (β_f β_w)^d, with β_f, β_w bounds on ||diag[f'(net)]|| and ||W_hh||. It
vanishes when β_f β_w < 1 and can explode when β_f β_w > 1. Here we measure ||δ_t|| with
:func:`rnnkit.record_gradients` and fit the per-step factor ρ in ||δ_{T-1-d}|| ≈ C ρ^d.

The optimisation loop is deliberately plain (batch, forward, backward, clip, step, evaluate): these
are experiments, not task models. Shape legend: T time, B batch, I input, H hidden, C classes.
"""
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

import rnnkit
from rnnkit.cells import registry
from rnnkit.diagnostics.records import SHARED, read_record, refuse_other, result_path
from rnnkit.diagnostics.tasks import TASKS, task_spec
from rnnkit.layers import LAYERS
from rnnkit.outputs import atomic_write
from rnnkit.train.checkpoint import json_text
from rnnkit.train.gradients import clip_gradients

SOLVED_MSE = 0.01          # adding problem: solved below this test MSE (baseline 1/6)
SOLVED_ACCURACY = 0.99     # copy memory: solved above this recall accuracy
MAX_NONFINITE = 20         # a run with this many non-finite steps is stopped as diverged

CELLS = LAYERS                                       # every registered cell: name -> layer
ALIASES = {"rnn": "rnn-tanh"}                        # the same cell, run and reported once
DEFAULT_CELLS = ("rnn-tanh", "rnn-relu", "lstm", "gru")  # what the presets run


def init_default(rnn):
    """torch's default: every weight and bias U(-1/√H, 1/√H) (already done by the layer)."""


def init_orthogonal(rnn):
    """W_hh orthogonal, one block per gate (Saxe et al. 2014); the rest stays default."""
    H = rnn.hidden_size
    with torch.no_grad():
        for block in rnn.weight_hh_l0.split(H, dim=0):       # (H, H) per gate
            nn.init.orthogonal_(block)


def init_identity(rnn):
    """IRNN (Le et al. 2015): W_hh = I, biases 0, W_ih ~ N(0, 0.001²)."""
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(torch.eye(rnn.hidden_size))
        nn.init.normal_(rnn.weight_ih_l0, std=1e-3)
        rnn.bias_ih_l0.zero_()
        rnn.bias_hh_l0.zero_()


INITS = {"default": init_default, "orthogonal": init_orthogonal, "identity": init_identity}


def valid(cell, init):
    """Identity init is the IRNN recipe: ReLU RNN only; orthogonal needs a matrix W_hh (IndRNN's
    is a vector)."""
    if init == "orthogonal":
        return len(registry.get(cell).param_shapes(1, 1)["weight_hh"]) == 2
    return init != "identity" or cell == "rnn-relu"


@dataclass
class RunConfig:
    task: str = "adding"
    lag: int = 100
    cell: str = "lstm"
    init: str = "default"
    clip: float = 1.0           # max global gradient norm (clip_grad_norm_); 0: no clipping
    gain: float = 1.0           # W_hh is multiplied by this after the init: > 1 for "large"
    hidden: int = 64
    batch: int = 32
    steps: int = 2000
    lr: float = 1e-3
    optimizer: str = "adam"     # adam | sgd
    eval_every: int = 100
    test_size: int = 500
    copy_symbols: int = 10
    seed: int = 0

    def __post_init__(self):
        for field, value, allowed in (("task", self.task, TASKS), ("cell", self.cell, CELLS),
                                      ("init", self.init, INITS),
                                      ("optimizer", self.optimizer, ("adam", "sgd"))):
            if value not in allowed:
                raise ValueError(f"{field} must be one of {sorted(allowed)}, got {value!r}")
        if not valid(self.cell, self.init):
            why = "is for rnn-relu only" if self.init == "identity" else "needs a matrix W_hh"
            raise ValueError(f"init {self.init!r} {why}, got cell {self.cell!r}")
        if self.lag < 2 or self.steps < 1 or self.eval_every < 1 or self.clip < 0:
            raise ValueError(f"need lag >= 2, steps >= 1, eval_every >= 1, clip >= 0; got "
                             f"{self.lag}, {self.steps}, {self.eval_every}, {self.clip}")

    @property
    def name(self):
        gain = f"-gain{_exact(self.gain)}" if self.gain != 1 else ""
        return f"{self.cell}-{self.init}{gain}-clip{_exact(self.clip)}"


def _exact(x):
    """``x`` as short as it reads back: 1 and 0.5 as before, 1.0000001 whole (its 6 digits
    named the same file as 1's)."""
    return f"{x:g}" if float(f"{x:g}") == x else repr(float(x))


class GradflowNet(nn.Module):
    """One recurrent layer and a linear read-out: at the last step (adding) or every step (copy)."""

    def __init__(self, cfg):
        super().__init__()
        spec = task_spec(cfg.task, cfg.lag)
        self.per_step = spec.per_step
        self.rnn = CELLS[cfg.cell](spec.input_size, cfg.hidden)
        INITS[cfg.init](self.rnn)
        with torch.no_grad():
            self.rnn.weight_hh_l0.mul_(cfg.gain)
        self.head = nn.Linear(cfg.hidden, spec.output_size)

    def forward(self, x):                     # x: (T, B, I)
        out, _ = self.rnn(x)                  # (T, B, H)
        return self.head(out if self.per_step else out[-1])   # (T, B, C) or (B, 1)


def make_batch(cfg, B, generator):
    if cfg.task == "copy":
        return TASKS["copy"](cfg.lag, B, generator, K=cfg.copy_symbols)
    return TASKS["adding"](cfg.lag, B, generator)


def loss_of(cfg, pred, y):
    if cfg.task == "copy":
        return nn.functional.cross_entropy(pred.flatten(0, 1), y.flatten())
    return nn.functional.mse_loss(pred, y)


@torch.no_grad()
def score(cfg, model, test):
    """(score, solved): test MSE for adding, accuracy on the K recalled symbols for copy."""
    x, y = test
    pred = model(x)
    if cfg.task == "copy":
        K = cfg.copy_symbols
        acc = (pred[-K:].argmax(-1) == y[-K:]).float().mean().item()
        return acc, acc > SOLVED_ACCURACY
    mse = nn.functional.mse_loss(pred, y).item()
    return mse, mse < SOLVED_MSE


def gradient_profile(cfg, model, batch):
    """||dL/dh_t|| (and ||dL/dc_t||) on one batch, listed by distance d = T_total-1-t from the end.

    For copy memory L is the loss on the K recalled symbols only, so that beyond d = K-1 the
    profile is the recall error travelling back alone (the blank steps' own loss left out).
    """
    x, y = batch
    model.zero_grad(set_to_none=True)
    with rnnkit.record_gradients(model) as rec:
        pred = model(x)
        if cfg.task == "copy":
            K = cfg.copy_symbols
            pred, y = pred[-K:], y[-K:]
        loss_of(cfg, pred, y).backward()
    model.zero_grad(set_to_none=True)
    # the cell's first state is its output, whatever a cell of one's own names it: "h" here
    # (a later state named "h" keeps its number: it overwrote the output's profile)
    return {("h" if i == 0 else f"{k} (state {i + 1})" if k == "h" else k): v.flip(0).tolist()
            for i, (k, v) in enumerate(rec.norms["rnn.l0"].items())}


def decay_skip(cfg):
    """First distance used in the decay fit: past the read-out (adding) or the recall window (copy)."""
    return cfg.copy_symbols if cfg.task == "copy" else 1


def fit_decay(norms, skip=1):
    """Per-step factor ρ from a least-squares fit log||δ_{T-1-d}|| = a + d·log ρ, over d >= skip.

    d = 0 is skipped by default: there δ is the read-out's gradient alone. Zero or non-finite norms
    are left out; returns nan when fewer than two points remain, and 0 where every norm from
    ``skip`` on is exactly zero (the gradient vanished entirely: dead ReLUs).
    """
    rest = norms[skip:]
    if len(rest) >= 1 and all(n == 0 for n in rest) and any(n > 0 for n in norms[:skip]):
        return 0.0
    pts = [(d, math.log(n)) for d, n in enumerate(norms) if d >= skip and n > 0 and math.isfinite(n)]
    if len(pts) < 2:
        return math.nan
    n = len(pts)
    md = sum(d for d, _ in pts) / n
    ml = sum(v for _, v in pts) / n
    var = sum((d - md) ** 2 for d, _ in pts)
    slope = sum((d - md) * (v - ml) for d, v in pts) / var
    return math.exp(slope)


def make_optimizer(cfg, params):
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9)
    return torch.optim.Adam(params, lr=cfg.lr)


def run(cfg, log=None):
    """Train one configuration; stops early once solved or diverged. Returns a plain-data record."""
    torch.manual_seed(cfg.seed)
    model = GradflowNet(cfg)
    opt = make_optimizer(cfg, model.parameters())
    train_gen = torch.Generator().manual_seed(cfg.seed)
    test = make_batch(cfg, cfg.test_size, torch.Generator().manual_seed(10_000 + cfg.seed))
    probe = (test[0][:, :64], test[1][..., :64, :] if cfg.task == "adding" else test[1][:, :64])
    profile0 = gradient_profile(cfg, model, probe)
    first, solved = score(cfg, model, test)
    curve = [{"step": 0, "train_loss": math.nan, "score": first, "grad_norm": math.nan}]
    nonfinite, solved_step, t0, losses, norms = 0, None, time.perf_counter(), [], []
    max_norm = cfg.clip or math.inf
    for step in range(1, cfg.steps + 1):
        x, y = make_batch(cfg, cfg.batch, train_gen)
        loss = loss_of(cfg, model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = clip_gradients(model.parameters(), max_norm)              # before clipping
        if math.isfinite(norm) and math.isfinite(loss.item()):
            opt.step()
            losses.append(loss.item())
            norms.append(norm)
        else:
            nonfinite += 1
        if step % cfg.eval_every == 0 or step == cfg.steps or nonfinite >= MAX_NONFINITE:
            s, solved = score(cfg, model, test)
            curve.append({"step": step, "train_loss": _mean(losses), "score": s,
                          "grad_norm": max(norms, default=math.nan)})
            losses, norms = [], []
            if log:
                log(f"  {cfg.name:32s} step {step:5d}  {_metric(cfg)} {s:.4f}  "
                    f"grad norm {curve[-1]['grad_norm']:.3g}  non-finite {nonfinite}")
            if solved:
                solved_step = step
                break
            if nonfinite >= MAX_NONFINITE:
                break
    profile1 = gradient_profile(cfg, model, probe)
    return {"config": asdict(cfg), "name": cfg.name, "curve": curve, "solved_step": solved_step,
            "final_score": curve[-1]["score"], "steps_run": curve[-1]["step"],
            "nonfinite_steps": nonfinite, "diverged": nonfinite >= MAX_NONFINITE,
            "max_grad_norm": max((c["grad_norm"] for c in curve[1:] if math.isfinite(c["grad_norm"])),
                                 default=math.nan),
            "profile_init": profile0, "profile_final": profile1,
            "decay_init": fit_decay(profile0["h"], decay_skip(cfg)),
            "decay_final": fit_decay(profile1["h"], decay_skip(cfg)),
            "seconds": round(time.perf_counter() - t0, 1)}


def _mean(xs):
    return sum(xs) / len(xs) if xs else math.nan


def _metric(cfg):
    return "acc" if cfg.task == "copy" else "mse"


# ---------------------------------------------------------------- the grid
@dataclass
class Preset:
    """A cell × init × clipping grid, run for every task and lag, plus the explosion study: the
    relu RNN with W_hh = gain·I trained by SGD with and without clipping (Adam's per-weight step
    normalisation hides explosions, so that study uses plain SGD with momentum, as Pascanu et al.)."""
    cells: tuple = DEFAULT_CELLS
    inits: tuple = ("default",)
    clips: tuple = (1.0,)
    steps: int = 800
    hidden: int = 64
    batch: int = 32
    lr: float = 1e-2
    eval_every: int = 50
    test_size: int = 500
    explode_gain: float = 1.5     # 0: no explosion study
    explode_lr: float = 1e-2
    copy_symbols: int = 10
    seed: int = 0


PRESETS = {
    "quick": Preset(),
    "full": Preset(inits=("default", "orthogonal", "identity"), steps=3000, eval_every=100,
                   test_size=1000),
}


def grid(preset, tasks, lags):
    """The RunConfigs of a preset for the given tasks and lags, in the order they run."""
    p = preset
    common = dict(hidden=p.hidden, batch=p.batch, steps=p.steps, eval_every=p.eval_every,
                  test_size=p.test_size, copy_symbols=p.copy_symbols, seed=p.seed)
    out = []
    for task in tasks:
        for lag in lags:
            for cell in p.cells:
                for init in p.inits:
                    for clip in p.clips:
                        if valid(cell, init):
                            out.append(RunConfig(task, lag, cell, init, clip, lr=p.lr, **common))
            if p.explode_gain and "rnn-relu" in p.cells:
                for clip in (0.0, 1.0):
                    out.append(RunConfig(task, lag, "rnn-relu", "identity", clip, p.explode_gain,
                                         lr=p.explode_lr, optimizer="sgd", **common))
    seen, once = set(), []              # a task, lag, cell or clip given twice is one run
    for cfg in out:
        key = tuple(sorted(asdict(cfg).items()))
        if key not in seen:
            seen.add(key)
            once.append(cfg)
    return once


def run_grid(configs, out_dir, log=print, training=None):
    """Run every config not already saved under out_dir (same config); returns all the records.
    A folder holding another setting's run (there, or any run of other SHARED settings) is
    refused before any run is trained; ``training()`` is called once, before the first run
    trained (none: not called)."""
    mine = {k: asdict(configs[0])[k] for k in SHARED} if configs else {}
    records = {path: read_record(path)                         # (None: damaged, trained again)
               for path in sorted(Path(out_dir).glob("*/T*/*.json"))}   # every command's runs
    for path, record in records.items():
        if record is not None and configs:
            refuse_other(path, {k: record["config"].get(k) for k in SHARED}, mine)
    saved = {}
    for cfg in configs:
        path = result_path(Path(out_dir), cfg)
        saved[path] = records.get(path)
        if saved[path] is not None:                            # never replaced
            refuse_other(path, saved[path]["config"], asdict(cfg))
    results = []
    for i, cfg in enumerate(configs, 1):
        path = result_path(out_dir, cfg)
        if saved[path] is not None:
            results.append(saved[path])
            continue
        if training is not None:
            training()
            training = None
        log(f"[{i}/{len(configs)}] {cfg.task} T={cfg.lag} {cfg.name} ({cfg.optimizer})")
        r = run(cfg, log=log)
        log(f"  -> {'solved at step ' + str(r['solved_step']) if r['solved_step'] else 'not solved'}"
            f", final {r['final_score']:.4g}, ρ at init {r['decay_init']:.3f}, {r['seconds']} s")
        text = json_text(r).encode()   # NaN (step 0's loss, no fit) as null: strict JSON
        atomic_write(path, lambda f: f.write(text))
        results.append(r)
    return results
