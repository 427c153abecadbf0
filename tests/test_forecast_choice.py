"""The forecast's choice of transform, baseline and linear part (rnnkit.tasks.forecast_choice):
made on folds before the test part, window baselines as linear maps, the short-series rule."""
import numpy as np
import pytest

from rnnkit.models.smoothing import start_length


def test_choice_is_made_on_folds_before_the_test_part():
    """Candidates are scored on three folds (the validation part and the two before it), not on
    the validation part alone: a seasonal series whose validation part happens to be flat keeps a
    seasonal forecast, and a random walk gets one without a season."""
    from rnnkit.tasks.forecast_choice import baseline_errors, choose, folds
    rng = np.random.default_rng(0)
    t = np.arange(240)
    season = 20 * np.sin(2 * np.pi * t / 12) * ~((t >= 192) & (t < 216))    # flat in validation
    seasonal = (100 + season + rng.normal(0, 1, 240))[:, None]
    walk = (500 + np.cumsum(rng.normal(0, 10, 240)))[:, None]
    split = (192, 216)
    assert folds(split, 24, 12, 12) == [(192, 216), (168, 192), (144, 168)]
    assert folds((60, 72), 24, 12, 12) == [(60, 72)]    # no room for more: the validation part
    errs = baseline_errors(seasonal, split[1], 24, 12, 12, ["last", "seasonal"])
    assert errs["seasonal"] < errs["last"]
    _, base, smooth, _, note = choose(seasonal, split, 24, 12, 12)
    assert base == "seasonal" or (base == "ets" and smooth[0][4] == 1)
    assert "MAE over 3 fold(s) (39 origins) before the test part" in note
    _, base, smooth, _, _ = choose(walk, split, 24, 12, 12)
    assert base == "last" or (base == "ets" and smooth[0][4] == 0)
    assert choose(seasonal, split, 24, 12, 12, baseline="last")[1] == "last"   # given: kept
    assert not choose(seasonal, split, 24, 12, 12, linear=False)[3][0].any()   # no linear part


@pytest.mark.parametrize("baseline", ["last", "seasonal", "mean", "drift", "change"])
def test_every_window_baseline_is_a_linear_map_of_the_relative_window(baseline):
    """What makes the average of candidates one model: each window baseline's forecast is the
    window's last value plus base_map applied to the window relative to it (two variables)."""
    from rnnkit.tasks.forecast_choice import base_forecast, base_map, features
    rng = np.random.default_rng(1)
    z = np.cumsum(rng.normal(size=(80, 2)), 0)
    W, K, m, origins = 24, 6, 12, [30, 41, 77]
    direct = base_forecast(z, origins, K, m, baseline, W=W)                   # (n, K, F)
    if baseline == "mean":
        np.testing.assert_allclose(direct[1, 3], z[17:41].mean(0))
    if baseline == "drift":
        np.testing.assert_allclose(direct[2, 1], z[76] + 2 * (z[76] - z[53]) / 23)
    if baseline == "change":   # one season back fits the window (m 12, W 24): h = 3 from 30
        np.testing.assert_allclose(direct[0, 2], z[29] + z[29 + 3 - 12] - z[29 - 12])
    mapped = (features(z, origins, W)[:, :-1] @ base_map(baseline, W, K, m, 2).T)
    np.testing.assert_allclose(direct, z[np.array(origins) - 1][:, None] + mapped.reshape(3, K, 2),
                               atol=1e-9)


def test_short_folds_take_the_best_candidate_without_a_ridge_part():
    """Where the folds hold fewer origins than the horizon (a short yearly series, one validation
    origin), no ridge fit is chosen: the window baseline or smoothing with the lowest error from
    every origin before the validation part's end, alone. Here white noise: the window mean."""
    from rnnkit.tasks.forecast_choice import choose, untuned
    rng = np.random.default_rng(4)
    y = 10 + rng.normal(0, 1, (60, 1))
    split, W, K = (36, 48), 12, 12
    _, base, smooth, (weight, bias), note = choose(y, split, W, K, 1)
    assert "MAE over 1 fold(s) (1 origins)" in note and "fewer fold origins" in note
    chosen = note.split("forecast: the mean of ")[1].split(";")[0]
    assert chosen.endswith("/-") and "," not in chosen and not bias.any()   # one, no ridge
    if base == "ets":   # a level smoothed over many steps (a long mean)
        assert smooth[0][0] <= 0.1 and smooth[0][3] == 0 and smooth[1] == 1
    else:               # the window's mean
        assert chosen.endswith("/mean/-") and np.allclose(weight, 1 / W)
    keys, count = untuned(y, split, W, K, 1, [("none", "last", None), ("none", "mean", None)])
    assert keys[0] == ("none", "mean", None) and count == 48 - K - W + 1


