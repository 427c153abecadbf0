"""Series input: the season read off the dates, the transforms, and bad input with file and line."""
import math
from datetime import datetime, timedelta

import numpy as np
import pytest

from rnnkit.data import DataError
from rnnkit.data.dates import infer_season, parse_date
from rnnkit.data.series import read_series_file
from rnnkit.data.series_scale import Transform
from rnnkit.models.forecaster import ForecasterConfig
from rnnkit.tasks.forecast import ForecastData, build_forecast_task


def write_dated(tmp_path, labels, name="s.csv", values=None):
    values = values or [10 + math.sin(i) for i in range(len(labels))]
    path = tmp_path / name
    path.write_text("date,value\n" + "".join(f"{a},{v:.3f}\n" for a, v in zip(labels, values)))
    return path


def season_of(tmp_path, labels):
    warnings = []
    return infer_season(read_series_file(write_dated(tmp_path, labels)), warnings.append), warnings


def months(n, year=1990):
    return [f"{year + i // 12}-{i % 12 + 1:02d}" for i in range(n)]


def stamps(n, step, fmt="%Y-%m-%d"):
    t0 = datetime(2020, 1, 1)
    return [(t0 + i * step).strftime(fmt) for i in range(n)]


@pytest.mark.parametrize("labels, expected", [
    (months(30), (12, "monthly")),
    ([f"{1959 + i // 4}-Q{i % 4 + 1}" for i in range(20)], (4, "quarterly")),
    ([f"{1959 + i // 4}Q{i % 4 + 1}" for i in range(20)], (4, "quarterly")),
    (stamps(20, timedelta(weeks=1)), (52, "weekly")),
    (stamps(20, timedelta(days=1)), (7, "daily")),
    (stamps(30, timedelta(hours=1), "%Y-%m-%d %H:%M"), (24, "hourly")),
    ([str(1871 + i) for i in range(20)], (1, "yearly")),
    ([f"{1700 + i}.0" for i in range(20)], (1, "yearly")),
    ([f"{m}-1-{1995 + i // 12}" for i in range(24)
      for m in ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                "Dec"][i % 12:i % 12 + 1]], (12, "monthly")),
    (stamps(15, timedelta(days=31), "%Y-%m-01"), (12, "monthly")),
    # pandas' time-zone-aware index, and local hours across a daylight-saving change: in UTC
    ([d + "+00:00" for d in stamps(20, timedelta(days=1), "%Y-%m-%d %H:%M:%S")], (7, "daily")),
    ([f"2021-03-28T0{h}:00:00+01:00" for h in range(2)]
     + [f"2021-03-28T0{h}:00:00+02:00" for h in range(3, 10)], (24, "hourly")),
    (stamps(20, timedelta(hours=1), "%Y-%m-%dT%H:%M:%S.000Z"), (24, "hourly")),
    # a spreadsheet's day/month or month/day dates: a day past 12 tells which
    (stamps(20, timedelta(days=1), "%m/%d/%Y"), (7, "daily")),
    (stamps(20, timedelta(days=1), "%d.%m.%Y"), (7, "daily")),
    (stamps(15, timedelta(days=31), "%m/15/%Y"), (12, "monthly")),
    (stamps(15, timedelta(days=31), "%m/01/%Y"), (12, "monthly")),   # a fixed day: the second
    (stamps(15, timedelta(days=31), "01.%m.%Y"), (12, "monthly")),
])
def test_season_from_dates(tmp_path, labels, expected):
    (season, freq), warnings = season_of(tmp_path, labels)
    assert (season, freq) == expected and not warnings


def test_a_step_counter_is_no_dates_and_says_so(tmp_path):
    (season, freq), warnings = season_of(tmp_path, [str(i) for i in range(20)])
    assert (season, freq) == (1, "") and len(warnings) == 1
    assert "holds no dates: no season inferred; give --season N" in warnings[0]


def test_gap_warns_with_line_and_keeps_the_season(tmp_path):
    labels = months(30)
    del labels[10]                                           # a missing month: row 11 -> line 12
    (season, freq), warnings = season_of(tmp_path, labels)
    assert (season, freq) == (12, "monthly")
    assert len(warnings) == 1 and "s.csv:12:" in warnings[0] and "1990-12" in warnings[0]


def test_unknown_step_warns(tmp_path):
    (season, freq), warnings = season_of(tmp_path, stamps(10, timedelta(minutes=5), "%Y-%m-%d %H:%M"))
    assert season == 1 and "5 minute(s)" in warnings[0] and "--season" in warnings[0]


