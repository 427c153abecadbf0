"""One test per defect found in the data readers: non-finite numbers, line numbers after quoted
and odd line ends, quotes never closed, misleading messages."""
import numpy as np
import pytest

from rnnkit.config import ConfigError
from rnnkit.data import DataError, read_text
from rnnkit.data.labelled import own_parts, read_labelled
from rnnkit.data.names import name_pairs
from rnnkit.data.pairs import read_numbered_pairs, read_pairs
from rnnkit.data.series import read_series_file
from rnnkit.data.series_scale import Scaler
from rnnkit.data.tagged import read_tagged
from rnnkit.tasks.cond import Conditions, check_conditions, parse_features
from rnnkit.tasks.tag import TagData


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


# ----------------------------------------------------------------- numbers not finite in float32
@pytest.mark.parametrize("cell, kind", [("1e308", "beyond the float32 range"),
                                        ("-3.5e38", "beyond the float32 range"),
                                        ("inf", "infinite"), ("-Infinity", "infinite")])
def test_series_refuses_numbers_float32_cannot_hold(tmp_path, cell, kind):
    """1e308 passed a float64 check and became inf in float32; inf was called 'missing'."""
    p = write(tmp_path, "s.csv", f"t,v\n1,1\n2,{cell}\n3,4\n")
    with pytest.raises(DataError, match=rf"s.csv:3: column 'v' holds '{cell}', which is {kind}"):
        read_series_file(p)


def test_series_largest_float32_is_read(tmp_path):
    p = write(tmp_path, "s.csv", "t,v\n1,3.4e38\n2,-3.4e38\n")
    assert np.isfinite(read_series_file(p).values).all()


@pytest.mark.parametrize("value", ["nan", "inf", "1e308", "-1e39"])
def test_cond_features_refuse_non_finite(tmp_path, value):
    """NaN features were accepted by `train cond`: every step skipped, no checkpoint."""
    p = write(tmp_path, "f.tsv", f"0.1,0.5\tAnna\n{value},2\tBob\n1,2\tCarl\n")
    with pytest.raises(DataError, match=rf"f.tsv:2: feature vector '{value},2' holds a number "
                                        r"that is not finite as float32"):
        parse_features(read_numbered_pairs(p), p)


def test_cond_validation_file_refuses_non_finite(tmp_path):
    p = write(tmp_path, "v.tsv", "1,2\tAnna\nnan,2\tBob\n")
    with pytest.raises(DataError, match=r"v.tsv:2: feature vector 'nan,2' holds a number"):
        check_conditions(Conditions(features=2), p)


def test_cond_features_of_another_length_name_the_line(tmp_path):
    """The message had no file and no line: 'feature vectors of different lengths: [2, 3]'."""
    p = write(tmp_path, "f.tsv", "1,2\tAnna\n\n1,2,3\tBob\n")
    with pytest.raises(DataError, match=r"f.tsv:3: a feature vector of 3 numbers, expected 2 like "
                                        r"line 1"):
        parse_features(read_numbered_pairs(p), p)


def test_cond_features_are_float32(tmp_path):
    p = write(tmp_path, "f.tsv", "0.1,0.5\tAnna\n-2 3\tBob\n")
    feats = parse_features(read_numbered_pairs(p), p)
    assert feats.dtype.is_floating_point and feats.shape == (2, 2)


def test_scaler_of_large_values_stays_finite():
    """float32 squares overflow from 1.8e19: std was inf, the scaled series all 0, forecasts NaN."""
    y = np.array([[1e20], [2e20], [3e20]], dtype=np.float32)
    s = Scaler.fit(y)
    z = s.transform(y)
    assert np.isfinite(s.std).all() and z.dtype == np.float32
    assert np.allclose(z[:, 0], [-1.2247, 0, 1.2247], atol=1e-4)


# ----------------------------------------------------------------- line numbers
def test_series_quoted_multiline_field_keeps_the_line(tmp_path):
    """A quoted field over two lines shifted every later line number by one."""
    p = write(tmp_path, "s.csv", 't,v\n"a\nb",1\n2,x\n')
    with pytest.raises(DataError, match=r"s.csv:4: column 'v' holds 'x'"):
        read_series_file(p)


