"""Forecasting on users' files and settings: spreadsheet exports whose first rows are data, a
total or source row after the table, the options without a linear part, windows shorter than
the smoothing's start, continuation files shorter than the horizon, and the Python API's
checks of y and end."""
import datetime as dt

import numpy as np
import pytest

from rnnkit.data import DataError
from rnnkit.data.series import read_series_file
from rnnkit.models.forecaster import ForecasterConfig
from rnnkit.tasks.forecast import ForecastData, build_forecast_task
from rnnkit.tasks.forecast_scores import interval_scores
from rnnkit.tasks.forecast_trained import Forecast

QUIET = lambda *a: None


def days(n, fmt):
    return [f"{dt.date(2020, 1, 1) + dt.timedelta(days=i):{fmt}}" for i in range(n)]


@pytest.mark.parametrize("header, rows", [
    ("date,v", [f'{d},"{50000 + 100 * i:,}"' for i, d in enumerate(days(40, "%m/%d/%Y"))]),
    ("Datum;Wert", [f"{d};{50 + i / 100:.2f}".replace(".", ",", 1)
                    for i, d in enumerate(days(40, "%d/%m/%Y"))]),
])
def test_a_spreadsheets_first_rows_are_data(tmp_path, header, rows):
    """A first row whose date needs the column's form, or whose number is quoted with thousands
    or a decimal comma, was taken for a second header row and left out, two rows in all."""
    path = tmp_path / "s.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    f = read_series_file(path)
    assert len(f.values) == 40 and not [n for n in f.notes if "thousands" not in n]
    assert f.values[0, 0] == (50000 if "," in header else 50)
    assert f.labels[0] == rows[0].split(rows[0][10])[0]


def test_further_header_rows_are_left_out_and_said(tmp_path):
    path = tmp_path / "yf.csv"
    path.write_text("Price,Close,Open\nTicker,AAPL,AAPL\nDate,,\n" + "".join(
        f"2020-01-{d:02d},{d},{d + 1}\n" for d in range(1, 21)))
    f = read_series_file(path)
    assert len(f.values) == 20
    assert f.notes == ["line 2 ('Ticker,AAPL,AAPL') is a further header row: left out",
                       "line 3 ('Date,,') is a further header row: left out"]


@pytest.mark.parametrize("footer", ["Total,12345", "Source: Bureau of Stats, 2024"])
def test_a_total_or_source_row_after_the_table_is_left_out(tmp_path, footer):
    """A footer of the table's width was read as the last step (under --season) or refused with
    the advice to give --season."""
    path = tmp_path / "s.csv"
    path.write_text("# my data\n\ndate,v\n" + "".join(
        f"{2000 + i // 12}-{i % 12 + 1:02d},{50 + i % 7}\n" for i in range(36)) + "\n" + footer)
    f = read_series_file(path)
    assert len(f.values) == 36 and f.labels[-1] == "2002-12"
    assert f.notes == [f"line 41 ({footer.split(',')[0]!r}) is no row of the table: left out"]


def trend(tmp_path, n=120):
    path = tmp_path / "trend.csv"
    path.write_text("date,value\n" + "".join(f"{2000 + i // 12}-{i % 12 + 1:02d}-01,{100 + 2 * i}\n"
                                            for i in range(n)))
    return path


@pytest.mark.parametrize("model", [dict(linear=False), dict(mode="autoregressive")])
def test_without_a_linear_part_the_forecast_is_the_one_chosen(tmp_path, model):
    """--no-linear and --mode autoregressive chose drift (a map of the window the model then
    lacked) and forecast the last value: the log said one forecast, the model made another."""
    said = []
    task = build_forecast_task(ForecastData(data=str(trend(tmp_path)), window=24, horizon=6),
                               ForecasterConfig(layers=1, hidden=8, **model), log=said.append)
    assert task.model.config.base == "last" and "forecast: the mean of none/last/-" in said[0]
    assert "drift" not in said[0] and "mean/" not in said[0]
    f = forecast_of(task)
    assert np.allclose(f.predict(task.y, [100], 6), task.y[99], rtol=1e-6)


def forecast_of(task):
    return Forecast(task.model, task.scaler, task.y, task.labels, task.names,
                    (task.train_end, task.val_end), task.data_config.window, task.transform,
                    task.season)


@pytest.mark.parametrize("rows, data", [
    (80, dict(window=2, horizon=4, season=1)),
    (10, dict(horizon=3, val_fraction=0.3, test_fraction=0.3)),
])
def test_windows_shorter_than_the_smoothings_start_train(tmp_path, rows, data):
    """The smoothing starts its states on 4 steps: a window of 2 or 3 (or a 10-step series) took
    forecast origins before it, an internal error."""
    from rnnkit.tasks.common import train
    from rnnkit.train import TrainConfig
    path = tmp_path / "y.csv"
    path.write_text("t,v\n" + "".join(f"{2000 + i},{50 + 0.3 * i + (i * 7919) % 13}\n"
                                      for i in range(rows)))
    task = build_forecast_task(ForecastData(data=str(path), **data),
                               ForecasterConfig(layers=1, hidden=4), log=QUIET)
    metrics = train(task, TrainConfig(max_steps=2, eval_every=1, warmup_steps=0),
                    tmp_path / "run", quiet=True)
    assert np.isfinite(metrics["test_mae"])


