"""Tagged files as users have them: comments in column files, a file of one sentence, an ID
column, People's Daily's compound brackets, BIOES chunks, and blank lines given to `rnnkit tag`
and `rnnkit translate`."""
import pytest

from rnnkit.config import ConfigError
from rnnkit.data import DataError
from rnnkit.data.tagged import read_tagged
from rnnkit.tasks.metrics import chunk_f1, chunk_spans, is_chunk_tagging


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_comments_before_a_sentence_are_not_tokens(tmp_path):
    multiconer = ("# id 0000-aaaa domain=en\nthe _ _ O\ncat _ _ B-ANI\n\n"
                  "# id 0000-bbbb domain=en\na _ _ O\ndog _ _ B-ANI\n")
    assert read_tagged(write(tmp_path, "m.txt", multiconer)) == [
        (["the", "cat"], ["O", "B-ANI"]), (["a", "dog"], ["O", "B-ANI"])]
    germeval = ("# http://de.wikipedia.org/wiki/Manfred_Korfmann [2009-10-17]\n"
                "1\tAufgrund\tO\tO\n2\tseiner\tO\tO\n3\tBerlin\tB-LOC\tO\n\n"
                "# http://de.wikipedia.org/wiki/X [2009-10-18]\n1\tEr\tO\tO\n")
    assert read_tagged(write(tmp_path, "g.tsv", germeval), column=2) == [
        (["Aufgrund", "seiner", "Berlin"], ["O", "O", "B-LOC"]), (["Er"], ["O"])]


def test_a_hash_token_that_reads_as_a_token_is_kept(tmp_path):
    """CoNLL-2000 writes a pound sign as '#': a token, tagged as the file's tokens are."""
    text = "# # B-NP\n200 CD I-NP\n\nHe PRP B-NP\n# # I-NP\n"
    assert read_tagged(write(tmp_path, "c.txt", text)) == [
        (["#", "200"], ["B-NP", "I-NP"]), (["He", "#"], ["B-NP", "I-NP"])]


def test_a_column_file_of_one_sentence_without_a_blank_line(tmp_path):
    assert read_tagged(write(tmp_path, "one.txt", "the O\ncat B-ANI\nsat O")) == [
        (["the", "cat", "sat"], ["O", "B-ANI", "O"])]


def test_an_id_column_is_left_out(tmp_path):
    text = "1\tthe\tDT\n2\tcat\tNN\n\n1\ta\tDT\n"
    assert read_tagged(write(tmp_path, "i.tsv", text)) == [(["the", "cat"], ["DT", "NN"]),
                                                            (["a"], ["DT"])]
    numbers = "1 CD\n2 CD\n\n1 CD\n"          # numbers as words, not an ID column
    assert read_tagged(write(tmp_path, "n.txt", numbers)) == [(["1", "2"], ["CD", "CD"]),
                                                              (["1"], ["CD"])]


def test_peoples_daily_compound_brackets(tmp_path):
    text = "[中央/n  人民/n  广播/vn  电台/n]nt  播出/v  [/w  ]/w\n"
    assert read_tagged(write(tmp_path, "pd.txt", text)) == [
        (["中央", "人民", "广播", "电台", "播出", "[", "]"], ["n", "n", "vn", "n", "v", "w", "w"])]


def test_a_conllu_column_error_names_the_file(tmp_path):
    p = write(tmp_path, "x.conllu", "1\tthe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\n")
    with pytest.raises(ConfigError, match=r"x.conllu: column: the CoNLL-U tag column"):
        read_tagged(p, column=1)


def test_bioes_and_bilou_chunks():
    assert chunk_spans(["S-PER", "O", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]) == [
        (0, 1, "PER"), (2, 5, "LOC"), (5, 6, "LOC")]
    assert chunk_spans(["U-PER", "B-ORG", "L-ORG", "O"]) == [(0, 1, "PER"), (1, 3, "ORG")]
    assert chunk_spans(["B-PER", "I-PER", "O", "I-LOC"]) == [(0, 2, "PER"), (3, 4, "LOC")]
    assert is_chunk_tagging(["O", "S-PER", "E-LOC", "B-LOC"])
    assert not is_chunk_tagging(["NN", "S-PER"])
    gold = [["S-PER", "O", "B-LOC", "E-LOC"]]
    assert chunk_f1(gold, [["S-PER", "O", "B-LOC", "E-LOC"]])["f1"] == 1.0
    assert chunk_f1(gold, [["S-PER", "O", "S-LOC", "S-LOC"]])["f1"] == pytest.approx(0.4)


