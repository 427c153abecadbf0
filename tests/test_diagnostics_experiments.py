"""Gradient-flow plumbing on a tiny grid: runs, records, decay fit, plots, report, CLI."""
import json
import math

import pytest
import torch

from rnnkit.cli.main import main
from rnnkit.diagnostics.experiments import (PRESETS, GradflowNet, RunConfig, fit_decay,
                                            gradient_profile, grid, run, run_grid)
from rnnkit.diagnostics.tasks import adding_batch

TINY = dict(hidden=8, batch=4, steps=6, eval_every=3, test_size=8)


def test_fit_decay_recovers_a_geometric_profile():
    norms = [3.0 * 0.9 ** d for d in range(30)]
    assert fit_decay(norms) == pytest.approx(0.9)
    assert fit_decay([5.0] + [2.0 * 1.1 ** d for d in range(1, 20)]) == pytest.approx(1.1)
    assert math.isnan(fit_decay([1.0, 0.0, float("nan")]))
    assert fit_decay([0.061, 0.0, 0.0, 0.0]) == 0.0      # vanished entirely (dead ReLUs), not nan
    assert math.isnan(fit_decay([0.0, 0.0, 0.0]))        # no gradient at all


def test_identity_init_and_gain():
    net = GradflowNet(RunConfig(cell="rnn-relu", init="identity", gain=1.5, lag=5, hidden=6))
    torch.testing.assert_close(net.rnn.weight_hh_l0, 1.5 * torch.eye(6))
    with pytest.raises(ValueError, match="rnn-relu only"):
        RunConfig(cell="lstm", init="identity")
    with pytest.raises(ValueError, match="cell must be one of"):
        RunConfig(cell="transformer")


def test_gradient_profile_of_a_linear_rnn_decays_at_its_weight():
    # relu RNN, W_hh = g·I, W_ih >= 0 and inputs >= 0: every unit active, so δ_{t-1} = g·δ_t exactly
    cfg = RunConfig(task="adding", lag=12, cell="rnn-relu", init="identity", gain=0.8, hidden=6)
    net = GradflowNet(cfg)
    with torch.no_grad():
        net.rnn.weight_ih_l0.abs_().add_(0.1)
    x, y = adding_batch(12, 4, torch.Generator().manual_seed(0))
    h = gradient_profile(cfg, net, (x, y))["h"]
    assert len(h) == 12
    for d in range(1, 11):
        assert h[d + 1] / h[d] == pytest.approx(0.8, rel=1e-4)
    assert fit_decay(h) == pytest.approx(0.8, rel=1e-4)


@pytest.mark.parametrize("task", ["adding", "copy"])
def test_run_records_curves_and_profiles(task):
    r = run(RunConfig(task=task, lag=5, cell="lstm", copy_symbols=2, **TINY))
    assert [c["step"] for c in r["curve"]] == [0, 3, 6]
    assert set(r["profile_init"]) == {"h", "c"}
    assert r["solved_step"] is None and not r["diverged"]
    json.dumps(r)                                              # plain data


def test_exploding_run_is_stopped_as_diverged():
    r = run(RunConfig(task="adding", lag=40, cell="rnn-relu", init="identity", gain=3.0, clip=0,
                      optimizer="sgd", lr=10.0, hidden=8, batch=4, steps=60, eval_every=30,
                      test_size=8))
    assert r["diverged"] and r["nonfinite_steps"] == 20 and r["steps_run"] < 60


def test_grid_and_reuse(tmp_path):
    preset = PRESETS["quick"]
    configs = grid(preset, ["adding"], [10, 50])
    names = {c.name for c in configs if c.lag == 10}
    assert names == {"rnn-tanh-default-clip1", "rnn-relu-default-clip1", "lstm-default-clip1",
                     "gru-default-clip1", "rnn-relu-identity-gain1.5-clip0",
                     "rnn-relu-identity-gain1.5-clip1"}
    small = [RunConfig(task="adding", lag=4, cell=c, **TINY) for c in ("rnn-tanh", "gru")]
    lines = []
    first = run_grid(small, tmp_path, log=lines.append)
    n = len(lines)
    again = run_grid(small, tmp_path, log=lines.append)        # saved runs are reused
    assert len(lines) == n and [r["name"] for r in again] == [r["name"] for r in first]
    for path in tmp_path.rglob("*.json"):          # strict JSON: step 0's loss is null, not NaN
        json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{path}: {c}"))
    assert all(math.isnan(r["curve"][0]["train_loss"]) for r in again)   # NaN again when read
    assert [r["final_score"] for r in again] == [r["final_score"] for r in first]


