"""Several columns are several series: each column's classical forecast is chosen on it alone
(rnnkit.tasks.forecast_choice.choose_columns), stored per column and restored, and each column
is scored on its own MASE scale."""
import math

import numpy as np
import pytest

from rnnkit.data import DataError
from rnnkit.models.forecaster import ForecasterConfig
from rnnkit.tasks.common import train
from rnnkit.tasks.forecast import ForecastData, build_forecast_task
from rnnkit.tasks.forecast_scores import mase_scale, score
from rnnkit.tasks.forecast_trained import Forecast, evaluate_file
from rnnkit.train import TrainConfig


def panel(n, seed=0):
    """Two unlike monthly series: a growing multiplicative season (positive: log may be
    chosen) and a noisy walk with a drift through zero (no log), on scales 1,000 apart."""
    rng = np.random.default_rng(seed)
    air = [1000 * math.exp(0.01 * t) * (1 + 0.2 * math.sin(2 * math.pi * t / 12)) for t in range(n)]
    walk = np.cumsum(rng.normal(0.05, 1.0, n)) - 5
    return np.stack([air, walk], 1)


def write(path, values, names, start=0):
    rows = [f"{1950 + (start + i) // 12}-{(start + i) % 12 + 1:02d},"
            + ",".join(f"{v:.4f}" for v in row) for i, row in enumerate(values)]
    path.write_text("month," + ",".join(names) + "\n" + "\n".join(rows) + "\n")
    return path


def build(path, columns):
    return build_forecast_task(ForecastData(data=str(path), columns=columns, window=24,
                                            horizon=6),
                               ForecasterConfig(layers=1, hidden=8), log=lambda *a: None)


def test_each_column_forecast_as_its_own_series(tmp_path):
    """The untrained two-column model forecasts each column as that column's own run does:
    its transform, baseline, smoothing and linear part chosen on it alone (one joint choice
    would give the walk's column the season's log, which it cannot take, or the season's
    choice the walk's)."""
    path = write(tmp_path / "two.csv", panel(130), ["air", "walk"])
    both = build(path, "air,walk")
    alone = [build(path, "air"), build(path, "walk")]
    assert both.model.config.per_column and not alone[0].model.config.per_column
    assert both.transform.kind == [a.transform.kind for a in alone]
    origins = both.origins(both.val_end, len(both.y))
    pred = both.predict(origins)                                              # (B, K, 2)
    for f, a in enumerate(alone):
        np.testing.assert_allclose(pred[..., f], a.predict(origins)[..., 0], rtol=1e-4, atol=1e-3)
    # the linear part is block-diagonal: a column's forecast does not read the other's window
    w = both.model.ar.weight.detach().numpy()                                 # (K*F, W*F)
    assert not w[0::2, 1::2].any() and not w[1::2, 0::2].any()


def test_columns_stored_restored_and_evaluated(tmp_path):
    path = write(tmp_path / "two.csv", panel(150)[:130], ["air", "walk"])
    task = build(path, "air,walk")
    metrics = train(task, TrainConfig(lr=1e-2, max_steps=4, eval_every=2, warmup_steps=0,
                                      log_every=2), tmp_path / "run", quiet=True)
    assert metrics["test_mase"] == pytest.approx(
        np.mean([metrics["test_mase:air"], metrics["test_mase:walk"]]), rel=1e-9)
    loaded = Forecast.load(tmp_path / "run")
    assert loaded.model.config.per_column and loaded.model.smoothing.shape == (2, 5)
    np.testing.assert_allclose(loaded.forecast(8), Forecast.from_task(task).forecast(8),
                               rtol=1e-4, atol=1e-3)
    more = write(tmp_path / "more.csv", panel(150)[130:], ["air", "walk"], start=130)
    scores = evaluate_file(tmp_path / "run", more)
    assert np.isfinite(scores["mase"]) and scores["mase"] < scores["naive_mase"]
    gappy = tmp_path / "gappy.csv"
    lines = more.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ","                 # one value missing
    gappy.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="train with --fill linear"):
        evaluate_file(tmp_path / "run", gappy)
    filling = build_forecast_task(ForecastData(data=str(path), columns="air,walk", window=24,
                                               horizon=6, fill="linear"),
                                  ForecasterConfig(layers=1, hidden=8), log=lambda *a: None)
    train(filling, TrainConfig(max_steps=1, eval_every=1, warmup_steps=0), tmp_path / "fills",
          quiet=True)
    assert np.isfinite(evaluate_file(tmp_path / "fills", gappy)["mase"])   # filled as trained


def test_mase_is_each_column_on_its_own_scale():
    """The MASE of several columns is the mean of each column's, so a column in larger units
    does not outweigh the others (pooled, the first column's error would be all of it)."""
    rng = np.random.default_rng(0)
    train_part = np.cumsum(rng.normal(size=(50, 2)), 0) * [1000.0, 1.0]
    scale = mase_scale(train_part, 1)
    truth = rng.normal(size=(4, 3, 2))
    pred = truth + [[[100.0, 0.0]]]   # the big column off by a tenth of its step
    apart = [score(pred[..., f:f + 1], truth[..., f:f + 1], scale[f:f + 1])["mase"] for f in (0, 1)]
    assert score(pred, truth, scale)["mase"] == np.mean(apart)
    assert abs(score(pred, truth, scale)["mase"] - score(pred * [1, 5], truth * [1, 5],
                                                         scale * [1, 5])["mase"]) < 1e-12
    assert isinstance(mase_scale(train_part[:, 0], 1), float)


