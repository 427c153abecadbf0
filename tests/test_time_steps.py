"""Time columns beyond plain dates: step numbers out of order, newest first or repeated; dated
rows that keep some steps of each day or year (trading hours, a season's months); day/month
dates out of order under --season; a dated file after a run counted in steps."""
from datetime import datetime, timedelta

import pytest

from rnnkit.data import DataError
from rnnkit.data.dates import infer_season
from rnnkit.data.series import read_series_file
from rnnkit.data.series_continues import check_continues


def write(tmp_path, labels, name="s.csv", header="t,value"):
    path = tmp_path / name
    path.write_text(header + "\n" + "".join(f"{t},{10 + i % 7 + 0.5 * i}\n"
                                            for i, t in enumerate(labels)))
    return path


def season(path, given=False):
    warnings = []
    return infer_season(read_series_file(path), warnings.append, given), warnings


def test_step_numbers_that_fall_are_read_in_file_order_and_said(tmp_path):
    """A countdown (days to expiry, ages before present) runs forward in time; step numbers
    newest first are said, not guessed: turned round, a countdown would read backwards."""
    f = read_series_file(write(tmp_path, [str(t) for t in range(119, -1, -1)]))
    assert f.labels[:2] == ["119", "118"] and f.lines[:2] == [2, 3]
    assert any("falls row by row ('119', '118', ...): read in file order" in n for n in f.notes)


def steps(n, swap=None, twice=None):
    labels = [str(t) for t in range(n)]
    if swap is not None:
        labels[swap], labels[swap + 1] = labels[swap + 1], labels[swap]
    if twice is not None:
        labels[twice] = labels[twice - 1]
    return labels


@pytest.mark.parametrize("labels, line, how", [
    (steps(60, swap=50), 53, "'50' does not come after '51'"),
    (steps(60, twice=40), 42, "'39' repeats '39'"),
    ([str(44000 + t) for t in range(30)][:20] + ["44019"] + [str(44021 + t) for t in range(9)],
     22, "'44019' repeats '44019'"),
])
def test_step_numbers_out_of_order_or_twice_are_refused_by_line(tmp_path, labels, line, how):
    for given in (False, True):
        with pytest.raises(DataError, match=rf"s.csv:{line}: {how}; the time column counts"):
            season(write(tmp_path, labels), given)


@pytest.mark.parametrize("labels", [
    [str(h % 24) for h in range(72)],                      # the hour of the day, again and again
    [str(m % 12 + 1) for m in range(48)],                  # month numbers
    [str((i * 37) % 101) for i in range(60)],              # a quantity, ids in no order
    [str(t) for t in range(60, 0, -1)],                    # a countdown
])
def test_whole_numbers_that_are_no_steps_are_read_as_before(tmp_path, labels):
    for given in (False, True):
        assert season(write(tmp_path, labels), given)[0] == (1, "")


def test_date_serials_say_what_they_may_be(tmp_path):
    (m, _), warned = season(write(tmp_path, [str(43831 + i) for i in range(30)]))
    assert m == 1 and "may be a spreadsheet's date serials" in warned[0]


def hours(days, first=9, last=15, weekdays=5):
    t0 = datetime(2024, 1, 1)          # a Monday
    return [(t0 + timedelta(days=d, hours=h)).strftime("%Y-%m-%d %H:%M")
            for d in range(days) if (t0 + timedelta(days=d)).weekday() < weekdays
            for h in range(first, last + 1)]