def test_labelled_quoted_multiline_field_keeps_the_line(tmp_path):
    p = write(tmp_path, "l.csv", 'pos,"good\nfilm"\nneg,bad\n,oops\n')
    with pytest.raises(DataError, match=r"l.csv:4: empty label"):
        read_labelled(p)
    assert [n for _, _, n in read_labelled(write(tmp_path, "ok.csv", 'pos,"a\nb"\nneg,c\n'),
                                           with_lines=True)] == [1, 3]


def test_form_feed_and_unicode_separators_do_not_end_lines(tmp_path):
    """str.splitlines() split at \\x0c, \\x85, \\u2028...: line numbers no editor shows."""
    p = write(tmp_path, "p.tsv", "a\u2028b\tx\ny\x0cz\tw\nbad\n")
    with pytest.raises(DataError, match=r"p.tsv:3: expected 'source<TAB>target'"):
        read_pairs(p)


def test_pairs_with_a_third_column_say_how_to_keep_two(tmp_path):
    p = write(tmp_path, "deu.txt", "Go.\tGeh.\tsource: a list\n")
    with pytest.raises(DataError, match=r"deu.txt:1: expected 'source<TAB>target' \(one tab\), "
                                        r"got 2 tabs: .*keep the two: cut -f1,2 .*deu.txt$"):
        read_pairs(p)


def test_pairs_with_empty_trailing_fields_are_read_as_classify_reads_them(tmp_path):
    """A spreadsheet's trailing tab was refused as a third column (classify and forecast drop
    it)."""
    assert read_pairs(write(tmp_path, "t.tsv", "Go.\tGeh.\t\nHi.\tHallo.\t \t\n")) == \
        [("Go.", "Geh."), ("Hi.", "Hallo.")]
    assert read_pairs(write(tmp_path, "t.csv", "de,en\nGeh.,Go.,\n")) == [("Geh.", "Go.")]


def test_lone_carriage_returns_end_lines(tmp_path):
    p = write(tmp_path, "p.tsv", b"a\tb\rc\td\rbad\r")
    with pytest.raises(DataError, match=r"p.tsv:3: "):
        read_pairs(p)
    with pytest.raises(DataError, match=r"l.tsv:3: not UTF-8"):
        read_text(write(tmp_path, "l.tsv", b"a\rb\r\n\xff"))


# ----------------------------------------------------------------- quotes
@pytest.mark.parametrize("read, name", [(read_labelled, "l.csv"), (read_series_file, "s.csv")])
def test_unterminated_quote_names_the_line_it_opens(tmp_path, read, name):
    """The quote swallowed the rest of the file: '2 examples are too few', no file, no line."""
    p = write(tmp_path, name, 'pos,1\nneg,"2\npos,3\nneg,4\n')
    with pytest.raises(DataError, match=rf"{name}:2: unterminated quote: the quoted field opened "
                                        r"on this line is never closed \(the file ends inside it, "
                                        r"on line 4\)"):
        read(p)


def test_text_after_a_closing_quote_is_refused(tmp_path):
    """'"great" movie' was read as 'great movie' without a word."""
    p = write(tmp_path, "l.csv", 'pos,fine\nneg,"great" movie\n')
    with pytest.raises(DataError, match=r"l.csv:2: text after the closing quote"):
        read_labelled(p)


@pytest.mark.parametrize("text, line, hint", [
    ("a,b\npos," + "x" * 140_000 + "\n", 2, ""),
    ('a,b\npos,"x\n' + "y" * 140_000 + "\n", 2, "the quoted field opened here runs on to line 3"),
])
def test_over_long_field_is_a_data_error(tmp_path, monkeypatch, text, line, hint):
    """csv's field limit came out as a raw _csv.Error traceback (the limit is 64 Mi characters;
    here Python's default, so that the file stays small)."""
    import rnnkit.data.text
    monkeypatch.setattr(rnnkit.data.text, "FIELD_LIMIT", 131_072)
    p = write(tmp_path, "l.csv", text)
    with pytest.raises(DataError, match=rf"l.csv:{line}: a field longer than 131,072 "
                                        rf"characters.*{hint}"):
        read_labelled(p)


# ----------------------------------------------------------------- misleading messages
def test_tag_column_out_of_range_is_a_config_error(tmp_path):
    """--column -1 read the MISC column and said 'column 0'; --column 10 was an IndexError."""
    p = write(tmp_path, "t.conllu", "1\tw\tl\tNOUN\t_\t_\t0\troot\t_\t_\n")
    for column in (-1, 1, 10):
        with pytest.raises(ConfigError, match=rf"must be in 2..9 \(3: UPOS, 4: XPOS\), got {column}"):
            read_tagged(p, column)
    assert read_tagged(p, 0) == read_tagged(p, 3) == [(["w"], ["NOUN"])]   # 0: UPOS


