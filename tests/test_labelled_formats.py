"""Labelled files as datasets are handed out: more header names (AG News, Amazon, Yelp), JSON
lines named .json, fastText's labels, a folder of class folders, and rows of many columns
without a header (Sentiment140), which are refused rather than joined into the text."""
import json

import pytest

from rnnkit.cli.main import main
from rnnkit.data import DataError
from rnnkit.data.labelled import read_labelled


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_ag_news_header_and_two_text_columns(tmp_path):
    text = 'Class Index,Title,Description\n3,"Wall St. Bears","Reuters - Short-sellers"\n' \
           '4,"New chip","A faster chip, said"\n'
    assert read_labelled(write(tmp_path, "ag.csv", text)) == [
        ("3", "Wall St. Bears Reuters - Short-sellers"), ("4", "New chip A faster chip, said")]


def test_review_json_named_json(tmp_path):
    amazon = "".join(json.dumps({"overall": s, "reviewerID": "A1", "reviewText": t,
                                 "summary": h}) + "\n"
                     for s, t, h in [(5.0, "Loved it.", "Great"), (1.0, "Broke.", "Bad")])
    assert read_labelled(write(tmp_path, "Books_5.json", amazon)) == [
        ("5.0", "Loved it. Great"), ("1.0", "Broke. Bad")]
    yelp = "".join(json.dumps({"review_id": "x", "stars": s, "useful": 0, "text": t}) + "\n"
                   for s, t in [(4, "Good food"), (2, "Slow")])
    assert read_labelled(write(tmp_path, "yelp.txt", yelp)) == [("4", "Good food"), ("2", "Slow")]


def test_fasttext_labels(tmp_path):
    text = "__label__pos a good film\n\n__label__neg  a bad one\n"
    assert read_labelled(write(tmp_path, "ft.txt", text), with_lines=True) == [
        ("pos", "a good film", 1), ("neg", "a bad one", 3)]
    with pytest.raises(DataError, match=r"m.txt:2: expected one '__label__LABEL' first"):
        read_labelled(write(tmp_path, "m.txt", text.replace("\n\n", "\n__label__a __label__b x\n")))