def test_a_season_of_the_rows_a_day_or_year_keeps(tmp_path):
    """Trading hours 09:00-15:00 were season 24 from the one-hour step; April to October
    monthly, 12: the pattern repeats every 7 rows."""
    (m, name), warned = season(write(tmp_path, hours(28)))
    assert (m, name) == (7, "hourly (7 a day)") and "7 a day (the file skips" in warned[0]
    months = [f"{y}-{mo:02d}" for y in range(2015, 2022) for mo in range(4, 11)]
    assert season(write(tmp_path, months, "m.csv"))[0] == (7, "monthly (7 a year)")
    (m, name), warned = season(write(tmp_path, hours(28, 0, 23, 7), "h.csv"))   # whole days
    assert (m, name, warned) == (24, "hourly", [])
    other = [h for i, h in enumerate(hours(28, 0, 23, 7)) if i % 24 != (i // 24) % 24]
    assert season(write(tmp_path, other, "o.csv"))[0] == (24, "hourly")   # another hour a day
    gappy = [h for i, h in enumerate(hours(28, 0, 23, 7)) if i not in (30, 100)]   # two gaps
    (m, name), warned = season(write(tmp_path, gappy, "g.csv"))
    assert (m, name) == (24, "hourly") and "2 uneven step(s)" in warned[0]


def test_day_month_dates_out_of_order_either_way_are_refused_under_season(tmp_path):
    """Dates that read as day/month or month/day asked for --season; given it, rows out of
    order under both readings trained."""
    labels = [f"{d:02d}/{m:02d}/2020" for m in range(1, 13) for d in (1, 5, 9)]
    labels[10], labels[20] = labels[20], labels[10]
    with pytest.raises(DataError, match=r"s.csv:\d+: .* read as day/month or as month/day"):
        season(write(tmp_path, labels), given=True)
    assert season(write(tmp_path, sorted(labels, key=lambda x: x[3:5] + x[:2]),
                        "ok.csv"), given=True)[0] == (1, "")


def test_a_dated_file_does_not_continue_a_run_counted_in_steps(tmp_path):
    series = [str(44000 + i) for i in range(31)]
    part = read_series_file(write(tmp_path, ["2025-06-01", "2025-06-02"], "iso.csv"))
    with pytest.raises(DataError, match=r"iso.csv:2: '2025-06-01' is a date, where the series' "
                                        r"time column counts steps \(its last '44030'\)"):
        check_continues(series, part)
    check_continues(series, read_series_file(write(tmp_path, ["44031", "44032"], "next.csv")))
    counted = [str(i) for i in range(31)]   # a file without times: its rows counted 0, 1, ...
    check_continues(counted, part)
    years = [str(1990 + i) for i in range(31)]               # years: whole numbers and dates
    check_continues(years, read_series_file(write(tmp_path, ["2021", "2022"], "y.csv")))


def test_values_float32_rounds_coarsely_are_noted(tmp_path):
    """123456818.95 was kept as 123456816 without a word, and scored so."""
    path = tmp_path / "big.csv"
    path.write_text("t,value\n" + "".join(f"{i},{123456789 + 3 * (i % 7) + 0.95:.2f}\n"
                                          for i in range(60)))
    note, = read_series_file(path).notes
    assert "float32's 7 significant digits" in note and "such as 123457000 first" in note
    small = tmp_path / "small.csv"
    small.write_text("t,value\n" + "".join(f"{i},{1234.5 + 3 * (i % 7) + 0.95:.2f}\n"
                                            for i in range(60)))
    assert read_series_file(small).notes == []


def test_an_hour_twice_in_local_time_says_daylight_saving(tmp_path):
    labels = [f"2021-10-31 {h:02d}:00" for h in (0, 1, 2, 2, 3)]
    with pytest.raises(DataError, match=r"s.csv:5: '2021-10-31 02:00' repeats '2021-10-31 02:00'"
                                        r"; .* \(a clock set back an hour for daylight saving"):
        season(write(tmp_path, labels))
    with pytest.raises(DataError, match=r"'1990-06' repeats '1990-06'; a series must be in time "
                                        r"order, one row per step$"):
        season(write(tmp_path, ["1990-05", "1990-06", "1990-06"], "m.csv"))
    with pytest.raises(DataError, match=r"'2021-03-01 18:00'; a series must be in time order, "
                                        r"one row per step$"):    # no clock change at 18:00
        season(write(tmp_path, [f"2021-03-01 {h}:00" for h in (16, 17, 18, 18)], "e.csv"))


def test_a_season_given_against_the_dates_is_said(tmp_path):
    from rnnkit.models.forecaster import ForecasterConfig
    from rnnkit.tasks.forecast import ForecastData, build_forecast_task
    days = [f"2020-{1 + i // 28:02d}-{1 + i % 28:02d}" for i in range(28 * 8)]
    path = write(tmp_path, days, header="date,value")
    for season, said in ((12, True), (14, False), (7, False)):
        lines = []
        build_forecast_task(ForecastData(data=str(path), season=season),
                            ForecasterConfig(hidden=4), log=lines.append)
        assert any(f"--season {season}, where the daily dates' season is 7" in x
                   for x in lines) is said