def test_settings_that_differ_in_the_seventh_digit_get_files_of_their_own():
    """--clips 1 1.0000001 trained the first, then refused the second's file as another's."""
    names = [RunConfig(cell="lstm", clip=c, **TINY).name for c in (1, 1.0000001, 0.5)]
    assert names == ["lstm-default-clip1", "lstm-default-clip1.0000001", "lstm-default-clip0.5"]
    gains = [RunConfig(cell="rnn-relu", init="identity", gain=g).name for g in (1.5, 1.0000001)]
    assert gains == ["rnn-relu-identity-gain1.5-clip1", "rnn-relu-identity-gain1.0000001-clip1"]


def test_cli_tiny_grid_writes_report_and_plots(tmp_path, capsys):
    out = tmp_path / "gf"
    args = ["gradflow", "--task", "adding", "copy", "--lags", "4", "--cells", "rnn-tanh",
            "lstm", "--explode-gain", "1.5", "--steps", "4", "--eval-every", "2", "--hidden", "8",
            "--test-size", "8", "--copy-symbols", "2", "--out", str(out), "--quiet"]
    assert main(args) == 0
    report = (out / "report.md").read_text()
    assert report.startswith("# Gradient flow") and "Made by: `rnnkit gradflow --task adding copy" in report
    assert "| lstm-default-clip1 |" in report and "T=4" in report
    for name in ("gradflow_adding_T4.png", "learning_copy_T4.png"):
        assert (out / name).stat().st_size > 1000 and f"]({name})" in report
    assert len(list(out.glob("adding/T4/*.json"))) == 2        # tanh, lstm: no relu, no study
    with pytest.raises(SystemExit):
        main(["gradflow", "--preset", "huge"])


def test_report_only_reads_saved_runs(tmp_path, capsys):
    out = tmp_path / "gf"
    base = ["gradflow", "--lags", "4", "--cells", "gru", "--explode-gain", "0", "--steps", "2",
            "--eval-every", "1", "--hidden", "4", "--test-size", "4", "--out", str(out), "--quiet"]
    assert main(base) == 0
    notes = tmp_path / "notes.md"
    notes.write_text("Seen: something.")
    assert main(["gradflow", "--lags", "4", "--out", str(out), "--quiet", "--report-only",
                 "--notes", str(notes), "--report-dir", str(tmp_path / "r")]) == 0
    report = (tmp_path / "r" / "report.md").read_text()
    assert "    rnnkit gradflow --task adding --lags 4" in report and "Seen: something." in report
    assert "| gru-default-clip1 |" in report
    capsys.readouterr()
    assert main(["gradflow", "--lags", "7", "--out", str(out), "--report-only"]) == 2
    assert "no gradflow runs" in capsys.readouterr().err


def test_a_refused_command_trains_nothing_and_is_not_named_in_the_report(tmp_path, capsys):
    """A command refused for a run of other settings in its folder was logged in commands.txt
    first (the report said it had trained runs), and the runs before the refused one trained."""
    out = tmp_path / "gf"
    base = ["gradflow", "--lags", "4", "--explode-gain", "0", "--eval-every", "1", "--hidden",
            "4", "--test-size", "4", "--out", str(out), "--quiet"]
    assert main([*base, "--cells", "rnn-tanh", "--steps", "2"]) == 0
    logged = (out / "commands.txt").read_text()
    assert main([*base, "--cells", "gru", "rnn-tanh", "--steps", "3"]) == 2   # rnn-tanh: 2 steps
    assert "a run of other settings is saved there" in capsys.readouterr().err
    assert (out / "commands.txt").read_text() == logged
    assert not list(out.glob("adding/T4/gru*.json"))           # refused before gru trained
    assert main([*base, "--cells", "rnn-tanh", "--steps", "2"]) == 0   # nothing to train
    assert (out / "commands.txt").read_text() == logged
    capsys.readouterr()   # a run of its own place, but 3 steps beside 2: one report of both
    assert main([*base, "--cells", "gru", "--steps", "3", "--lags", "5"]) == 2
    assert "(steps 2 where this one has 3); one folder holds one setting's runs" in \
        capsys.readouterr().err
    assert main([*base, "--cells", "gru", "--steps", "2", "--lags", "5"]) == 0   # the same


def test_a_setting_given_twice_is_one_run():
    import dataclasses
    from rnnkit.diagnostics.experiments import PRESETS, grid
    twice = dataclasses.replace(PRESETS["quick"], cells=("gru", "gru"), clips=(1.0, 1.0))
    once = dataclasses.replace(PRESETS["quick"], cells=("gru",), clips=(1.0,))
    assert grid(twice, ["adding", "adding"], [4, 4]) == grid(once, ["adding"], [4])


