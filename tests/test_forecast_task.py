"""The forecasting task: transform, baseline and linear part chosen (test_forecast_choice.py)
and restored from the checkpoint, exponential smoothing, own validation/test files,
evaluate_file."""
import json
import math

import numpy as np
import pytest
import torch

from rnnkit.data import DataError
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.tasks.common import train
from rnnkit.tasks.forecast import ForecastData, build_forecast_task
from rnnkit.tasks.forecast_trained import Forecast, evaluate_file
from rnnkit.train import TrainConfig, load_checkpoint


def airline_like(n):
    """Monthly, trend and multiplicative season (AirPassengers-like)."""
    return [100 * math.exp(0.01 * t) * (1 + 0.2 * math.sin(2 * math.pi * t / 12)) for t in range(n)]


def write(tmp_path, name, values, start=0):
    path = tmp_path / name
    rows = [f"{1950 + (start + i) // 12}-{(start + i) % 12 + 1:02d},{v:.4f}"
            for i, v in enumerate(values)]
    path.write_text("month,passengers\n" + "\n".join(rows) + "\n")
    return path


def quick(task, out):
    return train(task, TrainConfig(lr=1e-2, max_steps=6, eval_every=3, warmup_steps=0,
                                   log_every=3), out, quiet=True)


def build(**data):
    return build_forecast_task(ForecastData(**{"window": 24, "horizon": 6, **data}),
                               ForecasterConfig(layers=1, hidden=8), log=lambda *a: None)


def test_log_and_season_chosen_stored_and_restored(tmp_path):
    path = write(tmp_path, "air.csv", airline_like(120))
    task = build(data=str(path))
    assert task.season == 12 and task.transform.kind == "log"
    assert task.model.config.base in ("last", "seasonal", "ets") and task.model.config.period == 12
    metrics = quick(task, tmp_path / "run")
    assert metrics["transform"] == "log" and metrics["baseline"] == task.model.config.base
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["transform"] == {"kind": "log"} and ckpt["season"] == 12
    assert ckpt["model_config"]["base"] == task.model.config.base
    loaded = Forecast.load(tmp_path / "run")
    assert loaded.transform.kind == "log" and loaded.model.config == task.model.config
    np.testing.assert_allclose(loaded.forecast(8), Forecast.from_task(task).forecast(8), rtol=1e-5)
    # the linear part alone forecasts this clean series closely
    assert metrics["test_mase"] < 0.5 * metrics["test_seasonal_naive_mase"]


def test_given_choices_are_kept(tmp_path):
    path = write(tmp_path, "air.csv", airline_like(120))
    task = build(data=str(path), transform="none", baseline="seasonal")
    assert task.transform.kind == "none" and task.model.config.base == "seasonal"
    with pytest.raises(DataError, match="--baseline seasonal needs a season > 1"):
        build(data=str(path), baseline="seasonal", season=1)


@pytest.mark.parametrize("base", ["last", "seasonal"])
@pytest.mark.parametrize("mode", ["direct", "autoregressive"])
def test_untrained_model_starts_at_the_baseline(base, mode):
    """As built (linear part not yet fitted, RNN head at zero) the model is its baseline."""
    model = Forecaster(ForecasterConfig(features=2, horizon=5, mode=mode, layers=1, hidden=8,
                                        base=base, period=4, window=10))
    z = torch.randn(3, 10, 2)                                                 # (B, W, F)
    expected = z[:, -1:].expand(3, 7, 2) if base == "last" else z[:, [6, 7, 8, 9, 6, 7, 8]]
    torch.testing.assert_close(model.forecast(z, 7), expected)


