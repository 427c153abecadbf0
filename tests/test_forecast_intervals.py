"""The forecaster's prediction intervals: the split-conformal ranks, coverage on a noisy series
where the truth is known, multiplicative bounds on the log scale, the CLI's columns and flag,
and the figures `rnnkit eval` and training write."""
import json
import math

import numpy as np
import pytest

from rnnkit.cli.main import main
from rnnkit.models.forecaster import ForecasterConfig
from rnnkit.tasks.forecast import ForecastData, build_forecast_task
from rnnkit.tasks.forecast_scores import interval_offsets, interval_scores
from rnnkit.tasks.forecast_trained import Forecast, evaluate_file
from test_forecast_task import write   # a monthly series file


def noisy_season(n, seed=0, sd=1.0):
    """A monthly season plus independent N(0, sd²) noise: the best forecast is the season, and
    its errors are the noise, so an 80% interval holds about 80% of the truth."""
    rng = np.random.default_rng(seed)
    return [50 + 5 * math.sin(2 * math.pi * t / 12) + sd * rng.standard_normal() for t in range(n)]


def build(path, **data):
    return build_forecast_task(ForecastData(data=str(path), **{"window": 24, "horizon": 6, **data}),
                               ForecasterConfig(layers=1, hidden=8), log=lambda *a: None)


def test_offsets_are_the_conformal_order_statistics():
    errors = [np.arange(1.0, 100.0)[::-1, None]] * 2          # 99 errors, 1..99, two steps
    lo, hi = interval_offsets(errors, (80, 95))
    # 80%: the ⌈100·0.9⌉ = 90th of 99 and its mirror, the 10th; 95%: the 98th and the 2nd
    assert lo[:, 0, 0].tolist() == [10.0, 2.0] and hi[:, 0, 0].tolist() == [90.0, 98.0]
    # 20 errors: too few for the 95% rank, so mean ± t(0.975, 19) · sd · sqrt(1 + 1/20)
    e = np.arange(20.0)
    lo, hi = interval_offsets([e[:, None]], (80, 95))
    assert hi[0, 0, 0] == 18.0             # the 80% rank: the 19th of 0, 1, ... 19
    half = 2.0930 * e.std(ddof=1) * (1 + 1 / 20) ** 0.5
    np.testing.assert_allclose([lo[1, 0, 0], hi[1, 0, 0]], [e.mean() - half, e.mean() + half],
                               rtol=1e-4)
    lo, hi = interval_offsets([e[:4, None]], (80, 95))        # 4 errors: no interval
    assert np.isnan(lo).all() and np.isnan(hi).all()


def test_a_wider_level_holds_the_narrower_interval():
    """With 9-38 errors the 80% interval is an order statistic and the 95% one a normal
    interval; on skewed errors the two cross, and the 95% interval is widened to hold the 80%
    one (a user reading lo95 > lo80 would rightly call it a bug)."""
    e = np.array([0.0] * 17 + [10.0] * 3)                    # 20 errors, a long right tail
    lo, hi = interval_offsets([e[:, None]], (80, 95))
    assert hi[0, 0, 0] == 10.0            # the 80% rank: the 19th of 20
    half = 2.0930 * e.std(ddof=1) * (1 + 1 / 20) ** 0.5
    assert e.mean() + half < 10.0         # the normal 95% bound alone would lie inside it
    assert hi[1, 0, 0] == 10.0 and lo[1, 0, 0] == pytest.approx(e.mean() - half, rel=1e-4)
    assert (lo[1] <= lo[0]).all() and (hi[1] >= hi[0]).all()


def test_interval_scores_count_coverage_and_penalise_misses():
    truth = np.array([[[0.0], [2.0]]])                        # (B 1, K 2, F 1)
    lo, hi = np.full((1, 1, 2, 1), -1.0), np.full((1, 1, 2, 1), 1.0)
    s = interval_scores(lo, hi, truth, scale=2.0, levels=(80,), prefix="x")
    # width 2 at both steps; the second misses by 1: 2 + 2/0.2 · 1 = 12; mean 7, over scale 2
    assert s == {"x_coverage_80": 0.5, "x_msis_80": pytest.approx(3.5)}
    lo[0, 0, 0] = np.nan                                      # a step without an interval
    assert interval_scores(lo, hi, truth, 1.0, (80,), "x") == {}


def test_intervals_cover_about_their_level_on_noise_around_a_season(tmp_path):
    task = build(write(tmp_path, "noisy.csv", noisy_season(600)), test_fraction=0.3)
    m = task.test_metrics()
    assert 0.70 <= m["test_coverage_80"] <= 0.90 and 0.88 <= m["test_coverage_95"] <= 0.99
    f = Forecast.from_task(task)
    pred, lo, hi = f.intervals(f.y, [task.val_end], 6)
    width80, width95 = (hi - lo)[:, 0, :, 0]
    assert (width95 > width80).all()
    # the noise's own 80% and 95% ranges are 2.56 and 3.92 wide
    assert 1.8 < width80.mean() < 3.4 and 3.0 < width95.mean() < 5.2
    # every past origin up to 500, evenly spaced; fewer (>= 40) for a long forecast
    z = f.standardised(f.y)
    assert len(f.past_errors(z, 300, 1)[0]) == 300 - 24
    assert 250 <= len(f.past_errors(z, 600, 1)[0]) <= 500
    assert 40 <= len(f.past_errors(z, 600, 1000)[0]) <= 50