def test_a_folder_of_class_folders(tmp_path):
    for label, texts in (("pos", ["a good\nfilm", "fine"]), ("neg", ["bad", "dull"])):
        (tmp_path / "train" / label).mkdir(parents=True)
        for i, t in enumerate(texts):
            (tmp_path / "train" / label / f"{i}.txt").write_text(t, encoding="utf-8")
    (tmp_path / "train" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "train" / ".ipynb_checkpoints" / "x.txt").write_text("no", encoding="utf-8")
    assert read_labelled(tmp_path / "train") == [("neg", "bad"), ("neg", "dull"),
                                                 ("pos", "a good film"), ("pos", "fine")]
    (tmp_path / "train" / "neg" / "2.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(DataError, match=r"2.txt: the file is empty|2.txt: an empty text"):
        read_labelled(tmp_path / "train")


def test_many_columns_without_a_header_are_refused(tmp_path):
    rows = "".join(f'"{p}","{1467810369 + i}","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY",'
                   f'"user{i}","tweet {i}"\r\n' for i, p in enumerate([0, 4] * 5))
    with pytest.raises(DataError, match=r"s140.csv:1: every row has 6 fields, column 2 of "
                                        r"numbers \(an id\?\) among them, and no first line "
                                        r"names the label and the text"):
        read_labelled(write(tmp_path, "s140.csv", rows))
    named = "polarity,id,date,query,user,text\n" + rows
    assert read_labelled(write(tmp_path, "named.csv", named))[:2] == [("0", "tweet 0"),
                                                                      ("4", "tweet 1")]
    loose = "pos,a good, fun film\nneg,bad, dull, long\npos,fine\n"      # unquoted commas
    assert read_labelled(write(tmp_path, "loose.csv", loose))[1] == ("neg", "bad, dull, long")
    yahoo = '"1","Why is the sky blue?","I wonder","Light scatters"\n' \
            '"2","Best pasta?","For dinner","Carbonara"\n'               # texts only: joined
    assert read_labelled(write(tmp_path, "yahoo.csv", yahoo))[1] == (
        "2", "Best pasta?,For dinner,Carbonara")


def test_a_header_naming_two_label_columns_takes_the_likeliest(tmp_path):
    p = write(tmp_path, "e.csv", "text,label,emotion\ni feel sad,0,sadness\ni am happy,1,joy\n")
    assert read_labelled(p) == [("0", "i feel sad"), ("1", "i am happy")]
    p = write(tmp_path, "w.csv", "Title,Review Text,Rating\n,Runs small,3\nLovely,Fits well,5\n")
    assert read_labelled(p) == [("3", "Runs small"), ("5", "Lovely Fits well")]


def test_a_null_text_field_in_json_is_passed_over(tmp_path):
    text = '{"text": "good movie", "label": 1, "title": null}\n{"text": "bad", "label": 0}\n'
    assert read_labelled(write(tmp_path, "n.jsonl", text)) == [("1", "good movie"), ("0", "bad")]


def class_folders(root):
    """pos/ and neg/, 30 texts each a file."""
    words = {"pos": ["good", "fine", "great", "nice"], "neg": ["bad", "dull", "poor", "awful"]}
    for label, ws in words.items():
        (root / label).mkdir(parents=True)
        for i in range(30):
            text = f"a {ws[i % 4]} film and {ws[(i + 1) % 4]} acting"
            (root / label / f"{i}.txt").write_text(text, encoding="utf-8")


def test_classify_trains_and_evaluates_on_a_folder(tmp_path, capsys):
    class_folders(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", "classify", "--data", str(tmp_path / "data"), "--out", str(run),
                 "--hidden", "8", "--embed", "8", "--batch", "8", "--max-steps", "2",
                 "--eval-every", "1", "--warmup-steps", "0", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), str(tmp_path / "data"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["size"] == 60


def test_tab_files_quoted_as_r_and_pandas_write_them(tmp_path):
    """R's write.table quotes every field (the quotes were kept: '"pos"' and 'pos' two labels,
    the header a training example); pandas quotes a text holding a line break (refused as
    '1 field'). Both read as the csv module writes them; quotes inside an unquoted text stay."""
    rows = [("pos", "good film"), ("neg", "bad, \"dull\" film")] * 3
    r = "".join(f'"{l}"\t"{t.replace(chr(34), 2 * chr(34))}"\n' for l, t in rows)
    assert read_labelled(write(tmp_path, "r.tsv", '"label"\t"text"\n' + r)) == rows
    pandas = 'label\ttext\npos\t"two\nlines"\n' + "".join(f"{l}\t{t}\n" for l, t in rows[:2])
    assert read_labelled(write(tmp_path, "p.tsv", pandas)) == [("pos", "two\nlines")] + rows[:2]
    plain = 'pos\t"Great" he said\nneg\tit opens "a quote\npos\tfine\n'
    assert read_labelled(write(tmp_path, "q.tsv", plain)) == [
        ("pos", '"Great" he said'), ("neg", 'it opens "a quote'), ("pos", "fine")]


def test_a_header_under_unknown_names_is_refused_not_learned(tmp_path):
    """'Score,Text' was read as an example: a class 'Score' learned and predicted."""
    body = "".join(f"{1 + k % 2},text number {k}\n" for k in range(12))
    with pytest.raises(DataError, match=r"s\.csv:1: the first row \('Score', 'Text'\) looks like "
                                        r"a header"):
        read_labelled(write(tmp_path, "s.csv", "Score,Text\n" + body))
    assert len(read_labelled(write(tmp_path, "ok.csv", "5,Excellent\n" + body))) == 13
    assert len(read_labelled(write(tmp_path, "few.csv", "Score,Text\n1,a b\n2,c d\n"))) == 3


def test_a_small_file_of_distinct_labels_is_refused(tmp_path, capsys):
    """Sixteen rows with the text first and no header: sixteen one-example classes, trained
    without a word (the check began at 21 labels)."""
    rows = "".join(f"a different review number {k} here,{'pos' if k % 2 else 'neg'}\n"
                   for k in range(16))
    f = write(tmp_path, "t.csv", rows)
    assert main(["train", "classify", "--data", str(f), "--out", str(tmp_path / "r"),
                 "--max-steps", "1"]) == 2
    assert "16 distinct labels among 16 examples" in capsys.readouterr().err


def test_the_quoting_check_is_linear_in_a_lines_quotes():
    """The first version's patterns backtracked: a 40 KB line of doubled quotes took 17 s."""
    import time
    from rnnkit.data.text import tab_quoted
    t0 = time.perf_counter()
    for line in ['a\t"' + '""' * 20000 + 'x', '"' + 'a""' * 20000, '\t"a' * 30000]:
        assert not tab_quoted((line + "\n") * 3)
    assert time.perf_counter() - t0 < 5   # a guard on the growth (0.03 s now, 50 s before)
    assert tab_quoted(('"a"\t"' + "b" * 50000 + '"\n') * 3)   # long lines, wholly quoted


ROWS = [f"{'pos' if i % 2 else 'neg'}\t{'a great lovely' if i % 2 else 'an awful dull'} film {i}"
        for i in range(24)]


def test_files_joined_with_their_headers_keep_no_header_as_an_example(tmp_path):
    """cat part1.tsv part2.tsv: the second header was learned as a class 'label'."""
    text = "label\ttext\n" + "\n".join(ROWS[:12]) + "\nlabel\ttext\n" + "\n".join(ROWS[12:])
    with pytest.warns(UserWarning, match=r"j.tsv:14: 1 more header line\(s\) left out"):
        rows = read_labelled(write(tmp_path, "j.tsv", text + "\n"))
    assert len(rows) == 24 and {label for label, _ in rows} == {"pos", "neg"}
    named = "Score\tText\n" + "\n".join(ROWS[:12]) + "\nScore\tText\n" + "\n".join(ROWS[12:])
    with pytest.raises(DataError, match="looks like a header naming the columns"):
        read_labelled(write(tmp_path, "k.tsv", named + "\n"))


def test_a_spreadsheet_s_empty_trailing_columns_are_left_out(tmp_path):
    """v1,v2,,, (the SMS spam layout): the header was a class, ',,,' ended every text."""
    rows = [r.replace("\t", ",") + ",,," for r in ROWS]
    assert read_labelled(write(tmp_path, "s.csv", "label,text,,,\n" + "\n".join(rows)))[0] == \
        ("neg", "an awful dull film 0")
    with pytest.raises(DataError, match=r"the first row \('v1', 'v2'\) looks like a header"):
        read_labelled(write(tmp_path, "v.csv", "v1,v2,,,\n" + "\n".join(rows)))
    joined = "label,text\n" + "\n".join(r.replace("\t", ",") for r in ROWS[:12]) + \
        "\nlabel,text,,\n" + "\n".join(rows[12:])        # exports with and without them
    with pytest.warns(UserWarning, match="1 more header line"):
        assert read_labelled(write(tmp_path, "j.csv", joined))[-1] == ("pos",
                                                                       "a great lovely film 23")


def test_a_quote_opened_in_one_text_and_an_inch_mark_in_another_keep_two_rows(tmp_path):
    text = "\n".join(ROWS[:10] + ['neg\t"Worst purchase ever, broke in a day',
                                  'pos\tlove it, the screen is a full 7"'] + ROWS[10:]) + "\n"
    rows = read_labelled(write(tmp_path, "q.tsv", text))
    assert len(rows) == 26 and rows[11] == ("pos", 'love it, the screen is a full 7"')


def test_spreadsheet_exports_and_compressed_csv(tmp_path):
    """id;text;label;source was refused (only the first and last names were looked at), and so
    was a header quoted by "quote all"; a .csv.gz was read as tab-separated."""
    import gzip
    rows = [r.split("\t") for r in ROWS]
    semi = "id;text;label;source\r\n" + "".join(f"{i};{t};{l};web\r\n" for i, (l, t) in
                                                enumerate(rows))
    assert read_labelled(write(tmp_path, "a.csv", semi))[0] == ("neg", "an awful dull film 0")
    quoted = '"label";"text"\r\n' + "".join(f'"{l}";"{t}"\r\n' for l, t in rows)
    assert read_labelled(write(tmp_path, "b.csv", quoted))[1] == ("pos", "a great lovely film 1")
    packed = tmp_path / "c.csv.gz"
    packed.write_bytes(gzip.compress(("label,text\n" + "".join(f"{l},{t}\n" for l, t in rows))
                                     .encode()))
    assert len(read_labelled(packed)) == 24


def test_a_csv_field_past_python_s_default_limit(tmp_path):
    text = "label,text\n" + "".join(f"{r.replace(chr(9), ',')}\n" for r in ROWS)
    text += "pos," + "wonderful film " * 10000 + "\n"
    assert len(read_labelled(write(tmp_path, "big.csv", text))[-1][1]) > 131072


def test_rows_of_empty_fields_are_blank_rows(tmp_path):
    """A spreadsheet's empty row (',' or ',,') was cut to no fields and failed as an
    IndexError; it is a blank row."""
    from rnnkit.data import DataError
    from rnnkit.data.labelled import read_labelled
    only = tmp_path / "only.csv"
    only.write_text(",\n")
    with pytest.raises(DataError, match="expected at least 2 labelled examples, got 0"):
        read_labelled(only)
    mid = tmp_path / "mid.csv"
    mid.write_text("pos,good film\n,,\nneg,bad film\n")
    assert read_labelled(mid) == [("pos", "good film"), ("neg", "bad film")]


def test_classes_reads_only_the_named_labels(tmp_path, capsys):
    """aclImdb's train folder holds pos, neg and 50,000 unlabelled reviews in unsup: --classes
    neg,pos reads the two (unsup's files not at all), a file's other labels are passed over."""
    class_folders(tmp_path / "train")
    (tmp_path / "train" / "unsup").mkdir()
    (tmp_path / "train" / "unsup" / "0.txt").write_bytes(b"\xff not text")   # never read
    assert {l for l, _ in read_labelled(tmp_path / "train", classes=["neg", "pos"])} == \
        {"neg", "pos"}
    run, flags = tmp_path / "run", ["--hidden", "8", "--embed", "8", "--batch", "8",
                                    "--max-steps", "1", "--warmup-steps", "0", "--quiet"]
    assert main(["train", "classify", "--data", str(tmp_path / "train"), "--classes", "neg,pos",
                 "--out", str(run), *flags]) == 0
    out = capsys.readouterr().out
    assert "passed over the class folders unsup" in out and "labels ['neg', 'pos']" in out
    rows = "".join(f"{l}\ta {w} film {i}\n" for i in range(10)
                   for l, w in [("pos", "good"), ("neg", "bad"), ("unsup", "odd")])
    assert main(["train", "classify", "--data", str(write(tmp_path, "f.tsv", rows)),
                 "--classes", "neg,pos", "--out", str(tmp_path / "run2"), *flags]) == 0
    out = capsys.readouterr().out
    assert "passed over 10 of " in out and "f.tsv's 30 examples (unsup)" in out
    val = write(tmp_path, "val.tsv", "pos\ta good film\nunsup\tan odd film\nneg\ta bad film\n")
    assert main(["train", "classify", "--data", str(tmp_path / "f.tsv"), "--val-data", str(val),
                 "--classes", "neg,pos", "--out", str(tmp_path / "run4"), *flags]) == 0
    assert "passed over 1 of " in capsys.readouterr().out          # the validation file's too
    assert main(["eval", str(tmp_path / "run4"), str(val), "--json"]) == 0   # as trained: 2
    assert json.loads(capsys.readouterr().out)["size"] == 2       # (unknown label 'unsup')
    assert main(["train", "classify", "--data", str(tmp_path / "train"), "--classes", "neg,po",
                 "--out", str(tmp_path / "run3"), *flags]) == 2
    assert "--classes neg,po: no example of po; the labels there: ['neg', 'pos', 'unsup']" in \
        capsys.readouterr().err
    assert main(["train", "classify", "--data", "x.tsv", "--classes", "neg", "--out", "r"]) == 2
    assert "--classes 'neg': expected two or more distinct labels" in capsys.readouterr().err


def test_a_folder_of_folders_of_classes_is_refused_and_no_label_is_warned_about(tmp_path,
                                                                                 capsys):
    """aclImdb/ itself trained 'train' and 'test' as classes of its stray files; a label that
    reads as none (R's NA, aclImdb's unsup) was trained as a class, said nowhere."""
    for label in ("pos", "neg"):
        (tmp_path / "acl" / "train" / label).mkdir(parents=True)
        (tmp_path / "acl" / "train" / label / "0.txt").write_text("a film", encoding="utf-8")
    (tmp_path / "acl" / "train" / "urls_pos.txt").write_text("http://x", encoding="utf-8")
    with pytest.raises(DataError, match=r"acl: a folder of folders of folders \(train/ holds "
                                        r"neg, pos\); expected a folder of class folders"):
        read_labelled(tmp_path / "acl")
    (tmp_path / "acl" / "train" / "__MACOSX" / "pos").mkdir(parents=True)   # a macOS archive's
    (tmp_path / "acl" / "train" / "__MACOSX" / "pos" / "._0.txt").write_bytes(b"\0\5\x16")
    (tmp_path / "acl" / "train" / "pos" / "more").mkdir()         # one class's subfolder: left
    assert {l for l, _ in read_labelled(tmp_path / "acl" / "train")} == {"neg", "pos"}
    rows = "".join(f"{l}\ta {w} film {i}\n" for i in range(10)
                   for l, w in [("pos", "good"), ("neg", "bad"), ("NA", "odd")])
    assert main(["train", "classify", "--data", str(write(tmp_path, "r.tsv", rows)),
                 "--out", str(tmp_path / "run"), "--hidden", "8", "--embed", "8",
                 "--max-steps", "1", "--warmup-steps", "0", "--quiet"]) == 0
    assert "r.tsv: 10 examples labelled 'NA', which reads as no label" in capsys.readouterr().err
    assert main(["train", "classify", "--data", str(tmp_path / "r.tsv"), "--classes",
                 "pos,neg,NA", "--out", str(tmp_path / "run2"), "--hidden", "8", "--embed", "8",
                 "--max-steps", "1", "--warmup-steps", "0", "--quiet"]) == 0
    assert "reads as no label" not in capsys.readouterr().err     # named: meant as a class


def test_excel_s_separator_line(tmp_path):      # it was an example: "expected 'label,text'"
    text = "sep=;\nlabel;text\npos;a good, fine film\nneg;a bad film\n"
    assert read_labelled(write(tmp_path, "x.csv", text), with_lines=True) == [
        ("pos", "a good, fine film", 3), ("neg", "a bad film", 4)]
