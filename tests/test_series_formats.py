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
    with pytest.raises(DataError, match=r"s.csv: 5 missing or NaN value\(s\) .* give --fill "
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
    assert "give --fill linear" in capsys.readouterr().err
    assert main(argv + ["--fill", "linear"]) == 0
    assert "9 missing value(s) filled (linear)" in capsys.readouterr().err