def test_past_errors_refit_the_smoothing_before_each_origin(tmp_path, monkeypatch):
    """The errors that set the intervals are out of sample for the smoothing, as the forecasts
    they are for: every past origin gets the parameters fitted on the history before it (the
    one-pass refit), not the training part's fit; --no-refit keeps the stored fit."""
    from rnnkit.tasks import forecast_trained
    seen = []
    refit = forecast_trained.fit_each_origin

    def spy(z, origins, first, m, seasonal):
        seen.extend(origins)
        return refit(z, origins, first, m, seasonal)
    monkeypatch.setattr(forecast_trained, "fit_each_origin", spy)
    task = build(write(tmp_path, "noisy.csv", noisy_season(240)), baseline="ets")
    f = Forecast.from_task(task)
    errors = f.past_errors(f.standardised(f.y), task.val_end, 6)
    assert len(errors[0]) > 100 and min(seen) < task.train_end   # the training part's origins
    seen.clear()
    task = build_forecast_task(ForecastData(data=str(tmp_path / "noisy.csv"), window=24,
                                            horizon=6, baseline="ets"),
                               ForecasterConfig(layers=1, hidden=8, refit=False),
                               log=lambda *a: None)
    f = Forecast.from_task(task)
    f.past_errors(f.standardised(f.y), task.val_end, 6)
    assert not seen


def test_log_scale_bounds_are_positive_and_grow_with_the_level(tmp_path):
    rng = np.random.default_rng(1)
    values = [100 * math.exp(0.01 * t) * (1 + 0.2 * math.sin(2 * math.pi * t / 12))
              * math.exp(0.05 * rng.standard_normal()) for t in range(240)]
    task = build(write(tmp_path, "air.csv", values), transform="log")
    f = Forecast.from_task(task)
    pred, lo, hi = f.intervals(f.y, [task.val_end], 6)
    assert (lo > 0).all() and (lo[0] > lo[1]).all() and (hi[0] < hi[1]).all()
    assert (lo[1] < pred).all() and (pred < hi[1]).all()
    # multiplicative: the bounds' ratio to the forecast is the same for a series ten times larger
    big = build(write(tmp_path, "big.csv", [10 * v for v in values]), transform="log")
    g = Forecast.from_task(big)
    _, lo10, _ = g.intervals(g.y, [big.val_end], 6)
    np.testing.assert_allclose(lo10 / (10 * lo), 1.0, rtol=1e-3)


def test_cli_prints_bounds_and_eval_scores_them(tmp_path, capsys):
    values = noisy_season(420, seed=2)
    path = write(tmp_path, "s.csv", values[:360])
    run = tmp_path / "run"
    assert main(["train", "forecast", "--data", str(path), "--out", str(run), "--window", "24",
                 "--horizon", "6", "--max-steps", "2", "--eval-every", "2", "--quiet"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 < metrics["test_coverage_80"] <= 1 and metrics["test_msis_95"] > 0
    capsys.readouterr()
    assert main(["forecast", str(run), "--steps", "4", "--intervals", "80"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == ["step", "passengers_forecast", "passengers_lo80",
                                    "passengers_hi80", "passengers_truth"]
    for row in lines[1:5]:
        pred, lo, hi = map(float, row.split("\t")[1:4])
        assert lo < pred < hi
    assert main(["forecast", str(run), "--steps", "2", "--intervals", "none"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "step\tpassengers_forecast\tpassengers_truth"
    with pytest.raises(SystemExit) as exit_:
        main(["forecast", str(run), "--intervals", "80,100"])
    assert exit_.value.code == 2
    assert "each level must lie in (0, 100), got 100" in capsys.readouterr().err
    more = write(tmp_path, "more.csv", values[360:], start=360)
    scores = evaluate_file(run, more)
    assert 0.5 <= scores["coverage_80"] <= 1 and scores["coverage_95"] >= scores["coverage_80"]


def test_python_api_refuses_bad_origins_steps_levels_and_series(tmp_path):
    """Forecast's methods say what they expected: an origin the window cannot lie before, no
    origins, no steps, a level outside (0, 100), a y of other variables; a fraction meant as
    a percent is a warning; integer origins of any kind and a 1-D series of one variable run."""
    task = build(write(tmp_path, "noisy.csv", noisy_season(120)))
    f = Forecast.from_task(task)
    for call, said in [(lambda: f.predict(f.y, [10], 3), "must lie in [24, 120]"),
                       (lambda: f.intervals(f.y, [10, 100], 3), "must lie in [24, 120]"),
                       (lambda: f.predict(f.y, [121], 3), "got 121"),
                       (lambda: f.intervals(f.y, [], 3), "origins is empty"),
                       (lambda: f.predict(f.y, [2.5], 3), "whole numbers"),
                       (lambda: f.forecast(0), "steps must be a count"),
                       (lambda: f.forecast(-1), "steps must be a count"),
                       (lambda: f.intervals(f.y, [100], 3, levels=(150,)), "in (0, 100), got 150"),
                       (lambda: f.intervals(f.y, [100], 3, levels=(-5,)), "got -5"),
                       (lambda: f.intervals(f.y, [100], 3, levels="x"), "percents such as"),
                       (lambda: f.predict(np.zeros((120, 2)), [100], 3), "(steps, 1)")]:
        with pytest.raises(ValueError, match=said.replace("(", r"\(").replace(")", r"\)")
                           .replace("[", r"\[").replace("]", r"\]")):
            call()
    with pytest.warns(UserWarning, match="levels are percents: 0.8 asks for 0.8% intervals"):
        f.intervals(f.y, [100], 3, levels=(0.8,))
    want = f.predict(f.y, [100], 3)
    assert np.array_equal(f.predict(f.y[:, 0], np.array([100]), 3), want)   # 1-D y, numpy origin
    import torch
    assert np.array_equal(f.intervals(f.y, torch.tensor([100]), 3)[0], want)