def test_all_columns(tmp_path):
    """--columns all: every column after the first, read from the header; a one-column header is
    a one-line error."""
    from rnnkit.data import DataError
    from rnnkit.data.series import read_series_file
    path = write(tmp_path / "two.csv", panel(40), ["air", "walk"])
    assert read_series_file(path, "all").names == ["air", "walk"]
    lone = tmp_path / "one.csv"
    lone.write_text("value\n1\n2\n")
    with pytest.raises(DataError, match="--columns all takes every column after the first"):
        read_series_file(lone, "all")


def write_long(path, values, names, start=0, order=None):
    """Rows of (month, series, value), series by series (``order``: the series' order)."""
    rows = [f"{1950 + (start + i) // 12}-{(start + i) % 12 + 1:02d},{names[f]},{values[i, f]:.4f}"
            for f in (order or range(len(names))) for i in range(len(values))]
    path.write_text("month,series,value\n" + "\n".join(rows) + "\n")
    return path


def test_long_form_is_the_wide_file(tmp_path):
    """--series-column: rows of (time, series, value) are the wide file's columns, one series a
    column; a file continuing the run is read the same way, its series in any order."""
    y = panel(150)
    wide = build(write(tmp_path / "wide.csv", y[:130], ["air", "walk"]), "air,walk")
    long = build_forecast_task(ForecastData(data=str(write_long(tmp_path / "long.csv", y[:130],
                                                                ["air", "walk"])),
                                            series_column="series", window=24, horizon=6),
                               ForecasterConfig(layers=1, hidden=8), log=lambda *a: None)
    assert long.names == ["air", "walk"] and long.labels == wide.labels
    origins = wide.origins(wide.val_end, len(wide.y))
    np.testing.assert_allclose(long.predict(origins), wide.predict(origins), rtol=1e-6)
    for task, run in ((long, "long"), (wide, "wide")):
        train(task, TrainConfig(max_steps=2, eval_every=2, warmup_steps=0, log_every=2),
              tmp_path / run, quiet=True)
    more = write_long(tmp_path / "more.csv", y[130:], ["air", "walk"], start=130, order=[1, 0])
    wide_more = write(tmp_path / "wide_more.csv", y[130:], ["air", "walk"], start=130)
    assert (evaluate_file(tmp_path / "long", more)["mase"]
            == pytest.approx(evaluate_file(tmp_path / "wide", wide_more)["mase"], rel=1e-6))


@pytest.mark.parametrize("edit, message", [
    (lambda rows: rows + [rows[5]], r"long.csv:\d+: series 'air' has time '1950-06' twice"),
    (lambda rows: [r for i, r in enumerate(rows) if i != 100], r"series 'walk' lacks 1 of the times"),
    (lambda rows: [r.replace("walk,", ",") if i == 90 else r for i, r in enumerate(rows)],
     r"long.csv:\d+: no series named in column 'series'"),
])
def test_long_form_errors(tmp_path, edit, message):
    from rnnkit.data import DataError
    from rnnkit.data.series import read_series_file
    path = write_long(tmp_path / "long.csv", panel(60), ["air", "walk"])
    head, *rows = path.read_text().splitlines()
    path.write_text("\n".join([head] + edit(rows)) + "\n")
    with pytest.raises(DataError, match=message):
        read_series_file(path, "", "series")
    with pytest.raises(DataError, match="column 'series' holds the series"):
        read_series_file(write_long(tmp_path / "ok.csv", panel(60), ["a", "b"]), "series", "series")