def test_tag_column_default_is_auto():
    assert TagData().column == 0


def test_conll2003_column_file(tmp_path):
    """CoNLL-2003 style: word and tags in whitespace columns, -DOCSTART- lines and blank lines
    between sentences; the last column unless --column names another."""
    p = write(tmp_path, "ner.txt", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n"
                                   "\nPeter NNP B-NP B-PER\n")
    assert read_tagged(p) == [(["EU", "rejects"], ["B-ORG", "O"]), (["Peter"], ["B-PER"])]
    assert read_tagged(p, 1) == [(["EU", "rejects"], ["NNP", "VBZ"]), (["Peter"], ["NNP"])]
    for column in (4, -1):
        with pytest.raises(DataError, match=rf"ner.txt:3: 4 columns \(the word, then tags in "
                                            rf"1..3\); --column {column} is not one of them"):
            read_tagged(p, column)
    bad = write(tmp_path, "bad.txt", "EU NNP\nrejects VBZ\n\nPeter NNP B-PER\n")
    with pytest.raises(DataError, match=r"bad.txt:4: expected 2 whitespace-separated columns"):
        read_tagged(bad)
    spaced = write(tmp_path, "spaced.conllu.txt", "1 w l NOUN _ _ 0 root _ _\n\n")
    with pytest.raises(DataError, match=r"spaced.conllu.txt:1: this looks like CoNLL-U with spaces"):
        read_tagged(spaced)
    untagged = write(tmp_path, "untagged.txt", "EU _\nrejects _\n\n")
    with pytest.raises(DataError, match=r"untagged.txt:1: token 'EU' has no tag \(column 1"):
        read_tagged(untagged)
    # word/tag sentences, blank lines between, stay word/tag sentences
    slash = write(tmp_path, "slash.txt", "a/x b/y\n\nc/z d/w\n")
    assert read_tagged(slash) == [(["a", "b"], ["x", "y"]), (["c", "d"], ["z", "w"])]


def test_missing_tag_names_the_column_as_the_flag_counts(tmp_path):
    """'column 4' for --column 3: the message counted from 1, the flag from 0."""
    p = write(tmp_path, "t.conllu", "1\tw\tl\t_\tNN\t_\t0\troot\t_\t_\n")
    with pytest.raises(DataError, match=r"t.conllu:1: token '1' has no tag \(UPOS, column 3 "
                                        r"counted from 0, is '_'\)"):
        read_tagged(p, 3)


def test_conllu_with_spaces_for_tabs_says_so(tmp_path):
    p = write(tmp_path, "t.conllu", "1 w l NOUN _ _ 0 root _ _\n")
    with pytest.raises(DataError, match=r"t.conllu:1: .* got 1 \(columns separated by spaces"):
        read_tagged(p)


def test_too_few_examples_to_split_names_the_file():
    class D:
        data, val_data, test_data, split_seed, test_fraction, val_fraction = \
            "two.tsv", "", "", 0, 0.1, 0.1
    with pytest.raises(DataError, match=r"two.tsv: 2 examples are too few for a train/validation/"
                                        r"test split \(1 test, 1 validation, none left"):
        own_parts([("a", "x"), ("b", "y")], D())


def test_labelled_header_after_blank_lines_and_only_a_header(tmp_path):
    p = write(tmp_path, "l.tsv", "\n\nlabel\ttext\npos\tgood\nneg\tbad\n")
    assert read_labelled(p) == [("pos", "good"), ("neg", "bad")]
    with pytest.raises(DataError, match=r"h.tsv: expected at least 2 labelled examples, got 0 "
                                        r"\(only a header\)"):
        read_labelled(write(tmp_path, "h.tsv", "label\ttext\n"))