def test_bad_dates_name_file_and_line(tmp_path):
    labels = months(20)
    labels[6] = "1990-13"
    with pytest.raises(DataError, match=r"s.csv:8: cannot read the date '1990-13'"):
        season_of(tmp_path, labels)
    with pytest.raises(DataError, match=r"s.csv:2: cannot read the date '1990/31/01'"):
        season_of(tmp_path, [f"1990/{d}/01" for d in range(31, 11, -1)])
    with pytest.raises(DataError, match=r"s.csv:2: dates like '03/02/1990' read as day/month or "
                                        r"as month/day \(no day past 12, nor a fixed day, tells"):
        season_of(tmp_path, [f"{m + 1:02d}/{m:02d}/1990" for m in range(2, 12)])
    backwards = months(20)
    backwards[5], backwards[6] = backwards[6], backwards[5]
    with pytest.raises(DataError, match=r"s.csv:8: '1990-06' does not come after '1990-07'"):
        season_of(tmp_path, backwards)
    assert parse_date("1990-Q3") == datetime(1990, 7, 1) and parse_date("abc") is None


def test_bad_dates_reach_the_cli_as_one_line(tmp_path, capsys):
    from rnnkit.cli.main import main
    labels = months(100)
    labels[40] = "1993-xx"
    path = write_dated(tmp_path, labels)
    assert main(["train", "forecast", "--data", str(path), "--out", str(tmp_path / "r"),
                 "--window", "24", "--horizon", "6", "--max-steps", "1", "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "s.csv:42: cannot read the date '1993-xx'" in err and "Traceback" not in err


def test_series_too_short_for_its_season(tmp_path, capsys):
    path = write_dated(tmp_path, stamps(60, timedelta(weeks=1)))       # weekly: season 52
    task = build_forecast_task(ForecastData(data=str(path), window=12, horizon=4),
                               ForecasterConfig(layers=1, hidden=8), log=lambda *a: None)
    assert task.season == 1 and "fewer than two seasons of 52" in capsys.readouterr().err
    with pytest.raises(DataError, match=r"s.csv: the training part has 48 steps, fewer than two "
                                        r"seasons of 30 \(given\)"):
        build_forecast_task(ForecastData(data=str(path), window=12, horizon=4, season=30),
                            ForecasterConfig(layers=1, hidden=8), log=lambda *a: None)


def test_transform_round_trip():
    y = np.array([[1.0, 112.0], [3.5, 600.0]], dtype=np.float32)
    for kind in ("none", "log"):
        t = Transform.from_dict(Transform(kind).to_dict())
        np.testing.assert_allclose(t.inverse(t.forward(y)), y, rtol=1e-6)
    np.testing.assert_allclose(Transform("log").forward(y), np.log(y))
    assert Transform.from_dict(None).kind == "none"
    with pytest.raises(ValueError, match="transform must be one of"):
        Transform("sqrt")


def test_log_needs_a_positive_series(tmp_path):
    path = write_dated(tmp_path, months(100), values=[math.sin(i) for i in range(100)])
    with pytest.raises(DataError, match=r"s.csv:2: a value <= 0 \(\d+ such row\(s\) in the "
                                        r"file\); --transform log needs a positive series"):
        build_forecast_task(ForecastData(data=str(path), window=24, horizon=6, transform="log"),
                            ForecasterConfig(layers=1, hidden=8), log=lambda *a: None)
    good = write_dated(tmp_path, months(100), name="good.csv", values=[10.0 + math.sin(i)
                                                                       for i in range(100)])
    later = months(112)[100:]
    test = write_dated(tmp_path, later, name="t.csv", values=[10.0] * 5 + [0.0] + [10.0] * 6)
    with pytest.raises(DataError, match=r"t.csv:7: a value <= 0"):   # it named --data, no line
        build_forecast_task(ForecastData(data=str(good), test_data=str(test), window=12,
                                         horizon=6, transform="log"),
                            ForecasterConfig(layers=1, hidden=8), log=lambda *a: None)
    task = build_forecast_task(ForecastData(data=str(path), window=24, horizon=6),    # auto: not log
                               ForecasterConfig(layers=1, hidden=8), log=lambda *a: None)
    assert task.transform.kind == "none"


def test_config_rejects_bad_choices():
    with pytest.raises(ValueError, match="transform must be one of"):
        ForecastData(transform="sqrt")
    with pytest.raises(ValueError, match="baseline must be one of"):
        ForecastData(baseline="mean")
    with pytest.raises(ValueError, match="needs test_data as well"):
        ForecastData(val_data="v.csv")


def test_a_continuing_file_may_skip_what_the_series_skips(tmp_path):
    """Trading days: Monday follows Friday (the series skips weekends); a week's gap is refused,
    as is a file that starts before the series ends."""
    from rnnkit.data.series_continues import check_continues
    days = ["2024-01-0" + d for d in "12345"] + ["2024-01-08", "2024-01-09"]   # Mon-Fri, Mon, Tue
    part = lambda name, first: read_series_file(write_csv(tmp_path, name, first))
    check_continues(days, part("next.csv", "2024-01-10"))
    with pytest.raises(DataError, match=r"week.csv:2: '2024-01-16' comes 7 day\(s\) after the "
                                        r"series' last step '2024-01-09', more than any of "
                                        r"its steps \(3 day\(s\) at most\)"):
        check_continues(days, part("week.csv", "2024-01-16"))
    with pytest.raises(DataError, match=r"again.csv:2: '2024-01-09' does not come after"):
        check_continues(days, part("again.csv", "2024-01-09"))


def test_a_continuing_file_is_checked_row_by_row(tmp_path):
    """Its own rows in time order, one per step: not only its first date."""
    from rnnkit.data.series_continues import check_continues
    series = months(30)
    after = months(36)[30:]
    for name, rows, message in [
            ("order.csv", [after[0], after[1], after[0]], r"order.csv:4: '1992-07' does not come "
                                                          r"after '1992-08'"),
            ("twice.csv", [after[0], after[1], after[1]], r"twice.csv:4: '1992-08' does not "
                                                          r"come after '1992-08'"),
            ("gap.csv", [after[0], after[1], after[5]], r"gap.csv:4: '1992-12' comes 4 month\(s\) "
                                                        r"after '1992-08'")]:
        path = tmp_path / name
        path.write_text("month,value\n" + "".join(f"{m},1\n" for m in rows), encoding="utf-8")
        with pytest.raises(DataError, match=message):
            check_continues(series, read_series_file(path))
    ok = tmp_path / "ok.csv"
    ok.write_text("month,value\n" + "".join(f"{m},1\n" for m in after), encoding="utf-8")
    check_continues(series, read_series_file(ok))


def write_csv(tmp_path, name, first):
    path = tmp_path / name
    after = (datetime.strptime(first, "%Y-%m-%d") + timedelta(days=1)).strftime("%Y-%m-%d")
    path.write_text(f"day,value\n{first},1\n{after},2\n", encoding="utf-8")
    return path


def test_a_value_far_outside_the_series_is_warned_about_and_metrics_stay_json(tmp_path):
    """A typo such as 1e30 in a series of hundreds is named with its line (the model scales by
    the series' spread); the figures it spoils are computed in float64 and metrics.json stays
    JSON any reader parses (no Infinity or NaN)."""
    import json
    from rnnkit.data.series_numbers import far_value
    from rnnkit.train.checkpoint import json_text
    values = [100 + 10 * math.sin(i) for i in range(60)]
    values[30] = 1e30
    f = read_series_file(write_dated(tmp_path, months(60), values=values))
    message = far_value(f, f)
    assert message.startswith(f"{f.path}:32: column 'value' holds 1e+30") and "data error" in message
    values[30] = 1000.0                                      # a spike, not a typo: no warning
    assert far_value(*[read_series_file(write_dated(tmp_path, months(60), "t.csv", values))] * 2) \
        is None
    text = json_text({"a": float("inf"), "b": [np.float32("nan"), np.float64(2.5)], "c": 1})
    assert json.loads(text) == {"a": None, "b": [None, 2.5], "c": 1}
    from rnnkit.tasks.forecast_scores import score
    big = np.full((2, 1), 1e30, np.float32)
    assert math.isfinite(score(big, np.zeros((2, 1), np.float32), np.ones(1))["rmse"])


def test_a_continuing_file_whose_first_date_does_not_read_is_refused(tmp_path):
    """A first row whose date did not read turned every check off: a file repeating the whole
    series after a bad first date was scored as its next steps."""
    from rnnkit.data.series_continues import check_continues
    series = months(30)
    path = tmp_path / "more.csv"
    path.write_text("month,value\n1992-13,1\n" + "".join(f"{m},1\n" for m in series))
    with pytest.raises(DataError, match=r"more.csv:2: cannot read the date '1992-13' like the "
                                        r"series' last, '1992-06'"):
        check_continues(series, read_series_file(path))


def test_a_given_season_still_checks_the_dates_order(tmp_path):
    """--season N skipped every date check: rows out of order trained silently. Dates that do
    not read stay no error under a given season (it needs none); one slashed date among ISO
    ones is named at its own line."""
    backwards = months(40)
    backwards[5], backwards[6] = backwards[6], backwards[5]
    path = write_dated(tmp_path, backwards)
    with pytest.raises(DataError, match=r"s.csv:8: '1990-06' does not come after '1990-07'"):
        build_forecast_task(ForecastData(data=str(path), window=6, horizon=2, season=12),
                            ForecasterConfig(layers=1, hidden=8), log=lambda *a: None)
    unread = months(40)
    unread[9] = "1990-13"
    task = build_forecast_task(ForecastData(data=str(write_dated(tmp_path, unread)), window=6,
                                            horizon=2, season=12),
                               ForecasterConfig(layers=1, hidden=8), log=lambda *a: None)
    assert task.season == 12
    mixed = [f"{m}-01" for m in months(30)]
    mixed[20] = "01/09/1991"
    with pytest.raises(DataError, match=r"s.csv:22: dates like '01/09/1991' read as day/month"):
        season_of(tmp_path, mixed)


def test_a_column_named_date_labels_the_steps_beside_ids_that_read_as_years(tmp_path):
    """id,date,value with ids 1000, 1001, ...: the ids were read as yearly dates and the
    monthly dates left out (season 1, no warning)."""
    path = tmp_path / "ids.csv"
    path.write_text("id,date,value\n" + "".join(f"{1000 + i},{m}-01,{10 + math.sin(i):.3f}\n"
                                                for i, m in enumerate(months(48))))
    f = read_series_file(path)
    assert f.labels[0] == "1990-01-01" and infer_season(f, print) == (12, "monthly")


def test_too_short_parts_name_the_fraction_that_applies(tmp_path):
    """With --test-data the test part is the file's: the advice named --test-fraction too, and
    the fraction of the whole series, which --val-fraction already was."""
    labels = months(120)
    main = write_dated(tmp_path, labels[:108])
    test = write_dated(tmp_path, labels[108:], name="t.csv")
    with pytest.raises(DataError, match=r"validation and test parts \(11 and 12 steps\) must each "
                                        r"hold the horizon 12; use a --horizon of at most 11, or "
                                        r"--val-fraction of 0.12 \(108 steps in "):
        build_forecast_task(ForecastData(data=str(main), test_data=str(test), horizon=12),
                            ForecasterConfig(layers=1, hidden=8), log=lambda *a: None)
    task = build_forecast_task(ForecastData(data=str(main), test_data=str(test), horizon=12,
                                            val_fraction=0.12),
                               ForecasterConfig(layers=1, hidden=8), log=lambda *a: None)
    assert task.season == 12


def test_step_numbers_past_9999_continue_a_series(tmp_path):
    """Steps 1000-9999 read as years and 10000 does not: a continuing file of step numbers was
    refused as a date that does not read."""
    from rnnkit.data.series_continues import check_continues
    path = tmp_path / "next.csv"
    path.write_text("step,value\n" + "".join(f"{i},1\n" for i in range(10000, 10012)))
    check_continues([str(i) for i in range(9000, 10000)], read_series_file(path))


def test_the_steps_ahead_are_dated_as_the_series_steps():
    from rnnkit.data.dates import next_labels
    assert next_labels(months(30), 2) == ["1992-07", "1992-08"]
    assert next_labels(["2000-Q1", "2000-Q2", "2000-Q3"], 2) == ["2000-Q4", "2001-Q1"]
    assert next_labels(["2020-01-01 00:00", "2020-01-01 01:00"], 1) == ["2020-01-01 02:00"]
    assert next_labels(["2020-01-06", "2020-01-07", "2020-01-10"], 1) is None   # uneven
    assert next_labels(["0", "2", "4"], 2) == ["6", "8"] and next_labels(["x", "y"], 1) is None


def test_a_training_part_of_no_seasonal_naive_error_is_warned_about(tmp_path, capsys):
    """Its MASE is divided by 1 (the data's scale): said, where it went unsaid."""
    path = write_dated(tmp_path, months(144), values=[5.0] * 128 + [50.0 + i for i in range(16)])
    build_forecast_task(ForecastData(data=str(path), window=12, horizon=4),
                        ForecasterConfig(layers=1, hidden=8), log=lambda *a: None)
    assert "column 'value': its training part repeats every" in capsys.readouterr().err


def test_the_steps_ahead_are_never_a_date_that_does_not_exist_or_an_offset_that_changes():
    from rnnkit.data.dates import next_labels
    assert next_labels([f"2020-{m:02d}-30" for m in range(3, 13)], 3) is None   # 2021-02-30
    assert next_labels(["2020-01-31", "2020-03-31", "2020-05-31", "2020-07-31"], 2) is None
    assert next_labels(["2020-03-28T00:00:00+01:00", "2020-03-29T00:00:00+02:00"], 1) is None
    assert next_labels(["9999-11", "9999-12"], 1) is None                   # an internal error
    assert next_labels(["9999-12-30", "9999-12-31"], 1) is None             # an OverflowError


def test_the_steps_ahead_are_written_as_the_series_writes_its_steps():
    """ISO weeks were written as the dates of their Mondays, quarters as their first days, month
    names as ISO dates, and labels with a UTC offset were not written at all (+1, +2, ...)."""
    from rnnkit.data.dates import next_labels
    assert next_labels(["2015-W51", "2015-W52", "2015-W53"], 2) == ["2016-W01", "2016-W02"]
    assert next_labels(["2016W01", "2016W02"], 1) == ["2016W03"]
    assert next_labels(["Q3 1999", "Q4 1999"], 1) == ["Q1 2000"]
    assert next_labels(["Nov 2020", "Dec 2020"], 2) == ["Jan 2021", "Feb 2021"]
    midnights = [f"2020-01-0{d}T00:00:00+02:00" for d in (1, 2, 3)]   # daily, local midnight
    assert next_labels(midnights, 2) == ["2020-01-04T00:00:00+02:00", "2020-01-05T00:00:00+02:00"]
    assert next_labels(["2020-01-01T05:00:00+01:00", "2020-01-01T06:00:00+01:00"], 1) \
        == ["2020-01-01T07:00:00+01:00"]
    assert next_labels(["2020-01-01 05:00Z", "2020-01-01 06:00Z"], 1) == ["2020-01-01 07:00Z"]
    assert next_labels([f"2020-{m:02d}-28" for m in range(1, 13)], 2) == ["2021-01-28",
                                                                            "2021-02-28"]
    assert next_labels(["0998-12", "0999-01"], 1) == ["0999-02"]   # a year before 1000 (was
    assert next_labels(["Nov 0999", "Dec 0999"], 1) == ["Jan 1000"]   # "0999-02-01")


def test_slashed_dates_that_read_evenly_both_ways_are_said(tmp_path):
    """01/02/2021 .. 12/02/2021 read as monthly dates on the 2nd without a word, where February's
    first twelve days read as evenly: a short European daily file became a monthly one."""
    (season, freq), warnings = season_of(tmp_path, [f"{i:02d}/02/2021" for i in range(1, 13)])
    assert freq == "monthly" and len(warnings) == 1
    assert "read as month/day (no number past 12" in warnings[0]
    assert "but read as day/month they are as regular a series" in warnings[0]
    # two years of the same: only monthly reads evenly, nothing to say
    (season, freq), warnings = season_of(tmp_path, [f"{m:02d}/02/{y}" for y in (2020, 2021)
                                                    for m in range(1, 13)])
    assert freq == "monthly" and not warnings


def test_step_numbers_are_not_tried_as_every_date_format(tmp_path, monkeypatch):
    """A step,value file's labels were each tried against the 24 strptime formats, none of
    which reads digits alone: 200,000 steps took 34 s to read, dates 5 s."""
    import rnnkit.data.dates as dates
    tried = []

    class Counted(datetime):
        @classmethod
        def strptime(cls, label, fmt):
            tried.append(label)
            return datetime.strptime(label, fmt)
    monkeypatch.setattr(dates, "datetime", Counted)
    path = tmp_path / "steps.csv"
    path.write_text("step,value\n" + "".join(f"{i},{i % 7}\n" for i in range(1, 301)))
    f = read_series_file(path)
    assert infer_season(f, lambda *a: None) == (1, "") and len(f.labels) == 300
    assert not [x for x in tried if x.isdigit()] and parse_date("123456") is None
    assert parse_date("1990") == datetime(1990, 1, 1)
    assert parse_date("03.2020") == datetime(2020, 3, 1)            # the formats still read