def test_short_series_scores_the_smoothing_out_of_sample(monkeypatch):
    """The short-series ranking refits the smoothing before each origin on the history before
    it alone: every fit's one-step origins end just before the origin it forecasts from, and
    each scored origin gets its own fit. --short folds (SHORT) ranks by the folds instead."""
    from rnnkit.tasks import forecast_choice
    rng = np.random.default_rng(5)
    y = 10 + np.cumsum(rng.normal(0, 1, (60, 1)), 0)
    split, W, K = (36, 48), 12, 12
    calls = []
    fit = forecast_choice.fit_each_origin

    def spy(z, origins, first, m, seasonal):   # each origin's fit: the steps [first, origin)
        calls.append((list(origins), first))
        return fit(z, origins, first, m, seasonal)
    monkeypatch.setattr(forecast_choice, "fit_each_origin", spy)
    keys, count = forecast_choice.untuned(y, split, W, K, 1, [("none", "ets", None),
                                                                ("none", "last", None)])
    assert calls == [(list(range(W, 48 - K + 1)), start_length(60, 1))]
    assert count == len(calls[0][0])
    monkeypatch.setattr(forecast_choice, "SHORT", "folds")
    note = forecast_choice.choose(y, split, W, K, 1)[4]
    assert "MAE over 1 fold(s) (1 origins)" in note and "fewer fold origins" not in note


def test_noise_around_a_level_is_forecast_by_the_window_mean():
    """White noise around a constant: the window's mean is among the candidates and among the
    ones averaged (the last value is not)."""
    from rnnkit.tasks.forecast_choice import choose
    rng = np.random.default_rng(3)
    y = (20 + rng.normal(0, 1, (200, 1)))
    _, base, _, _, note = choose(y, (160, 180), 24, 6, 1)
    chosen = note.split("forecast: the mean of ")[1].split(";")[0].split(", ")
    assert "none/mean/-" in chosen and "none/last/-" not in chosen


def test_the_smoothing_takes_part_where_the_chosen_candidates_have_none():
    """Where none of the candidates averaged is a smoothing, the best smoothing without a ridge
    part under the same transform joins with weight SMOOTHING and the others share the rest:
    on a short random walk the window mean is chosen, and the model is 0.7 × the mean's map plus
    0.3 × the smoothing (its share), no ridge part. --no-linear keeps the best alone of what a
    model without the linear part holds: the last value or the season."""
    from rnnkit.tasks.forecast_choice import SMOOTHING, base_map, choose, with_smoothing
    assert SMOOTHING == 0.3
    mean, ets = ("log", "mean", None), ("log", "ets", None)
    ranked = [mean, ("none", "ets", None), ("log", "ets", 1.0), ets]
    final = {k: None for k in ranked}
    assert with_smoothing([mean], ranked, final) == ([mean, ets], [0.7, 0.3])
    assert with_smoothing([mean], ranked, {mean: None}) == ([mean], [1.0])   # none fitted
    assert with_smoothing([ets, mean], ranked, final) == ([ets, mean], [0.5, 0.5])
    rng = np.random.default_rng(1)
    y = 10 + np.cumsum(rng.normal(0, 1, (60, 1)), 0)
    W, K = 12, 12
    _, base, smooth, (weight, bias), note = choose(y, (36, 48), W, K, 1)
    assert "forecast: 0.7 log/mean/- + 0.3 log/ets/-;" in note and "fewer fold origins" in note
    assert base == "last" and smooth[1] == pytest.approx(0.3) and not bias.any()
    np.testing.assert_allclose(weight, 0.7 * base_map("mean", W, K, 1, 1))
    _, base, smooth, (weight, _), note = choose(y, (36, 48), W, K, 1, linear=False)
    assert "forecast: the mean of log/last/-;" in note and smooth is None   # (a model without
    assert base == "last" and not weight.any()        # the linear part cannot hold the mean)


def test_the_change_baseline_averages_the_last_three_seasons_changes():
    """Quarterly, window 24, horizon 6: step h moves the last value as it moved from k seasons
    before the last step to k seasons before step h, averaged over the nearest three k with
    k m >= h (h 1: k 1, 2, 3; h 5: k 2, 3, 4). A candidate only with a season the window holds
    before the horizon's last step."""
    from rnnkit.tasks.forecast_choice import CHANGE_SEASONS, candidates, change_map
    assert CHANGE_SEASONS == 3
    B = change_map(24, 6, 4)
    z = np.arange(24.0) ** 2 - 23.0 ** 2           # a window relative to its last value
    for h, ks in ((1, (1, 2, 3)), (5, (2, 3, 4))):
        want = np.mean([z[23 + h - 4 * k] - z[23 - 4 * k] for k in ks])
        assert B[h - 1] @ z == pytest.approx(want)
    np.testing.assert_allclose(B.sum(1), 0)         # a constant window: the last value
    y = np.ones((100, 1))
    base = [b for _, b in candidates(y, 24, 4, "none", "auto", K=6)]
    assert "change" in base
    assert "change" not in [b for _, b in candidates(y, 24, 1, "none", "auto", K=6)]
    assert "change" not in [b for _, b in candidates(y, 12, 12, "none", "auto", K=12)]
