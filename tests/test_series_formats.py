"""Series files as users have them: more date forms (month names, quarters first, ISO weeks,
Unix time), a time column that is not the first, pandas' re-read index, business days, and a
spreadsheet's semicolons with thousands separators."""
from datetime import datetime, timedelta

import pytest

from rnnkit.data import DataError
from rnnkit.data.dates import infer_season
from rnnkit.data.series import read_series_file

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]


def season(path):
    warnings = []
    return infer_season(read_series_file(path), warnings.append), warnings


def write(tmp_path, text, name="s.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def dated(tmp_path, labels, head="date,value"):
    return write(tmp_path, head + "\n" + "".join(f"{a},{i + 1}\n" for i, a in enumerate(labels)))


@pytest.mark.parametrize("labels, expected", [
    ([f"{MONTHS[i % 12]} {1949 + i // 12}" for i in range(30)], (12, "monthly")),
    ([f"{MONTHS[i % 12][:3]}-{1949 + i // 12}" for i in range(30)], (12, "monthly")),
    ([f"{i % 12 + 1:02d}/{1949 + i // 12}" for i in range(30)], (12, "monthly")),
    ([f"Q{i % 4 + 1} {1980 + i // 4}" for i in range(20)], (4, "quarterly")),
    ([f"Q{i % 4 + 1}-{1980 + i // 4}" for i in range(20)], (4, "quarterly")),
    ([f"2015-W{i + 1:02d}" for i in range(30)], (52, "weekly")),
    ([str(1577836800 + 86400 * i) for i in range(30)], (7, "daily")),            # Unix seconds
    ([str(1577836800000 + 3600000 * i) for i in range(60)], (24, "hourly")),     # milliseconds
])
def test_more_date_forms(tmp_path, labels, expected):
    (m, freq), warnings = season(dated(tmp_path, labels))
    assert (m, freq) == expected and not warnings


def test_unix_months(tmp_path):
    stamps = [str(int((datetime(1949 + i // 12, i % 12 + 1, 1) - datetime(1970, 1, 1))
                      .total_seconds())) for i in range(30)]
    assert season(dated(tmp_path, stamps))[0] == (12, "monthly")


def test_business_days_have_a_season_of_five(tmp_path):
    start = datetime(2024, 1, 1)                                 # a Monday
    days = [start + timedelta(days=d) for d in range(70)]
    labels = [d.strftime("%Y-%m-%d") for d in days if d.weekday() < 5]
    (m, freq), warnings = season(dated(tmp_path, labels))
    assert (m, freq) == (5, "business-day") and not warnings
    holiday = labels[:10] + labels[11:]                          # a Thursday off
    (m, freq), warnings = season(dated(tmp_path, holiday))
    assert (m, freq) == (5, "business-day") and len(warnings) == 1


@pytest.mark.parametrize("head, row", [("id,date,value", "{i},{d},{v}"),
                                       ("date_id,value,date", None)])
def test_a_date_column_that_is_not_the_first(tmp_path, head, row):
    labels = [f"{1949 + i // 12}-{i % 12 + 1:02d}" for i in range(30)]
    if row is None:
        text = head + "\n" + "".join(f"{i},{i + 1},{d}\n" for i, d in enumerate(labels))
        path = write(tmp_path, text)
        f = read_series_file(path, "value")
    else:
        text = head + "\n" + "".join(row.format(i=i + 1, d=d, v=i + 1) + "\n"
                                     for i, d in enumerate(labels))
        path = write(tmp_path, text)
        f = read_series_file(path)
    assert f.labels == labels and f.names == ["value"]
    assert infer_season(f, print) == (12, "monthly")


def test_pandas_reread_index_is_left_out(tmp_path):
    labels = [f"{1949 + i // 12}-{i % 12 + 1:02d}" for i in range(30)]
    path = write(tmp_path, "Unnamed: 0,Date,Passengers\n"
                 + "".join(f"{i},{d},{i + 100}\n" for i, d in enumerate(labels)))
    f = read_series_file(path)
    assert f.labels == labels and f.names == ["Passengers"]


def test_semicolons_with_dots_between_thousands(tmp_path):
    f = read_series_file(write(tmp_path, "Monat;Umsatz\n2017-06;990\n2017-07;1.000\n"
                                         "2017-08;1.010\n2017-09;12.500.000\n"))
    assert f.values[:, 0].tolist() == [990, 1000, 1010, 12500000]
    f = read_series_file(write(tmp_path, "Monat;Umsatz\n2017-06;1.000\n2017-07;2,5\n", "c.csv"))
    assert f.values[:, 0].tolist() == [1000, 2.5]
    f = read_series_file(write(tmp_path, "t;x\n1;0.125\n2;1.5\n3;2.000\n", "p.csv"))
    assert f.values[:, 0].tolist() == [0.125, 1.5, 2.0]                    # decimal points
    f = read_series_file(write(tmp_path, "t;x\n1;1234\n2;1.500\n", "q.csv"))
    assert f.values[:, 0].tolist() == [1234, 1.5]
    with pytest.raises(DataError, match=r"a.csv:2: column 'x' holds '362.000' and only numbers "
                                        r"like it: dots between thousands or decimal points"):
        read_series_file(write(tmp_path, "t;x\n1;362.000\n2;363.500\n", "a.csv"))


def test_a_semicolon_header_holding_a_comma(tmp_path):
    f = read_series_file(write(tmp_path, "Monat;Umsatz (Tsd., EUR)\n2015-01;100\n2015-02;1,5\n"))
    assert f.names == ["Umsatz (Tsd., EUR)"] and f.values[:, 0].tolist() == [100, 1.5]
    assert f.labels == ["2015-01", "2015-02"]


def test_missing_values_filled_on_request(tmp_path):
    path = write(tmp_path, "date,a,b\n2020-01,,1\n2020-02,2,\n2020-03,,\n2020-04,8,4\n"
                           "2020-05,,5\n")
    with pytest.raises(DataError, match=r"s.csv: 5 missing or NaN value\(s\) .* train with --fill "
                                        r"linear"):
        read_series_file(path, "a,b")
    f = read_series_file(path, "a,b", fill="linear")
    assert f.filled == 5
    assert f.values.tolist() == [[2, 1], [2, 2], [5, 3], [8, 4], [8, 5]]
    f = read_series_file(path, "a,b", fill="previous")
    assert f.values.tolist() == [[2, 1], [2, 1], [2, 1], [8, 4], [8, 5]]
    empty = write(tmp_path, "date,a\n2020-01,\n2020-02,NA\n", "e.csv")
    with pytest.raises(DataError, match=r"e.csv: column 'a' holds no value to fill from"):
        read_series_file(empty, fill="linear")


def test_missing_values_filled_in_long_form(tmp_path):
    path = write(tmp_path, "date,id,v\n2020-01,x,1\n2020-01,y,\n2020-02,x,\n2020-02,y,2\n"
                           "2020-03,x,3\n2020-03,y,4\n")
    with pytest.raises(DataError, match=r"s.csv:3: series 'y' at '2020-01': a missing"):
        read_series_file(path, series_column="id")
    f = read_series_file(path, series_column="id", fill="linear")
    assert f.names == ["x", "y"] and f.values.tolist() == [[1, 2], [2, 2], [3, 4]]


def test_fill_from_the_command_line(tmp_path, capsys):
    from rnnkit.cli.main import main
    rows = "".join(f"{1990 + i // 12}-{i % 12 + 1:02d},{'' if i % 7 == 3 else 10 + i % 12}\n"
                   for i in range(60))
    path = write(tmp_path, "date,value\n" + rows)
    argv = ["train", "forecast", "--data", str(path), "--out", str(tmp_path / "run"),
            "--horizon", "3", "--max-steps", "1", "--quiet"]
    assert main(argv) == 2
    assert "train with --fill linear" in capsys.readouterr().err
    assert main(argv + ["--fill", "linear"]) == 0
    assert "9 missing value(s) filled (linear)" in capsys.readouterr().err


# ---------------------------------------------------------------- files as sites hand them out
def month_labels(n, year=2000):
    return [f"{year + i // 12}-{i % 12 + 1:02d}" for i in range(n)]


def test_a_file_without_a_header_keeps_its_first_row(tmp_path):
    rows = "".join(f"{m}-01,{100 + i}.0\n" for i, m in enumerate(month_labels(30)))
    f = read_series_file(write(tmp_path, rows))
    assert f.names == ["column2"] and len(f.values) == 30 and f.values[0, 0] == 100
    assert infer_season(f, print) == (12, "monthly")


def test_a_price_file_forecasts_its_close(tmp_path):
    rows = "".join(f"2023-01-{d:02d},1,2,0.5,{d}.5,{d}.4,1000\n" for d in range(2, 28))
    f = read_series_file(write(tmp_path, "Date,Open,High,Low,Close,Adj Close,Volume\n" + rows))
    assert f.names == ["Adj Close"] and f.values[0, 0] == pytest.approx(2.4)
    rows = "".join(f"2023-01-{d:02d},1,2,0.5,{d}.5,1000,0.0,0.0\n" for d in range(2, 28))
    f = read_series_file(write(tmp_path, "Date,Open,High,Low,Close,Volume,Dividends,"
                                         "Stock Splits\n" + rows, "yf.csv"))
    assert f.names == ["Close"]


def test_years_as_column_names_are_refused(tmp_path):
    text = "Country Name,Code,1960,1961,1962,1963\nA,AAA,1,2,3,4\nB,BBB,5,6,7,8\n"
    with pytest.raises(DataError, match=r"s.csv:1: the header names times \('1960', '1961', ... "
                                        r"'1963'\): a wide table"):
        read_series_file(write(tmp_path, text))


def test_a_year_by_month_table_is_a_monthly_series(tmp_path):
    head = "Year,Jan,Feb,Mar,Apr,May,Jun,Jul,Aug,Sep,Oct,Nov,Dec,Annual\n"
    rows = "".join(f"{1990 + y}," + ",".join(str(12 * y + m) for m in range(12)) + ",x\n"
                   for y in range(3))
    rows += "1993,36,37," + ",".join(["***"] * 10) + ",\n"          # a year not yet over
    f = read_series_file(write(tmp_path, head + rows))
    assert f.labels[:2] == ["1990-01", "1990-02"] and f.labels[-1] == "1993-02"
    assert f.values[:, 0].tolist() == list(range(38))
    assert infer_season(f, print) == (12, "monthly")


def test_year_and_month_columns(tmp_path):
    text = "year,month,decimal date,average\n" + "".join(
        f"{1958 + (i + 2) // 12},{(i + 2) % 12 + 1},{1958.2 + i / 12:.4f},{315 + i}\n"
        for i in range(30))
    f = read_series_file(write(tmp_path, text), "average")
    assert f.labels[:2] == ["1958-03", "1958-04"] and infer_season(f, print) == (12, "monthly")
    quarters = "year,quarter,realgdp\n" + "".join(f"{1959 + i // 4}.0,{i % 4 + 1}.0,{i}\n"
                                                   for i in range(12))
    f = read_series_file(write(tmp_path, quarters, "q.csv"))
    assert f.labels[:2] == ["1959-Q1", "1959-Q2"] and infer_season(f, print) == (4, "quarterly")


@pytest.mark.parametrize("marker", [".", "#N/A", "?", ":", "-", "NA", "n/a"])
def test_missing_value_markers(tmp_path, marker):
    text = "DATE,UNRATE\n" + "".join(f"{m}-01,{marker if i == 5 else 4 + i / 10}\n"
                                     for i, m in enumerate(month_labels(12)))
    with pytest.raises(DataError, match=r"1 missing or NaN value\(s\) .* line\(s\) 7"):
        read_series_file(write(tmp_path, text))
    assert read_series_file(write(tmp_path, text), fill="linear").values[5, 0] == pytest.approx(4.5)


def test_dates_at_local_midnight_keep_their_day(tmp_path):
    """yfinance in Frankfurt: Monday 00:00+01:00 is Sunday 23:00 in UTC."""
    start = datetime(2023, 1, 2)
    days = [start + timedelta(days=d) for d in range(40)]
    labels = [f"{d:%Y-%m-%d} 00:00:00+01:00" for d in days if d.weekday() < 5]
    (m, freq), warnings = season(dated(tmp_path, labels))
    assert (m, freq) == (5, "business-day") and not warnings


@pytest.mark.parametrize("fmt", ["{d:02d}/03/2023 {h:02d}:00", "3/{d}/2023 {h}:00"])
def test_hours_within_a_month_read_day_and_month_right(tmp_path, fmt):
    labels = [fmt.format(d=d, h=h) for d in range(6, 12) for h in range(24)]
    f = read_series_file(dated(tmp_path, labels))
    warnings = []
    assert infer_season(f, warnings.append) == (24, "hourly") and not warnings


def test_decimal_years_from_r(tmp_path):
    text = '"","time","value"\n' + "".join(f'"{i + 1}",{1949 + i / 12:.11g},{100 + i}\n'
                                            for i in range(30))
    f = read_series_file(write(tmp_path, text))
    assert f.labels[1] == "1949.0833333" and infer_season(f, print) == (12, "monthly")


def test_long_form_with_the_time_in_a_later_column(tmp_path):
    text = "Entity,Code,Year,CO2\n" + "".join(f"{e},{c},{1950 + y},{y + k}\n"
                                              for k, (e, c) in enumerate([("France", "FRA"),
                                                                          ("Germany", "DEU")])
                                              for y in range(5))
    f = read_series_file(write(tmp_path, text), series_column="Entity")
    assert f.names == ["France", "Germany"] and f.labels == [str(1950 + y) for y in range(5)]
    assert f.values[:, 1].tolist() == [1, 2, 3, 4, 5]


def test_preambles_comments_and_second_header_rows(tmp_path):
    weeks = [f"2022-{1 + i // 4:02d}-{1 + 7 * (i % 4):02d}" for i in range(12)]
    trends = "Category: All categories\n\nWeek,rnn: (Worldwide)\n" + "".join(
        f"{w},{40 + i}\n" for i, w in enumerate(weeks))
    f = read_series_file(write(tmp_path, trends))
    assert f.names == ["rnn: (Worldwide)"] and len(f.values) == 12
    noaa = "# USE OF NOAA GML DATA\n# -----\nmonth,average\n" + "".join(
        f"{m},{315 + i}\n" for i, m in enumerate(month_labels(12)))
    assert read_series_file(write(tmp_path, noaa, "n.csv")).names == ["average"]
    yf = "Price,Adj Close,Close,Open\nTicker,AAPL,AAPL,AAPL\nDate,,,\n" + "".join(
        f"2023-01-{d:02d},{d}.1,{d}.2,{d}.3\n" for d in range(2, 20))
    f = read_series_file(write(tmp_path, yf, "yf.csv"), "Close")
    assert f.values[0, 0] == pytest.approx(2.2) and f.labels[0] == "2023-01-02"


def test_a_constant_column_is_warned_about(tmp_path, capsys):
    from rnnkit.cli.main import main
    rows = "".join(f"{m},{10 + i % 12},0.0\n" for i, m in enumerate(month_labels(60)))
    path = write(tmp_path, "date,value,splits\n" + rows)
    assert main(["train", "forecast", "--data", str(path), "--out", str(tmp_path / "run"),
                 "--horizon", "3", "--max-steps", "1", "--quiet"]) == 0
    assert "column 'splits' holds the same value on every row" in capsys.readouterr().err


def test_newest_first_rows_are_read_in_time_order(tmp_path, capsys):
    labels = month_labels(30)[::-1]
    text = '"Période";"Indice";"Codes"\n' + "".join(f'"{m}";"{100 + i}.5";"A"\n'
                                                    for i, m in enumerate(labels))
    f = read_series_file(write(tmp_path, text))
    assert f.names == ["Indice"] and f.labels == month_labels(30)
    assert f.values[0, 0] == 129.5 and f.lines[0] == 31
    assert f.notes == ["its rows run newest first ('2002-06' on line 2): read in time order"]


def test_a_footer_line_is_left_out(tmp_path):
    rows = "".join(f"{m}-01,{10 + i}\n" for i, m in enumerate(month_labels(24)))
    f = read_series_file(write(tmp_path, '"Date","Temp"\n' + rows +
                               "\nDaily minimum temperatures in Melbourne, Australia, 1981-1990\n"))
    assert len(f.values) == 24 and "is no row of the table" in f.notes[0]
    with pytest.raises(DataError, match=r"s.csv:26: expected 2 fields"):   # a cut last row
        read_series_file(write(tmp_path, '"Date","Temp"\n' + rows + "2002-01-01\n"))


def test_twelve_hour_clock_times_and_a_last_column_of_flags(tmp_path):
    hours = [datetime(2023, 1, 1, 5) + timedelta(hours=h) for h in range(60)]
    clock = lambda t: f"{t.month}/{t.day}/{t.year} {(t.hour - 1) % 12 + 1}:00:00 " \
                      f"{'AM' if t.hour < 12 else 'PM'}"
    text = "datetime_beginning_utc,mw,is_verified\n" + "".join(
        f"{clock(t)},{1000 + i},True\n" for i, t in enumerate(hours))
    f = read_series_file(write(tmp_path, text))
    assert f.names == ["mw"]
    warnings = []
    assert infer_season(f, warnings.append) == (24, "hourly") and not warnings


def test_quoted_thousands_in_a_comma_file(tmp_path):
    text = 'Month,Revenue\n' + "".join(f'{m},"{10 + i},{200 + i}.50"\n'
                                       for i, m in enumerate(month_labels(12)))
    assert read_series_file(write(tmp_path, text)).values[0, 0] == 10200.5


def test_a_continuation_in_slashed_dates_reads_in_the_order_that_follows(tmp_path):
    from rnnkit.data.series_continues import check_continues
    series = [f"2023-05-{d:02d}" for d in range(1, 32)]
    later = write(tmp_path, "Date,Temp\n" + "".join(f"{d:02d}/06/2023,{d}\n"
                                                    for d in range(1, 11)), "later.csv")
    check_continues(series, read_series_file(later))          # 1 to 10 June, not 6 January...
    wrong = write(tmp_path, "Date,Temp\n" + "".join(f"{d:02d}/07/2023,{d}\n"
                                                    for d in range(1, 11)), "july.csv")
    with pytest.raises(DataError, match=r"july.csv:2: '01/07/2023' comes"):
        check_continues(series, read_series_file(wrong))


def test_what_the_new_rules_must_leave_alone(tmp_path):
    """Files the rules above must not misread: numpy's column numbers as a header, a year
    column beside month and day columns, a pressure of 1013, station numbers as column names,
    monthly readings taken at varying times, Excel's #N/A in a one-column file, a hashtag."""
    f = read_series_file(write(tmp_path, "0,1,2\n0.5,1.5,2.5\n1.5,2.5,3.5\n", "np.csv"))
    assert f.names == ["2"] and f.values[:, 0].tolist() == [2.5, 3.5] and not f.notes
    pm = "No,year,month,day,hour,pm2.5\n" + "".join(f"{i + 1},2010,1,1,{i},{100 + i}\n"
                                                   for i in range(6))
    f = read_series_file(write(tmp_path, pm, "pm.csv"))
    assert f.labels == [str(i) for i in range(1, 7)] and f.names == ["pm2.5"]
    air = "time,pressure,temp\n" + "".join(f"{i},{1013 - i},{20 + i}\n" for i in range(6))
    assert read_series_file(write(tmp_path, air, "air.csv")).labels == [str(i) for i in range(6)]
    stations = "date,1001,1002,1003\n" + "".join(f"{m}-01,1,2,{i}\n"
                                                 for i, m in enumerate(month_labels(6)))
    assert read_series_file(write(tmp_path, stations, "st.csv")).names == ["1003"]
    readings = "Date,kWh\n" + "".join(f"01/{m:02d}/2020 {9 + m}:{m * 4:02d},{m}\n"
                                      for m in range(1, 6))
    f = read_series_file(write(tmp_path, readings, "meter.csv"))
    assert infer_season(f, print) == (12, "monthly")
    na = write(tmp_path, "passengers\n112\n118\n#N/A\n129\n", "na.csv")
    with pytest.raises(DataError, match=r"1 missing or NaN value\(s\) .* line\(s\) 4"):
        read_series_file(na)
    assert read_series_file(na, fill="linear").values[:, 0].tolist() == [112, 118, 123.5, 129]
    assert read_series_file(write(tmp_path, "Datum;Filiale;Umsatz\n2023-01-01;3;1234,50\n"
                                            "2023-01-02;3;1100,25\n", "de.csv")).names == ["Umsatz"]