def test_val_and_test_files_continue_the_series(tmp_path):
    y = airline_like(150)
    main = write(tmp_path, "train.csv", y[:100])
    val = write(tmp_path, "val.csv", y[100:125], start=100)
    test = write(tmp_path, "test.csv", y[125:], start=125)
    task = build(data=str(main), val_data=str(val), test_data=str(test))
    assert (task.train_end, task.val_end, len(task.y)) == (100, 125, 150)
    np.testing.assert_allclose(task.y[:, 0], y, rtol=1e-5)
    next_test = write(tmp_path, "next.csv", y[100:125], start=100)
    only_test = build(data=str(main), test_data=str(next_test), val_fraction=0.2)
    assert (only_test.train_end, only_test.val_end, len(only_test.y)) == (80, 100, 125)
    with pytest.raises(DataError, match=r"test.csv:2: '1960-06' comes 26 month\(s\) after the "
                                        r"series' last step '1958-04'"):
        build(data=str(main), test_data=str(test))          # 25 months missing between them
    with pytest.raises(DataError, match=r"next.csv:2: '1958-05' does not come after the series' "
                                        r"last step '1960-05'"):
        build(data=str(main), val_data=str(val), test_data=str(next_test))   # overlaps val
    bad = tmp_path / "bad.csv"
    bad.write_text("month,passengers\n1958-05,1.0\n1958-06,oops\n")
    with pytest.raises(DataError, match=r"bad.csv:3: column 'passengers' holds 'oops'"):
        build(data=str(main), test_data=str(bad))
    other = tmp_path / "other.csv"
    other.write_text("month,riders\n1958-05,1.0\n1958-06,2.0\n")
    with pytest.raises(DataError, match=r"other.csv: columns \['riders'\], expected"):
        build(data=str(main), test_data=str(other))


def test_evaluate_file(tmp_path):
    y = airline_like(150)
    task = build(data=str(write(tmp_path, "air.csv", y[:120])))
    quick(task, tmp_path / "run")
    future = write(tmp_path, "future.csv", y[120:], start=120)
    out = evaluate_file(tmp_path / "run", future)
    assert out["kind"] == "forecast" and out["size"] == 30 and out["file"] == str(future)
    assert out["origins"] == 25.0    # every origin in the file with a full horizon after it
    for k in ("mae", "rmse", "mase", "naive_mae", "naive_mase", "seasonal_naive_mae",
              "seasonal_naive_mase"):
        assert isinstance(out[k], float) and out[k] >= 0
    assert out["mase"] < out["naive_mase"]
    with pytest.raises(DataError, match=r"again.csv:2: '1959-07' does not come after"):
        evaluate_file(tmp_path / "run", write(tmp_path, "again.csv", y[114:150], start=114))
    with pytest.raises(DataError, match=r"later.csv:2: '1961-01' comes 13 month\(s\) after"):
        evaluate_file(tmp_path / "run", write(tmp_path, "later.csv", y[132:150], start=132))
    short = write(tmp_path, "short.csv", y[120:123], start=120)
    with pytest.raises(DataError, match="short.csv: 3 rows, fewer than the horizon 6"):
        evaluate_file(tmp_path / "run", short)
    negative = write(tmp_path, "neg.csv", [5.0, -1.0] + y[122:130], start=120)
    with pytest.raises(DataError, match=r"neg.csv:3: a value <= 0"):
        evaluate_file(tmp_path / "run", negative)


