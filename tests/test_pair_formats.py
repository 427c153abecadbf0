"""Pair files as users have them: a header, quoted fields, CSV, JSON lines, Tatoeba's layouts;
and the conditional generator's first column read as labels or features."""
import json

import pytest

from rnnkit.data import DataError
from rnnkit.data.pairs import read_numbered_pairs, read_pairs
from rnnkit.tasks.cond import parse_features

PAIRS = [("ich sehe", "I see"), ("das Haus", "the house"), ("er sagt", "he says")]


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8")) if isinstance(text, str) else p.write_bytes(text)
    return p


def tsv(pairs):
    return "".join(f"{s}\t{t}\n" for s, t in pairs)


@pytest.mark.parametrize("head", ["source\ttarget", "SRC\tTGT", "de\ten", "de-DE\ten_US",
                                  "input\toutput", "\ufeffsource\ttarget", "word\tphonemes",
                                  "german_text\tenglish_text", "src_text\ttgt_text",
                                  "source sentence\ttarget sentence"])
def test_a_header_naming_the_columns_is_not_a_pair(tmp_path, head):
    p = write(tmp_path, "p.tsv", f"{head}\r\n" + tsv(PAIRS).replace("\n", "\r\n"))
    assert read_pairs(p) == PAIRS
    assert [n for n, _, _ in read_numbered_pairs(p)] == [2, 3, 4]


@pytest.mark.parametrize("first", [("ja", "yes"), ("Hallo", "hello"), ("de", "de"),
                                   ("Englisch", "English"), ("Text", "text"),
                                   ("English", "French"), ("Chinese", "Mandarin")])
def test_a_first_pair_that_is_not_a_header_is_kept(tmp_path, first):
    p = write(tmp_path, "p.tsv", tsv([first] + PAIRS))
    assert read_pairs(p) == [first] + PAIRS


def test_pandas_tab_export_is_unquoted_and_its_index_left_out(tmp_path):
    """df.to_csv(sep="\\t"): an unnamed index column, quotes around a field with a quote."""
    text = '\tsource\ttarget\n0\t"er sagt ""hallo"""\t"he says ""hello"""\n1\tich sehe\tI see\n'
    assert read_pairs(write(tmp_path, "p.tsv", text)) == [
        ('er sagt "hallo"', 'he says "hello"'), ("ich sehe", "I see")]
    plain = 'source\ttarget\n"er sagt ""hallo"""\tx\n"a"\t"b"\n'
    assert read_pairs(write(tmp_path, "q.tsv", plain)) == [('er sagt "hallo"', "x"), ("a", "b")]


def test_quotes_are_kept_where_the_file_is_not_csv_quoted(tmp_path):
    text = '"Stop!"\t"Halt!"\nhe said "hi"\ter sagte "hallo"\n'
    assert read_pairs(write(tmp_path, "p.tsv", text)) == [
        ('"Stop!"', '"Halt!"'), ('he said "hi"', 'er sagte "hallo"')]


def test_csv_pairs(tmp_path):
    text = 'source,target\n"ich sehe, ja","I see, yes"\ndas Haus,the house\n'
    assert read_pairs(write(tmp_path, "p.csv", text)) == [
        ("ich sehe, ja", "I see, yes"), ("das Haus", "the house")]
    with pytest.raises(DataError, match=r"q.csv:2: expected 'source,target' \(two fields\), "
                                        r"got 3 fields"):
        read_pairs(write(tmp_path, "q.csv", "a,b\nx,y,z\n"))


def test_json_lines_pairs(tmp_path):
    hf = "".join(json.dumps({"translation": {"de": s, "en": t}}, ensure_ascii=False) + "\n"
                 for s, t in PAIRS)
    assert read_pairs(write(tmp_path, "hf.jsonl", hf)) == PAIRS
    named = "".join(json.dumps({"id": i, "target": t, "source": s}) + "\n"
                    for i, (s, t) in enumerate(PAIRS))
    assert read_pairs(write(tmp_path, "st.json", named)) == PAIRS
    two = "".join(json.dumps({"country": s, "first": t}) + "\n" for s, t in PAIRS)
    assert read_pairs(write(tmp_path, "two.txt", two)) == PAIRS
    listed = json.dumps([{"source": s, "target": t} for s, t in PAIRS], indent=1)
    with pytest.raises(DataError, match=r"l.json:1: not a JSON object .*expected JSON lines"):
        read_pairs(write(tmp_path, "l.json", listed))


def test_json_pairs_errors_name_the_line(tmp_path):
    with pytest.raises(DataError, match=r"b.jsonl:2: expected a source and a target field .*"
                                        r"got \['a', 'b', 'c'\]"):
        read_pairs(write(tmp_path, "b.jsonl", '{"source": "x", "target": "y"}\n'
                                              '{"a": "x", "b": "y", "c": "z"}\n'))
    with pytest.raises(DataError, match=r"c.jsonl:1: expected texts in 'source' and 'target', "
                                        r"got str and list"):
        read_pairs(write(tmp_path, "c.jsonl", '{"source": "x", "target": ["y"]}\n'))
    with pytest.raises(DataError, match=r"d.jsonl:2: not a JSON object"):
        read_pairs(write(tmp_path, "d.jsonl", '{"source": "x", "target": "y"}\n{oops\n'))
    with pytest.raises(DataError, match=r"e.jsonl:1: expected a JSON source and target with both "
                                        r"sides non-empty, got an empty source"):
        read_pairs(write(tmp_path, "e.jsonl", '{"source": "", "target": "y"}\n'))