def test_json_lines_of_tokens_and_tags(tmp_path):
    """As the datasets library writes a tagging set: string tags, or class ids."""
    text = ('{"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]}\n\n'
            '{"tokens": ["Peter", "Blackburn"], "tags": ["B-PER", "I-PER"]}\n')
    assert read_tagged(write(tmp_path, "n.jsonl", text)) == [
        (["EU", "rejects"], ["B-ORG", "O"]), (["Peter", "Blackburn"], ["B-PER", "I-PER"])]
    assert read_tagged(write(tmp_path, "n.txt", text))[0] == (["EU", "rejects"], ["B-ORG", "O"])
    hf = '{"id": "0", "tokens": ["EU", "rejects"], "pos_tags": [22, 42], "ner_tags": [3, 0]}\n'
    assert read_tagged(write(tmp_path, "hf.jsonl", hf)) == [(["EU", "rejects"], ["3", "0"])]


@pytest.mark.parametrize("line, message", [
    ('{"tokens": ["a", "b"], "tags": ["X"]}', r"expected a list of tokens and a list of as many tags"),
    ('{"tokens": ["a"]}', r"expected a JSON object with a token list .* got \['tokens'\]"),
    ('{"tokens": ["a b"], "tags": ["X"]}', r"a token or tag holds a space"),
    ('{"tokens": ["a"], "tags": [true]}', r"expected a list of tokens and a list of as many tags"),
    ('{"tokens": ["a"], "tags": ["X"]', r"not a JSON object")])
def test_json_lines_errors_name_the_line(tmp_path, line, message):
    p = write(tmp_path, "e.jsonl", '{"tokens": ["a"], "tags": ["X"]}\n' + line + "\n")
    with pytest.raises(DataError, match=r"e.jsonl:2: " + message):
        read_tagged(p)


def test_lines_of_untagged_words_are_not_a_column_file(tmp_path):
    with pytest.raises(DataError, match=r"u.txt:1: expected 'word/tag', got 'hello'"):
        read_tagged(write(tmp_path, "u.txt", "hello world\ngood morning\nsee you\n"))


def test_one_column_sentence_without_its_blank_line_is_told_to_add_it(tmp_path):
    text = "The DT\ncat NN\nsat VBD\n. .\n"
    with pytest.raises(DataError, match=r"s.txt:1: expected 'word/tag', got 'The' \(a column "
                                        r"file of 'word tag' lines: end its sentence with a blank"):
        read_tagged(write(tmp_path, "s.txt", text))
    assert read_tagged(write(tmp_path, "b.txt", text + "\n")) == \
        [(["The", "cat", "sat", "."], ["DT", "NN", "VBD", "."])]


def test_wikiner_pipes(tmp_path):
    text = "\nIt|PRP|O is|VBZ|O in|IN|O Paris|NNP|I-LOC .|.|O\n\nHe|PRP|O ran|VBD|O\n"
    p = write(tmp_path, "aij-wikiner-en-wp2", text)
    assert read_tagged(p) == [(["It", "is", "in", "Paris", "."], ["O", "O", "O", "I-LOC", "O"]),
                              (["He", "ran"], ["O", "O"])]
    assert read_tagged(p, column=1)[1] == (["He", "ran"], ["PRP", "VBD"])
    bad = write(tmp_path, "w.txt", "It|PRP|O is|VBZ|O\nHe|PRP|O ran||O\n")
    with pytest.raises(DataError, match=r"w.txt:2: expected tokens of 3 non-empty '\|'"):
        read_tagged(bad)


def test_a_first_brace_and_a_pipe_in_word_tag_tags_are_read_as_the_format(tmp_path):
    """A word/tag or column file whose first word is a brace was refused as JSON lines; word/tag
    tokens whose tags hold one '|' were read as WikiNER's (the words became 'I/PRON')."""
    assert read_tagged(write(tmp_path, "b.txt", "{/( hello/UH }/)\nJohn/NNP left/VBD\n")) == \
        [(["{", "hello", "}"], ["(", "UH", ")"]), (["John", "left"], ["NNP", "VBD"])]
    assert read_tagged(write(tmp_path, "b.conll", "{ -LRB- O\nhello UH O\n\nJohn NNP B-PER\n")) \
        == [(["{", "hello"], ["O", "O"]), (["John"], ["B-PER"])]
    bad = '{"tokens": ["the", "cat"], "tags": ["DET", "N"],}\n{"tokens": ["a"], "tags": ["D"]}\n'
    with pytest.raises(DataError, match=r"j.txt:1: not a JSON object"):   # not 'word/tag'
        read_tagged(write(tmp_path, "j.txt", bad))
    text = "I/PRON|Sing saw/VERB|Past\nWe/PRON|Plur ran/VERB|Past\n"
    assert read_tagged(write(tmp_path, "m.txt", text))[0] == (["I", "saw"], ["PRON|Sing",
                                                                            "VERB|Past"])


def test_a_hashtag_first_in_a_sentence_is_a_token(tmp_path):
    text = "RT\tO\nrocks\tO\n\n#Apple\tB-corporation\nis\tO\n"   # its tag only here
    assert read_tagged(write(tmp_path, "tw.txt", text)) == [
        (["RT", "rocks"], ["O", "O"]), (["#Apple", "is"], ["B-corporation", "O"])]