def test_cli_flags_and_forecast_command(tmp_path, capsys):
    from rnnkit.cli.main import main
    path = write(tmp_path, "air.csv", airline_like(120))
    out = tmp_path / "run"
    assert main(["train", "forecast", "--data", str(path), "--out", str(out), "--window", "24",
                 "--horizon", "6", "--transform", "log", "--baseline", "seasonal", "--layers",
                 "1", "--hidden", "8", "--max-steps", "4", "--eval-every", "2", "--quiet"]) == 0
    assert "transform log, baseline seasonal" in capsys.readouterr().out
    assert main(["forecast", str(out), "--steps", "3", "--from-end"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("1960-01\t") and float(lines[1].split("\t")[1]) > 0   # not +1
    assert [l.split("\t")[0] for l in lines[2:4]] == ["1960-02", "1960-03"]
    assert main(["train", "forecast", "--data", str(path), "--out", str(tmp_path / "x"),
                 "--transform", "sqrt"]) == 2
    assert "rnnkit: error: ForecastData.transform must be one of" in capsys.readouterr().err


def noisy_walk(n, seed=0):
    rng = np.random.default_rng(seed)
    return list(500 + np.cumsum(rng.normal(0, 10, n)) + rng.normal(0, 30, n))


def test_step_0_is_the_chosen_forecast_and_can_be_kept(tmp_path):
    """The trainer scores the untrained model first: it is the candidate choose() picked (its
    baseline, smoothing and ridge fit on the training part), and best.pt keeps it when training
    does no better on validation."""
    from rnnkit.tasks.forecast_choice import base_forecast, choose, features
    path = write(tmp_path, "walk.csv", noisy_walk(100))
    task = build(data=str(path), season=1)
    d, split = task.data_config, (task.train_end, task.val_end)
    t, b, smooth, (weight, bias), _ = choose(task.y, split, d.window, d.horizon, 1)
    assert (t, b) == (task.transform.kind, task.model.config.base)
    z = task.scaler.transform(task.transform.forward(task.y.astype(np.float64)))
    origins = task.origins(*split)
    last = z[np.array(origins) - 1][:, None]                                  # (n, 1, F)
    pred = (base_forecast(z, origins, d.horizon, 1, "last" if b == "ets" else b)
            + (features(z, origins, d.window)[:, :-1] @ weight.T + bias)[:, :, None])
    if smooth is not None:   # the smoothing over the history, with its weight in the mean
        params, share = smooth
        pred = pred + share * (base_forecast(z, origins, d.horizon, 1, "ets", params) - last)
    truth = np.stack([task.y[o:o + d.horizon] for o in origins])
    with torch.no_grad():
        at_start = task.evaluate()
    mae = np.abs(task.transform.inverse(task.scaler.inverse(pred)) - truth).mean()
    assert at_start["val_mae"] == pytest.approx(mae, rel=1e-4)
    metrics = train(task, TrainConfig(lr=0.3, max_steps=4, eval_every=2, warmup_steps=0),
                    tmp_path / "run", quiet=True, log=lambda *a: None)
    first = json.loads((tmp_path / "run/metrics.jsonl").read_text().splitlines()[0])
    assert first["step"] == 0 and first["val_mae"] == pytest.approx(at_start["val_mae"])
    if metrics["best_step"] == 0:   # then the test figures are the untrained model's
        task.model.load_state_dict(load_checkpoint(tmp_path / "run/best.pt")["model"])
        assert not task.model.head.weight.any()


@pytest.mark.parametrize("n_train, K, m, W", [(60, 12, 1, 24), (116, 12, 12, 48),
                                              (300, 12, 52, 52), (40, 12, 12, 14), (14, 12, 1, 1)])
def test_auto_window(n_train, K, m, W):
    from rnnkit.tasks.forecast import auto_window
    assert auto_window(n_train, K, m) == W
    assert n_train - K - W + 1 >= min(W, m)   # as many training windows as steps (or a season's)


def test_short_series_gets_a_shorter_window(tmp_path):
    """100 yearly values (the Nile's length): 60 train; a 48-step window would leave one
    training window, the default gives 24 (25 windows), stored for the loaded model."""
    path = write(tmp_path, "walk.csv", noisy_walk(100))
    logged = []
    task = build_forecast_task(ForecastData(data=str(path), val_fraction=0.2, test_fraction=0.2,
                                            season=1), ForecasterConfig(layers=1, hidden=8),
                               log=logged.append)
    assert task.data_config.window == task.model.config.window == 24
    assert "window 24 (auto)" in logged[0]
    quick(task, tmp_path / "run")
    assert Forecast.load(tmp_path / "run").window == 24


def test_a_trained_rnn_must_beat_the_linear_forecast_by_the_margin(tmp_path):
    """val_loss is the validation MSE at step 0 (the RNN part is zero) and the MSE × (1 +
    rnn_margin) once the RNN part is trained, so best.pt keeps the simpler model unless
    training lowers the validation MSE by more than the margin."""
    path = write(tmp_path, "walk.csv", noisy_walk(100))
    task = build(data=str(path), season=1, rnn_margin=0.25)
    with torch.no_grad():
        start = task.evaluate()
        assert task.model.rnn_is_zero() and start["val_loss"] == start["val_mse"]
        task.model.head.bias.fill_(1e-9)   # a trained RNN part that changes next to nothing
        moved = task.evaluate()
    assert not task.model.rnn_is_zero()
    assert moved["val_loss"] == pytest.approx(1.25 * moved["val_mse"])
    assert moved["val_loss"] > start["val_loss"]
    path = write(tmp_path, "long.csv", noisy_walk(200))   # 15 validation origins: trained
    task = build(data=str(path), season=1, rnn_margin=10)
    assert task.trainable
    metrics = train(task, TrainConfig(lr=0.05, max_steps=4, eval_every=2, warmup_steps=0),
                    tmp_path / "run", quiet=True, log=lambda *a: None)
    assert metrics["steps"] == 4 and metrics["best_step"] == 0


def test_the_gru_is_not_trained_where_the_validation_part_cannot_judge_it(tmp_path):
    """With fewer validation origins than the horizon (their forecasts all overlap), a trained
    GRU cannot be told from noise: the run says so and ends at step 0, the classical forecast
    its model. A longer validation part trains it."""
    path = write(tmp_path, "walk.csv", noisy_walk(100))   # validation 10 steps: 5 origins, K 6
    logged = []
    task = build_forecast_task(ForecastData(data=str(path), window=24, horizon=6, season=1),
                               ForecasterConfig(layers=1, hidden=8), log=logged.append)
    assert task.val_origins() == 5 and not task.trainable
    assert "the GRU is not trained: the validation part holds 5 forecast origin(s), fewer " \
           "than the horizon 6" in logged[-1]
    config = TrainConfig(lr=0.05, max_steps=4, eval_every=2, warmup_steps=0)
    metrics = train(task, config, tmp_path / "run", quiet=True, log=lambda *a: None)
    assert metrics["steps"] == 0 and metrics["best_step"] == 0
    assert task.model.rnn_is_zero() and (tmp_path / "run/best.pt").is_file()
    task = build(data=str(path), season=1, val_fraction=0.2)   # 20 steps: 15 origins
    assert task.val_origins() == 15 and task.trainable
    assert train(task, config, tmp_path / "run2", quiet=True, log=lambda *a: None)["steps"] == 4


def test_exponential_smoothing_forced_stored_and_restored(tmp_path):
    """--baseline ets: the smoothing's parameters are fitted, kept in the checkpoint, and the
    loaded model and evaluate_file forecast with them."""
    path = write(tmp_path, "air.csv", airline_like(120))
    task = build(data=str(path), baseline="ets")
    assert task.model.config.base == "ets" and task.model.smoothing[4] == 1   # seasonal
    assert 0 < task.model.smoothing[0] <= 1
    quick(task, tmp_path / "run")
    ckpt = load_checkpoint(tmp_path / "run/best.pt")
    assert torch.equal(ckpt["model"]["smoothing"], task.model.smoothing)
    assert ckpt["model_config"]["history"] and float(ckpt["model"]["share"]) > 0
    loaded = Forecast.load(tmp_path / "run")
    np.testing.assert_allclose(loaded.forecast(8), Forecast.from_task(task).forecast(8), rtol=1e-5)
    more = write(tmp_path, "more.csv", airline_like(140)[120:], start=120)
    scores = evaluate_file(tmp_path / "run", more)
    assert scores["mase"] < scores["seasonal_naive_mase"]
    with pytest.raises(DataError, match="--baseline ets needs --mode direct"):
        build_forecast_task(ForecastData(data=str(path), window=24, horizon=6, baseline="ets"),
                            ForecasterConfig(layers=1, hidden=8, linear=False), log=lambda *a: None)


def test_smoothing_over_the_history_reproduced_from_any_series(tmp_path):
    """The smoothing runs over the whole history before each origin, not the window: the model
    forecasts differently when only the steps before the window change, and the loaded run (the
    stored series) and evaluate_file (the stored series and the file) give the task's forecasts."""
    path = write(tmp_path, "air.csv", airline_like(120))
    task = build(data=str(path), baseline="ets")
    assert task.model.uses_history()
    f = Forecast.from_task(task)
    y = task.y.copy()
    before = f.predict(y, [100], 12)
    y[:40] *= 1.5                                   # long before the window (W <= 48 steps)
    assert not np.allclose(f.predict(y, [100], 12), before)
    quick(task, tmp_path / "run")
    loaded = Forecast.load(tmp_path / "run")
    np.testing.assert_allclose(loaded.predict(task.y, [96, 100], 12), f.predict(task.y, [96, 100], 12),
                               rtol=1e-5)
    np.testing.assert_allclose(loaded.predict(task.y, [100], 12)[0, :6],   # two blocks of K = 6
                               task.predict([100])[0], rtol=1e-5)
    more = write(tmp_path, "more.csv", airline_like(140)[120:], start=120)
    scores = evaluate_file(tmp_path / "run", more)
    assert scores["mase"] < scores["seasonal_naive_mase"]


def test_smoothing_refitted_before_each_origin_after_validation(tmp_path):
    """From the validation part's end on, each origin's smoothing is refitted on the one-step
    errors of all the history before it (as Holt-Winters is): the task's test forecasts, a
    loaded run's and evaluate_file's. Before it (training, validation: where the smoothing was
    chosen and scored) the training part's fit stands; --no-refit keeps it everywhere, and a
    checkpoint without the field loads as it was saved, without refitting."""
    from rnnkit.models.smoothing import fit_history, history_forecast
    values = airline_like(140)
    values[100:] = [v * (1 + 0.5 * math.sin(2 * math.pi * t / 12)) for t, v in
                    enumerate(values[100:], 100)]         # a louder season late in the series
    path = write(tmp_path, "air.csv", values[:120])
    task = build(data=str(path), baseline="ets")
    fixed = build_forecast_task(ForecastData(data=str(path), window=24, horizon=6, baseline="ets"),
                                ForecasterConfig(layers=1, hidden=8, refit=False),
                                log=lambda *a: None)
    assert task.model.config.refit and not fixed.model.config.refit
    torch.testing.assert_close(task.model.smoothing, fixed.model.smoothing)
    val = task.origins(task.train_end, task.val_end)
    np.testing.assert_array_equal(task.predict(val), fixed.predict(val))      # validation alike
    test = task.origins(task.val_end, len(task.y))
    z, m, W = task.z.double(), task.model.config.period, task.data_config.window
    for o in (test[0], test[-1]):   # the smoothing refitted on z[:o]
        p = fit_history(z[:o], list(range(max(W, m), o)), m, True)[0]
        share = float(task.model.share)
        hist = history_forecast(z, p, m, 6, [o]).float()
        x = task.z[None, o - W:o].float()
        want = task.transform.inverse(task.scaler.inverse(
            task.model.forecast(x, 6, hist).numpy()))
        np.testing.assert_allclose(task.predict([o]), want, rtol=1e-5)
        assert share > 0
    assert not np.allclose(task.predict(test), fixed.predict(test))
    quick(task, tmp_path / "run")
    loaded = Forecast.load(tmp_path / "run")
    np.testing.assert_allclose(loaded.predict(task.y, test, 6), task.predict(test), rtol=1e-5)
    more = write(tmp_path, "more.csv", values[120:], start=120)
    assert evaluate_file(tmp_path / "run", more)["mae"] > 0
    from rnnkit.train.checkpoint import save_checkpoint
    ckpt = load_checkpoint(tmp_path / "run/best.pt")
    del ckpt["model_config"]["refit"]                       # saved before the field existed
    save_checkpoint(tmp_path / "old.pt", ckpt)
    old = Forecast.load(tmp_path / "old.pt")
    assert not old.model.config.refit
    np.testing.assert_allclose(old.predict(task.y, test, 6), fixed.predict(test), rtol=1e-5)


def test_no_history_leaves_the_smoothing_out(tmp_path):
    """--no-history: no smoothing candidate (the window baselines and ridge fits only), and
    --baseline ets is refused with what it needs."""
    path = write(tmp_path, "air.csv", airline_like(120))
    d = ForecastData(data=str(path), window=24, horizon=6)
    task = build_forecast_task(d, ForecasterConfig(layers=1, hidden=8, history=False),
                               log=lambda *a: None)
    assert task.model.config.base != "ets" and not task.model.uses_history()
    with pytest.raises(DataError, match="--history"):
        build_forecast_task(ForecastData(data=str(path), window=24, horizon=6, baseline="ets"),
                            ForecasterConfig(layers=1, hidden=8, history=False),
                            log=lambda *a: None)


def test_too_short_parts_say_which_settings_fit(tmp_path):
    """Validation and test parts shorter than the horizon: the error names the longest horizon
    that fits and the fractions that would hold this one, and the latter do."""
    path = write(tmp_path, "five.csv", airline_like(60))
    with pytest.raises(DataError, match=r"five.csv: validation and test parts \(6 and 6 steps\) "
                                        r"must each hold the horizon 12; use a --horizon of at "
                                        r"most 6, or --val-fraction and --test-fraction of 0.2 "
                                        r"\(60 steps in .*five.csv\)"):
        build(data=str(path), horizon=12)
    task = build(data=str(path), horizon=12, val_fraction=0.2, test_fraction=0.2)
    assert task.val_end - task.train_end >= 12 and len(task.y) - task.val_end >= 12