def test_tatoeba_layouts(tmp_path):
    sentences = "1276\tLet's try something.\t77\tLasst uns etwas versuchen!\n" \
                "1277\tI have to go.\t2\tIch muss gehen.\n"
    assert read_pairs(write(tmp_path, "t.tsv", sentences)) == [
        ("Let's try something.", "Lasst uns etwas versuchen!"), ("I have to go.", "Ich muss gehen.")]
    anki = "Go.\tGeh.\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM)\n" \
           "Hi.\tHallo!\tCC-BY 2.0 (France) Attribution: tatoeba.org #538123 (CM)\n"
    assert read_pairs(write(tmp_path, "deu.txt", anki)) == [("Go.", "Geh."), ("Hi.", "Hallo!")]


def numbered(sources):
    return [(i + 1, s, f"name{i}") for i, s in enumerate(sources)]


def test_a_feature_header_is_skipped_and_the_features_kept(tmp_path):
    for head in ("features\tname", "x,y\tname"):
        p = write(tmp_path, "f.tsv", f"{head}\n1,0\tMarco\n0,1\tEmi\n1,0\tLuca\n")
        rows = read_numbered_pairs(p)
        assert [s for _, s, _ in rows] == ["1,0", "0,1", "1,0"]
        assert parse_features(rows, p).shape == (3, 2)


def test_whole_numbers_taking_few_values_are_labels():
    assert parse_features(numbered(["1", "2", "1", "2", "1"]), "f") is None
    assert parse_features(numbered(["1990", "2000"] * 3), "f") is None
    assert parse_features(numbered(["1", "2", "3", "4"]), "f").shape == (4, 1)   # all distinct
    assert parse_features(numbered(["0.5", "1", "0.5", "1"]), "f").shape == (4, 1)


def test_one_side_of_a_parallel_corpus_says_how_to_join_them(tmp_path):
    p = write(tmp_path, "europarl.de", "Wiederaufnahme der Sitzungsperiode\nIch erkläre\n")
    with pytest.raises(DataError, match=r"europarl.de:1: .*got 0 tabs.* join them: paste "):
        read_pairs(p)


def test_json_records_with_ids_summaries_and_instructions(tmp_path):
    ided = "".join(json.dumps({"id": i, "de": s, "en": t}) + "\n" for i, (s, t) in enumerate(PAIRS))
    assert read_pairs(write(tmp_path, "i.jsonl", ided)) == PAIRS
    xsum = json.dumps({"id": "3504", "document": "A long text.", "summary": "Short."}) + "\n"
    assert read_pairs(write(tmp_path, "x.jsonl", xsum * 2)) == [("A long text.", "Short.")] * 2
    alpaca = json.dumps({"instruction": "Add", "input": "2 and 3", "output": "5"}) + "\n" + \
        json.dumps({"instruction": "Say hi", "input": "", "output": "hi"}) + "\n"
    assert read_pairs(write(tmp_path, "a.json", alpaca)) == [("Add 2 and 3", "5"),
                                                             ("Say hi", "hi")]


def test_a_tsv_whose_source_starts_with_a_brace_is_no_json(tmp_path):
    text = '{"name": "Aromi", "food": "Chinese"}\tAromi is a Chinese coffee shop.\n' \
           '{"name": "Bibimbap"}\tBibimbap is a restaurant.\n'
    assert read_pairs(write(tmp_path, "e2e.tsv", text))[1] == (
        '{"name": "Bibimbap"}', "Bibimbap is a restaurant.")


def test_a_first_entry_naming_one_word_twice_is_a_pair(tmp_path):
    p = write(tmp_path, "p.tsv", tsv([("Name", "name")] + PAIRS))
    assert read_pairs(p)[0] == ("Name", "name")


def test_pairs_quoted_as_r_and_pandas_write_them(tmp_path):
    """R's write.table quoted every field (the quotes were learned, the header a pair); a
    quoted field holding a tab (pandas, the csv module) was refused as three columns."""
    r = '"source"\t"target"\n"katze"\t"cat"\n"hund"\t"dog"\n'
    assert read_pairs(write(tmp_path, "r.tsv", r)) == [("katze", "cat"), ("hund", "dog")]
    tab = 'katze\tcat\n"klein\tauf"\tsmall on\n'
    assert read_pairs(write(tmp_path, "t.tsv", tab)) == [("katze", "cat"),
                                                        ("klein\tauf", "small on")]


def test_a_spreadsheet_s_semicolon_pairs(tmp_path):
    """A .csv of semicolons under a source;target header (or Excel's sep=; line) was refused
    as one field a line, or with a misleading quote error where its fields were quoted."""
    rows = 'source;target\nhallo welt;"hello, ""world"""\nwelt;world\n'
    path = tmp_path / "semi.csv"
    path.write_text(rows, encoding="utf-8")
    assert read_numbered_pairs(path) == [(2, "hallo welt", 'hello, "world"'),
                                         (3, "welt", "world")]
    path.write_text("sep=;\nhallo;hello\nwelt;world\n", encoding="utf-8")
    assert read_numbered_pairs(path) == [(2, "hallo", "hello"), (3, "welt", "world")]


def test_excel_s_separator_line_of_another_separator(tmp_path):
    """sep=| was split on tabs, and told to join the file with paste."""
    path = tmp_path / "pipe.csv"
    path.write_text("sep=|\nhello|bonjour\nyes|oui\n", encoding="utf-8")
    assert read_numbered_pairs(path) == [(2, "hello", "bonjour"), (3, "yes", "oui")]