def test_labelled_header_names_the_order(tmp_path):
    """A header naming the columns in either order: 'text,label' puts the label last in every
    row (a text holding the separator included); an unnamed text-first file is not guessed."""
    p = write(tmp_path, "t.csv", 'text,label\n"good, fun",pos\nbad,neg\n')
    assert read_labelled(p) == [("pos", "good, fun"), ("neg", "bad")]
    p = write(tmp_path, "t.tsv", "Review\tSentiment\ngood fun\tpos\nbad\tneg\n")
    assert read_labelled(p) == [("pos", "good fun"), ("neg", "bad")]
    p = write(tmp_path, "l.csv", "sentiment,review\npos,good\nneg,bad\n")
    assert read_labelled(p) == [("pos", "good"), ("neg", "bad")]
    p = write(tmp_path, "pd.csv", ',text,label\n0,"good, fun",pos\n1,bad,neg\n')   # pandas
    assert read_labelled(p) == [("pos", "good, fun"), ("neg", "bad")]
    p = write(tmp_path, "eu.csv", 'Text;Label\ngood, fun;pos\n"bad; dull";neg\n')   # Excel
    assert read_labelled(p) == [("pos", "good, fun"), ("neg", "bad; dull")]


def test_labelled_header_with_more_columns(tmp_path):
    """Kaggle's id,text,label and a source column after the text: the named two are read, the
    others left out of every row; a row of another width is a one-line error."""
    p = write(tmp_path, "k.csv", 'id,text,label\n17,"good, fun",pos\n18,bad,neg\n')
    assert read_labelled(p) == [("pos", "good, fun"), ("neg", "bad")]
    p = write(tmp_path, "s.tsv", "label\ttext\tsource\npos\tgood fun\timdb\nneg\tbad\timdb\n")
    assert read_labelled(p) == [("pos", "good fun"), ("neg", "bad")]
    p = write(tmp_path, "r.tsv", "label\ttext\tsource\npos\tgood fun\timdb\nneg\tbad\n")
    with pytest.raises(DataError, match=r"r.tsv:3: expected 3 fields like the header, got 2"):
        read_labelled(p)


def test_labelled_json_lines(tmp_path):
    """JSON lines with a text and a label field (a number as label read as its text); a line
    that is no JSON object, or lacks a field, is a one-line error naming file and line."""
    p = write(tmp_path, "d.jsonl", '{"text": "good, fun", "label": 1}\n\n'
                                   '{"Sentence": "bad", "Label": "neg"}\n')
    assert read_labelled(p) == [("1", "good, fun"), ("neg", "bad")]
    assert read_labelled(p, with_lines=True)[1] == ("neg", "bad", 3)
    first = '{"text": "a", "label": 1}\n'
    for second, message in (('{"text": "b"\n', r"not a JSON object"),
                            ('{"text": "b"}\n', r"expected a text field .* got \['text'\]"),
                            ("[1, 2]\n", r"expected a JSON object"),
                            ('{"text": " ", "label": 0}\n', r"empty text for label '0'")):
        with pytest.raises(DataError, match=r"b.jsonl:2: " + message):
            read_labelled(write(tmp_path, "b.jsonl", first + second))


def test_classify_warns_of_labels_differing_in_case(tmp_path, capsys):
    from rnnkit.models.classifier import ClassifierConfig
    from rnnkit.tasks.classify import ClassifyData, build_classify_task
    rows = "".join(f"{['pos', 'Pos', 'neg'][i % 3]}\ta film number {i}\n" for i in range(60))
    build_classify_task(ClassifyData(data=str(write(tmp_path, "c.tsv", rows))),
                        ClassifierConfig(), log=lambda *a: None)
    assert ("c.tsv: labels that differ only in case are different classes: 'Pos' and 'pos'"
            in capsys.readouterr().err)


def test_classify_refuses_mostly_unique_labels(tmp_path):
    """Labels that are nearly all distinct (the text in the label's column): a one-line error
    saying which order is expected, not a model of a thousand classes."""
    from rnnkit.models.classifier import ClassifierConfig
    from rnnkit.tasks.classify import ClassifyData, build_classify_task
    rows = "".join(f"a film number {i} that was {'good' if i % 2 else 'bad'}\t"
                   f"{'pos' if i % 2 else 'neg'}\n" for i in range(100))
    with pytest.raises(DataError, match=r"s.tsv: 100 distinct labels among 100 examples, most of "
                                        r"them once; expected the label first"):
        build_classify_task(ClassifyData(data=str(write(tmp_path, "s.tsv", rows))),
                            ClassifierConfig(), log=lambda *a: None)


def test_pairs_say_which_side_is_empty(tmp_path):
    p = write(tmp_path, "p.tsv", "a\tb\n\tc\n")
    with pytest.raises(DataError, match=r"p.tsv:2: .* got an empty source"):
        read_pairs(p)