def test_a_column_files_header_line_is_not_a_token(tmp_path):
    """'token<TAB>label' first (a table exported with its header) was a token 'token' with a
    tag 'label' of its own; a sentence that starts with the word 'word' stays."""
    text = "token\tlabel\nruns\tVBZ\nbig\tJJ\n\ncats\tNNS\nrun\tVBP\n"
    assert read_tagged(write(tmp_path, "h.tsv", text)) == [
        (["runs", "big"], ["VBZ", "JJ"]), (["cats", "run"], ["NNS", "VBP"])]
    text = "word\tNN\nruns\tVBZ\n\nword\tNN\n"
    assert read_tagged(write(tmp_path, "w.tsv", text))[0] == (["word", "runs"], ["NN", "VBZ"])


def test_a_tag_column_asked_of_a_file_without_columns_is_refused(tmp_path):
    """--column on JSON lines or word/tag sentences was passed over without a word (the run
    trained on ner_tags where the user asked for another column)."""
    js = write(tmp_path, "t.jsonl", '{"tokens": ["a", "b"], "ner_tags": [0, 1], "pos_tags": [2, 3]}\n')
    with pytest.raises(ConfigError, match="this file is JSON lines .*got column 1"):
        read_tagged(js, column=1)
    assert read_tagged(js) == [(["a", "b"], ["0", "1"])]
    slash = write(tmp_path, "s.txt", "the/DT cat/NN\n")
    with pytest.raises(ConfigError, match="word/tag sentences"):
        read_tagged(slash, column=7)


def test_a_run_saved_with_the_old_column_default_reads_word_tag_files(tmp_path, capsys):
    """Runs saved before their flags stored column 3, the old default (CoNLL-U's UPOS; files
    without columns passed it over): eval and --resume on their word/tag files were refused
    ("a tag column is picked in column (CoNLL) ... files"), --column 0 too."""
    import json

    from rnnkit.cli.main import main
    from rnnkit.train.checkpoint import load_checkpoint, save_checkpoint
    data = tmp_path / "tag.txt"
    data.write_text("the/d cat/n sat/v a/d mat/n\na/d dog/n ran/v the/d park/n\n" * 40,
                    encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "tag", "--data", str(data), "--out", str(run), "--hidden", "8",
                 "--embed", "8", "--batch", "8", "--max-steps", "2", "--eval-every", "2",
                 "--quiet"]) == 0
    for name in ("last.pt", "best.pt"):
        ckpt = load_checkpoint(run / name, kind="tag")
        ckpt.pop("flags", None)
        ckpt["data_config"]["column"] = 3
        save_checkpoint(run / name, ckpt)
    capsys.readouterr()
    assert main(["eval", str(run), str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["size"] > 0
    assert main(["train", "tag", "--out", str(run), "--resume", "--max-steps", "4",
                 "--quiet"]) == 0


@pytest.mark.parametrize("name, text", [
    ("columns.txt", "New\u00a0York B-LOC\nis O\n\nit O\ncosts O\n10\u202f000 B-NUM\n"),
    ("slash.txt", "New\u00a0York/B-LOC is/O\nit/O costs/O 10\u202f000/B-NUM\n"),
])
def test_a_no_break_space_joins_a_token(tmp_path, name, text):
    """A no-break space inside a word split it: "New\\u00a0York B-LOC" read as three columns
    (refused beside two-column lines), "New\\u00a0York/B-LOC" as a token with no tag."""
    assert read_tagged(write(tmp_path, name, text)) == [
        (["New\u00a0York", "is"], ["B-LOC", "O"]), (["it", "costs", "10\u202f000"],
                                                    ["O", "O", "B-NUM"])]
    from rnnkit.data.tagged import fields
    assert fields("New\u00a0York\u00a0 is \u00a0 10\u202f000\u202f") == \
        ["New\u00a0York", "is", "10\u202f000"]          # one at a token's end joins nothing


def test_a_zero_width_space_breaks_tokens(tmp_path):
    """It was kept inside a token: "word\u200b" a word of its own beside "word" (pasted from a
    web page), Thai words it separates read as one."""
    from rnnkit.data.tagged import fields
    assert fields("ฉัน\u200bกิน\u200b ข้าว\u200b") == ["ฉัน", "กิน", "ข้าว"]
    assert read_tagged(write(tmp_path, "s.txt", "the/DET\u200b cat/NOUN\u200b\n")) == [
        (["the", "cat"], ["DET", "NOUN"])]
    assert read_tagged(write(tmp_path, "c.txt", "the\u200b DET\ncat NOUN\n")) == [
        (["the", "cat"], ["DET", "NOUN"])]
