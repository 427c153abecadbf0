"""Task data readers: formats they accept, and errors that name the file and the line."""
import numpy as np
import pytest

from rnnkit.data import DataError
from rnnkit.data.labelled import read_labelled, split_examples
from rnnkit.data.text_tokens import words
from rnnkit.data.series import read_series
from rnnkit.data.tagged import read_tagged
from rnnkit.tasks.forecast import ForecastData, build_forecast_task
from rnnkit.tasks.forecast_scores import baselines
from rnnkit.models.forecaster import ForecasterConfig

from task_fixtures import write_series


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_labelled_tsv_and_csv(tmp_path):
    tsv = write(tmp_path, "a.tsv", "label\ttext\npos\tGood film!\n\nneg\tIt's bad\n")
    assert read_labelled(tsv) == [("pos", "Good film!"), ("neg", "It's bad")]
    csv = write(tmp_path, "a.csv", 'pos,"good, really"\nneg,bad\n')
    assert read_labelled(csv, with_lines=True) == [("pos", "good, really", 1), ("neg", "bad", 2)]
    assert words("It's GOOD!") == ["it's", "good", "!"]


def test_labelled_errors_name_file_and_line(tmp_path):
    bad = write(tmp_path, "b.tsv", "pos\tfine\nno tab here\n")
    with pytest.raises(DataError, match=r"b.tsv:2: expected 'label<TAB>text'"):
        read_labelled(bad)
    with pytest.raises(DataError, match=r"e.tsv:2: empty text"):
        read_labelled(write(tmp_path, "e.tsv", "pos\tfine\nneg\t   \n"))


def test_split_is_fixed_and_disjoint():
    ex = [(str(i % 2), f"text {i}") for i in range(100)]
    a, b = split_examples(ex), split_examples(list(ex))
    assert a == b and [len(p) for p in a] == [80, 10, 10]
    assert not set(a[2]) & set(a[0])


def test_tagged_slash_and_conllu(tmp_path):
    slash = write(tmp_path, "t.txt", "迈向/v  充满/v  1/2/m\n\n中共/nt\n")
    assert read_tagged(slash) == [(["迈向", "充满", "1/2"], ["v", "v", "m"]), (["中共"], ["nt"])]
    conllu = write(tmp_path, "t.conllu", "# sent_id = 1\n1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
                   "1\tdo\tdo\tAUX\t_\t_\t0\troot\t_\t_\n2\tn't\tnot\tPART\t_\t_\t1\tadv\t_\t_\n\n"
                   "1\tHi\thi\tINTJ\t_\t_\t0\troot\t_\t_\n")
    assert read_tagged(conllu) == [(["do", "n't"], ["AUX", "PART"]), (["Hi"], ["INTJ"])]
    with pytest.raises(DataError, match=r"bad.txt:2: expected 'word/tag', got 'dog'"):
        read_tagged(write(tmp_path, "bad.txt", "the/D cat/N\nthe/D dog\n"))
    with pytest.raises(DataError, match=r"bad.conllu:1: CoNLL-U needs 10"):
        read_tagged(write(tmp_path, "bad.conllu", "1\tdo\tAUX\n"))


def test_series_nan_and_bad_values_say_how_many_and_where(tmp_path):
    path = write(tmp_path, "s.csv", "t,a,b\n0,1,2\n1,,3\n2,nan,4\n3,5,\n")
    with pytest.raises(DataError, match=r"s.csv: 3 missing or NaN value\(s\) \(a: 2, b: 1\) on "
                                        r"line\(s\) 3, 4, 5"):
        read_series(path, "a,b")
    with pytest.raises(DataError, match=r"x.csv:3: column 'v' holds 'abc'"):
        read_series(write(tmp_path, "x.csv", "t,v\n0,1\n1,abc\n"))
    y, names, labels = read_series(write(tmp_path, "ok.csv", "t,v\n1990,1.5\n1991,2\n"))
    assert names == ["v"] and labels == ["1990", "1991"] and y.shape == (2, 1)


def test_series_shorter_than_a_window(tmp_path):
    path = write_series(tmp_path, n=40)
    with pytest.raises(DataError, match="fewer than window 48 \\+ horizon 12"):
        build_forecast_task(ForecastData(data=str(path), window=48, horizon=12),
                            ForecasterConfig(), log=lambda *a: None)


def test_baselines():
    y = np.arange(30, dtype=float)[:, None]                                   # (N, 1)
    naive, seasonal = baselines(y, 20, 5, 4)
    assert naive[:, 0].tolist() == [19] * 5
    assert seasonal[:, 0].tolist() == [16, 17, 18, 19, 16]