def test_the_textbook_checks_need_runs_long_enough_to_fail():
    """A tanh RNN that did not solve the adding problem in 2 steps says nothing: the claim
    that it fails is 'too short to tell', not 'confirmed'."""
    from rnnkit.diagnostics.report import MIN_STEPS, checks

    def run(cell, steps, solved=None):
        return {"config": {"task": "adding", "lag": 100, "cell": cell, "steps": steps,
                           "gain": 1.0, "clip": 1.0}, "solved_step": solved}

    (claim, verdict, _), = checks([run("rnn-tanh", 2)])
    assert claim.startswith("tanh RNN fails") and verdict.startswith("too short to tell")
    assert checks([run("rnn-tanh", MIN_STEPS)])[0][1] == "confirmed"
    assert checks([run("gru", 2, solved=1)])[0][1] == "confirmed"      # solving needs no length
    assert checks([run("gru", 2)])[0][1].startswith("too short to tell")

    def relu(clip, steps, final, diverged=False):
        r = run("rnn-relu", steps)
        r["config"].update(gain=1.5, clip=clip, lag=10)
        return {**r, "diverged": diverged, "final_score": final, "max_grad_norm": 1.0,
                "name": f"relu-clip{clip}", "nonfinite_steps": 20 * diverged}
    # 20 steps: the unclipped run diverged, the clipped one learnt nothing yet: 'partly' said
    # more than such runs show
    (_, verdict, _), = checks([relu(0.0, 20, 0.17, True), relu(1.0, 20, 0.17)])
    assert verdict.startswith("too short to tell")
    (_, verdict, _), = checks([relu(0.0, MIN_STEPS, 0.17, True), relu(1.0, MIN_STEPS, 0.17)])
    assert verdict == "partly"


def test_two_runs_of_one_name_get_two_rows():
    """At --explode-gain 1 the explosion study's SGD run is named as the Adam run of the same
    cell and init: the table showed one of them."""
    from rnnkit.diagnostics.report import _table
    def run(optimizer, score):
        return {"name": "rnn-relu-identity-clip1", "solved_step": None, "diverged": False,
                "final_score": score, "config": {"lag": 4, "optimizer": optimizer}}
    rows = _table([run("adam", 0.1), run("sgd", 0.2)], lambda r: f"{r['final_score']}", [4],
                  "run")
    assert rows[2:] == ["| rnn-relu-identity-clip1 | 0.1 |",
                        "| rnn-relu-identity-clip1 (sgd) | 0.2 |"]


def test_a_finite_gradient_past_float32s_norm_is_clipped_not_skipped():
    """torch's clip_grad_norm_ takes the norm in the gradients' float32: elements of 6e31 made
    it inf, and the lab skipped the step as non-finite (a relu RNN at lag 100 'diverged' with
    weights that never moved). The norm is taken in float64 and the step clipped."""
    from rnnkit.train.gradients import clip_gradients   # the trainer's and the lab's
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.tensor([6e31, 8e31, 0.0])
    assert not math.isfinite(float(torch.nn.utils.get_total_norm([p.grad])))   # float32's
    assert clip_gradients([p], 1.0) == pytest.approx(1e32)
    assert p.grad.tolist() == pytest.approx([0.6, 0.8, 0.0])                    # clipped to 1
    q = torch.nn.Parameter(torch.zeros(2))
    q.grad = torch.tensor([3e-25, 4e-25])
    assert clip_gradients([q], math.inf) == pytest.approx(5e-25)


def test_the_gradient_flow_plot_names_a_profile_that_vanished(tmp_path, monkeypatch):
    """A log scale leaves out zeros: a trained run whose gradient vanished entirely has no
    curve, so its legend entry says where it fell to 0."""
    from rnnkit.diagnostics import plots
    shown = []
    monkeypatch.setattr(plots.plt, "close", shown.append)
    run = {"name": "rnn", "decay_init": 0.5,
           "config": {"cell": "rnn", "init": "default", "gain": 1, "clip": 1.0},
           "profile_init": {"h": [1.0, 0.5, 0.25, 0.125]}, "profile_final": {"h": [0.0] * 4}}
    plots.plot_gradient_flow([run], tmp_path / "flow.png", "lag 4")
    labels = [t.get_text() for t in shown[0].axes[0].get_legend().get_texts()]
    assert labels == ["rnn at init (ρ=0.500)", "rnn trained: 0 from d=0"]
    assert (tmp_path / "flow.png").stat().st_size > 0


def test_the_report_says_a_run_that_took_no_step():
    """Every step non-finite: the weights stayed at init, so 'ρ 1.500 → 1.500' read as a
    trained figure."""
    from rnnkit.diagnostics.report import decay_cell
    run = {"decay_init": 1.5, "decay_final": 1.5, "nonfinite_steps": 20, "steps_run": 20}
    assert decay_cell(run) == "1.500 → (no step)"
    assert decay_cell({**run, "nonfinite_steps": 3, "decay_final": 0.9}) == "1.500 → 0.900"