def test_forecast_command_chooses_series(tmp_path, capsys, monkeypatch):
    """rnnkit forecast --series prints and plots the series named; the plot holds PLOT_MAX
    panels at most (and says so); an unknown name is a one-line error listing the run's."""
    from rnnkit.cli import forecast as forecast_cli
    from rnnkit.cli.main import main
    path = write(tmp_path / "two.csv", panel(130), ["air", "walk"])
    out = tmp_path / "run"
    assert main(["train", "forecast", "--data", str(path), "--columns", "all", "--out", str(out),
                 "--window", "24", "--horizon", "6", "--layers", "1", "--hidden", "8",
                 "--max-steps", "2", "--eval-every", "2", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["forecast", str(out), "--steps", "3", "--series", "walk"]) == 0
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    assert lines[0].split("\t")[1] == "walk_forecast" and "air" not in lines[0]
    assert all("\t" in line for line in lines)          # the table alone: notes go to stderr
    assert "plot: " in printed.err
    monkeypatch.setattr(forecast_cli, "PLOT_MAX", 1)
    assert main(["forecast", str(out), "--steps", "3"]) == 0
    assert "(the first 1 of 2 series; --series chooses)" in capsys.readouterr().err
    assert main(["forecast", str(out), "--series", "nope"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["rnnkit: error: --series 'nope': no such series in the run; it has air, walk"]


def test_pandas_index_column_is_left_out(tmp_path):
    """A CSV written by pandas' to_csv starts with an unnamed column of row numbers: the dates
    after it label the steps (the season is read off them), in wide and in long form."""
    from rnnkit.data.series import read_series_file
    y = panel(40)
    wide = write(tmp_path / "w.csv", y, ["air", "walk"])
    lines = wide.read_text().splitlines()
    (tmp_path / "pw.csv").write_text("\n".join(["," + lines[0]] + [f"{i},{l}" for i, l in
                                                                   enumerate(lines[1:])]) + "\n")
    f = read_series_file(tmp_path / "pw.csv", "all")
    assert f.names == ["air", "walk"] and f.labels[:2] == ["1950-01", "1950-02"] and f.timed
    lines = write_long(tmp_path / "l.csv", y, ["air", "walk"]).read_text().splitlines()
    (tmp_path / "pl.csv").write_text("\n".join(["," + lines[0]] + [f"{i},{l}" for i, l in
                                                                   enumerate(lines[1:])]) + "\n")
    f = read_series_file(tmp_path / "pl.csv", "", "series")
    assert f.names == ["air", "walk"] and f.labels[0] == "1950-01"


@pytest.mark.parametrize("name, sep", [("s.csv", ";"), ("t.csv", "\t"), ("t.tsv", "\t")])
def test_spreadsheet_separators(tmp_path, name, sep):
    """A header without commas separated by tabs or semicolons (a spreadsheet's export), or a
    .tsv file: read as those columns."""
    from rnnkit.data.series import read_series_file
    text = write(tmp_path / "w.csv", panel(30), ["air", "walk"]).read_text()
    (tmp_path / name).write_text(text.replace(",", sep))
    f = read_series_file(tmp_path / name, "all")
    assert f.names == ["air", "walk"] and f.labels[0] == "1950-01"
    np.testing.assert_allclose(f.values, read_series_file(tmp_path / "w.csv", "all").values)


def test_a_trailing_separator_is_no_column(tmp_path):
    """A spreadsheet's export that ends every line with a separator: the empty last column is
    left out, so the default value column is the last named one."""
    from rnnkit.data.series import read_series_file
    path = write(tmp_path / "w.csv", panel(30), ["air", "walk"])
    trailing = tmp_path / "t.csv"
    trailing.write_text("".join(line + ",\n" for line in path.read_text().splitlines()))
    f = read_series_file(trailing)
    assert f.names == ["walk"]
    np.testing.assert_allclose(f.values, read_series_file(path).values)


def test_semicolons_with_decimal_commas(tmp_path):
    """A European spreadsheet's export: semicolons between fields, decimal commas and dots
    between thousands in the numbers."""
    from rnnkit.data.series import read_series_file
    path = tmp_path / "eu.csv"
    path.write_text("Monat;Umsatz\n2020-01;1.234,5\n2020-02;-0,25\n2020-03;7\n")
    f = read_series_file(path)
    assert f.names == ["Umsatz"] and f.values[:, 0].tolist() == [1234.5, -0.25, 7.0]


def test_a_column_named_twice_is_refused(tmp_path):
    """Two header columns of one name (or a name given twice): a one-line error, not one column
    read twice."""
    from rnnkit.data import DataError
    from rnnkit.data.series import read_series_file
    path = tmp_path / "d.csv"
    path.write_text("month,a,a\n2000-01,1,2\n2000-02,3,4\n")
    for columns in ("all", "a"):
        with pytest.raises(DataError, match=r"d.csv:1: column 'a' is named more than once"):
            read_series_file(path, columns)
    ok = write(tmp_path / "w.csv", panel(20), ["air", "walk"])
    with pytest.raises(DataError, match=r"column 'air' is named more than once"):
        read_series_file(ok, "air,air")


def test_too_many_columns_for_the_linear_part_are_refused_first(tmp_path, monkeypatch):
    """Its (K·F, W·F) matrix grows with the square of the columns: 2,000 of them held 4.8 GB
    and rising after 170 s with nothing said (it would have held some 2e9 weights)."""
    from rnnkit.tasks import forecast
    values = np.stack([panel(120, seed=s)[:, 0] for s in range(6)], 1)          # (120, 6)
    path = write(tmp_path / "p.csv", values, [f"s{j}" for j in range(6)])
    monkeypatch.setattr(forecast, "MAX_LINEAR", 12 * 24 * 5 * 5)               # 5 columns
    data = ForecastData(data=str(path), columns="all", window=24, horizon=12)
    with pytest.raises(DataError, match=r"p.csv: 6 series make the linear part a 72 x 144 "
                                        r"matrix \(10,368 weights; .*at most 5 columns at "
                                        r"window 24 and horizon 12"):
        build_forecast_task(data, ForecasterConfig(hidden=4), log=lambda *a: None)