def test_a_short_continuation_file_is_named(tmp_path):
    """The message named --data and suggested fractions, which a given --test-data ignores."""
    path = trend(tmp_path, 96)
    (tmp_path / "val.csv").write_text("date,value\n" + "".join(
        f"2008-{i + 1:02d}-01,{292 + 2 * i}\n" for i in range(12)))
    (tmp_path / "test.csv").write_text("date,value\n2009-01-01,316\n2009-02-01,318\n")
    with pytest.raises(DataError, match=r"test.csv: 2 steps \(--test-data\), fewer than the "
                                        r"horizon 12: give a file of at least 12 steps"):
        build_forecast_task(ForecastData(data=str(path), val_data=str(tmp_path / "val.csv"),
                                         test_data=str(tmp_path / "test.csv"), horizon=12),
                            ForecasterConfig(layers=1, hidden=4), log=QUIET)


def test_the_python_api_checks_y_and_end(tmp_path):
    task = build_forecast_task(ForecastData(data=str(trend(tmp_path)), window=24, horizon=6),
                               ForecasterConfig(layers=1, hidden=4), log=QUIET)
    f = forecast_of(task)
    y = task.y.astype(np.float32).copy()
    with pytest.raises(DataError, match=r"end must be a step of y from its first forecast "
                                        r"origin on, in \[\d+, 120\], got 1000000"):
        f.intervals(y, [50], 3, end=10 ** 6)
    y[40] = np.nan
    with pytest.raises(DataError, match=r"y holds 1 step\(s\) with a value that is not finite "
                                        r"before the last origin \(the first: step 40\)"):
        f.predict(y, [50], 3)
    assert np.isfinite(f.predict(y, [30], 3)).all()       # NaN after the window: no matter


def test_an_exact_forecast_covers_its_truth_whatever_float32_rounding():
    truth = np.full((2, 3, 1), 109500.0)
    lo = hi = (truth + 0.002)[None]                  # a zero-width interval, a rounding above
    assert interval_scores(lo, hi, truth, np.ones(1), (80,), "t")["t_coverage_80"] == 1.0
    assert interval_scores(lo + 1, hi + 1, truth, np.ones(1), (80,), "t")["t_coverage_80"] == 0


def counted(path, start, stop):
    path.write_text("t,value\n" + "".join(f"{t},{10 + (t % 12)}\n" for t in range(start, stop)))
    return path


def test_files_continuing_a_series_of_step_numbers_are_checked(tmp_path):
    """A time column of step numbers was never checked: a --test-data that overlapped the
    training rows or left a gap was taken as the next steps, and rnnkit eval of the run's own
    test file scored it as steps after it (MAE 3.89 where the run's own test MAE was 0.0003)."""
    from rnnkit.data.series_continues import check_continues
    labels = [str(t) for t in range(120)]
    check_continues(labels, read_series_file(counted(tmp_path / "ok.csv", 120, 130)))
    for start, said in ((100, r"'100' does not come after '119'; expected the rows that follow "
                               r"it, one a step$"),
                        (125, r"'125' comes 6 after '119', where the series steps by 1; "
                              r"expected 120")):
        with pytest.raises(DataError, match=said):
            check_continues(labels, read_series_file(counted(tmp_path / "c.csv", start, 140)))
    with pytest.raises(DataError, match=r"c.csv:3: '122' comes 2 after '120'"):
        path = tmp_path / "c.csv"
        path.write_text("t,value\n120,1\n122,2\n")
        check_continues(labels, read_series_file(path))
    with pytest.raises(DataError, match=r"their scores are in its metrics.json"):
        check_continues(labels, read_series_file(counted(tmp_path / "c.csv", 100, 110)),
                        hint=" (a run's series holds ... their scores are in its metrics.json)")


@pytest.mark.parametrize("mode", ["direct", "autoregressive"])
def test_forecast_from_python_is_the_eval_models_whatever_the_mode(mode):
    """After model.train(), Forecaster.forecast drew dropout: a different forecast each call
    (0.07-0.20 apart), where sample and beam search switch to eval themselves."""
    import torch
    from rnnkit.models.forecaster import Forecaster
    torch.manual_seed(0)
    model = Forecaster(ForecasterConfig(features=1, horizon=3, mode=mode, layers=2, hidden=8,
                                        dropout=0.5))
    with torch.no_grad():
        model.head.weight.normal_()
    z = torch.randn(2, 12, 1)
    model.train()
    first, second = model.forecast(z, 5), model.forecast(z, 5)
    assert torch.equal(first, second) and model.training
    assert torch.equal(first, model.eval().forecast(z, 5))


def test_windows_of_the_wrong_shape_are_named():
    """An unbatched (W, F) window was multiplied as (1, W·F), or read as W = F."""
    import torch
    from rnnkit.models.forecaster import Forecaster
    model = Forecaster(ForecasterConfig(features=2, horizon=3, layers=1, hidden=8, window=5))
    for z in (torch.randn(5, 2), torch.randn(1, 5, 3)):
        with pytest.raises(ValueError, match=r"expected windows z of shape \(B, W, 2\)"):
            model.forecast(z, 3)
        with pytest.raises(ValueError, match=r"expected windows z of shape \(B, W, 2\)"):
            model(z)


def test_a_bfloat16_model_forecasts_through_the_trained_helper(tmp_path):
    """Forecast.forecast of a bfloat16 model: TypeError, numpy has no bfloat16."""
    import torch
    f = forecast_of(build_forecast_task(ForecastData(data=str(trend(tmp_path)), season=1),
                                        ForecasterConfig(layers=1, hidden=8), log=QUIET))
    want = f.forecast(3)
    f.model.to(torch.bfloat16)
    assert np.allclose(f.forecast(3), want, rtol=0.05)
