"""Series files whose numbers or columns a spreadsheet, R or pandas writes its own way: quoted
decimal commas in a comma file, the time after the value (value,date; sales,day), Excel's sep=
line, and continuations that are not dates after a dated series."""
import pytest

from rnnkit.data import DataError
from rnnkit.data.dates import infer_season
from rnnkit.data.series import read_series_file

from test_series_formats import month_labels, write


def test_quoted_decimal_commas_in_a_comma_file(tmp_path):
    """A spreadsheet in a decimal-comma locale quotes "0,800" in a comma file: it was read as
    800 (thousands), every figure 1,000 times too big, said nowhere."""
    text = "date,rate\n" + "".join(f'{m}-01,"{0.9 + i / 20:.3f}"\n'.replace(".", ",")
                                   for i, m in enumerate(month_labels(12)))
    values = read_series_file(write(tmp_path, text)).values[:, 0]
    assert values[0] == pytest.approx(0.9) and values[-1] == pytest.approx(1.45)
    both = "date,eurusd\n" + "".join(f'{m}-01,"1,{85 + i:03d}"\n'      # 1.085 or 1,085?
                                     for i, m in enumerate(month_labels(12)))
    f = read_series_file(write(tmp_path, both))       # as comma files write them, and said
    assert f.values[0, 0] == 1085 and f.notes == [
        "column 'eurusd': '1,085' and every number like it read with a comma between thousands "
        "(1085), not a decimal comma; write decimal points if it is one"]
    plain = both.replace('"1,085"', "999")                         # 999 beside: thousands
    assert read_series_file(write(tmp_path, plain)).values[1, 0] == 1086


def test_the_time_after_the_value(tmp_path):
    """value,date: the dates were passed over (no season, no order, newest first trained
    backwards), and without --columns the date column was read as the values."""
    rows = [(m, 100 + i) for i, m in enumerate(month_labels(24))]
    f = read_series_file(write(tmp_path, "value,date\n" + "".join(
        f"{v},{m}-01\n" for m, v in reversed(rows))))
    assert f.names == ["value"] and f.labels[0] == f"{rows[0][0]}-01"
    assert f.values[:3, 0].tolist() == [100, 101, 102] and "newest first" in f.notes[0]
    assert infer_season(f, print) == (12, "monthly")
    ids = read_series_file(write(tmp_path, "id,value,date\n" + "".join(   # ids were the time
        f"{k + 1},{v},{m}-01\n" for k, (m, v) in enumerate(reversed(rows)))))
    assert ids.labels == f.labels and ids.values.tolist() == f.values.tolist()


def test_a_dated_series_is_not_continued_by_step_numbers(tmp_path):
    """Step numbers or a spreadsheet's date serials (40179) after ISO dates were not checked:
    the series' first rows were scored as the months after its last."""
    from rnnkit.data.series_continues import check_continues
    series = [f"{m}-01" for m in month_labels(24)]
    for first in ("40179", "0"):
        later = write(tmp_path, "date,value\n" + "".join(f"{int(first) + i},{i}\n"
                                                         for i in range(5)), "later.csv")
        with pytest.raises(DataError, match=rf"later.csv:2: cannot read the date '{first}' "
                                            rf"like the series' last"):
            check_continues(series, read_series_file(later))


def test_excel_s_separator_line(tmp_path):
    """Excel's first line "sep=;" was read as the header ("the last column of the header has
    no name")."""
    text = "sep=;\r\nDatum;Wert\r\n" + "".join(f"01.{i % 12 + 1:02d}.{2010 + i // 12};{i},5\r\n"
                                              for i in range(24))
    f = read_series_file(write(tmp_path, text))
    assert f.names == ["Wert"] and f.lines[0] == 3 and f.values[1, 0] == 1.5


def test_a_value_before_its_step_numbers(tmp_path):
    """sales,day (day 1, 2, 3, ...): the days were read as the series, the sales as its time."""
    text = "sales,day\n" + "".join(f"{1500 + 3 * i}.5,{i + 1}\n" for i in range(31))
    f = read_series_file(write(tmp_path, text))
    assert f.names == ["sales"] and f.labels[:2] == ["1", "2"] and f.values[0, 0] == 1500.5


def test_a_value_first_file_out_of_order_is_refused_by_its_line(tmp_path):
    """Two rows swapped under value,date: the date column was passed over (labels 0..N-1, no
    season, the order never checked) or read as the values."""
    rows = [(m, 100 + i) for i, m in enumerate(month_labels(24))]
    rows[10], rows[11] = rows[11], rows[10]
    path = write(tmp_path, "sales,date\n" + "".join(f"{v},{m}-01\n" for m, v in rows))
    for columns in ("", "sales"):
        f = read_series_file(path, columns)
        assert f.names == ["sales"]
        with pytest.raises(DataError, match=r"s.csv:13: '2000-11-01' does not come after"):
            infer_season(f, print)