def test_series_blank_first_line_and_empty_header(tmp_path):
    """A blank first line was an IndexError; so was a file of empty fields."""
    f = read_series_file(write(tmp_path, "s.csv", "\nv\n1\n2\n"))
    assert f.lines == [3, 4]
    with pytest.raises(DataError, match=r"e.csv: no header and no values"):
        read_series_file(write(tmp_path, "e.csv", ",,\n,\n"))
    with pytest.raises(DataError, match=r"n.csv:1: the last column of the header has no name"):
        read_series_file(write(tmp_path, "n.csv", "t,v,\n1,2,3\n2,3,4\n"))


@pytest.mark.parametrize("make, words", [
    (lambda d: d, "cannot read the file: Is a directory"),
    (lambda d: d / "nope.tsv", "cannot read the file: No such file or directory"),
])
def test_directory_or_missing_file_is_a_data_error(tmp_path, make, words):
    path = make(tmp_path)
    for read in (read_labelled, read_pairs, read_series_file, read_tagged):
        folder = read is read_labelled and path.is_dir()   # a folder of class folders, or none
        with pytest.raises(DataError, match="a folder; expected a folder of class folders"
                           if folder else words):
            read(path)


def test_names_with_a_bad_frequency_digit(tmp_path):
    """A frequency that is not a hex digit was a raw ValueError."""
    p = write(tmp_path, "nam_dict.txt", "# c\nM  Anna" + " " * 22 + " 5 Z\n")
    with pytest.raises(DataError, match=r"nam_dict.txt:2: expected a hexadecimal frequency digit"):
        name_pairs([p])


def test_year_zero_is_no_date(tmp_path):
    """Year 0 (0000, 0000-Q1) was a raw 'year 0 is out of range' ValueError."""
    from rnnkit.data.dates import infer_season
    f = read_series_file(write(tmp_path, "y.csv", "year,v\n1990,1\n0000,2\n"))
    with pytest.raises(DataError, match=r"y.csv:3: cannot read the date '0000' like '1990'"):
        infer_season(f, warn=print)
    f = read_series_file(write(tmp_path, "q.csv", "q,v\n0000-Q1,1\n0000-Q2,2\n"))
    with pytest.raises(DataError, match=r"q.csv:2: cannot read the date '0000-Q1'"):
        infer_season(f, warn=print)


def test_data_flag_naming_a_directory_says_so(tmp_path):
    from rnnkit.data.datasets import resolve
    with pytest.raises(DataError, match=r"is a directory; expected a data file"):
        resolve(str(tmp_path))


def test_too_few_pairs_to_split_names_the_file(tmp_path):
    """'3 pairs are too few: the val split is empty' named no file."""
    from rnnkit.data.pairs import own_splits
    p = write(tmp_path, "few.tsv", "Hallo\tHello\nDanke\tThanks\n")
    with pytest.raises(DataError, match=r"few.tsv: 2 pairs are too few: none falls in the val "
                                        r"split \(about 3% of the distinct ones.*--val-data"):
        own_splits(read_pairs(p), path=p)


def test_corpus_too_short_to_split_names_the_file():
    from rnnkit.data import split_ids
    with pytest.raises(DataError, match=r"tiny.txt: too short to split: 3 tokens, need at least 4"):
        split_ids([1, 2, 3], path="tiny.txt")


def test_pairs_too_few_for_a_test_part(tmp_path):
    """Two pairs can fill train and validation but leave the test part empty: a DataError
    naming the file, not an IndexError from the scorer after training."""
    from rnnkit.data.pairs import own_splits, read_pairs
    path = tmp_path / "two.tsv"
    path.write_text("ich\tI\ndu\tyou\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"two.tsv: 2 pairs are too few: none falls in the test "
                                        r"split .*--test-data"):
        own_splits(read_pairs(path), path=path)


def test_tag_validation_file_that_is_neither_a_name_nor_a_file_names_its_flag(tmp_path):
    from rnnkit.models.tagger import TaggerConfig
    from rnnkit.tasks.tag import build_tag_task
    p = write(tmp_path, "t.txt", "a/x b/y\nc/z\n")
    with pytest.raises(DataError, match=r"--val-data 'nosuch' is neither a data set name"):
        build_tag_task(TagData(data=str(p), val_data="nosuch"), TaggerConfig(),
                       log=lambda *a: None)
