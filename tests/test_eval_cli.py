"""``rnnkit eval RUN FILE`` end to end, seq2seq's and cond's evaluate_file on tiny trained runs,
the dispatch's one-line errors, and the --val-data / --test-data files of seq2seq and cond."""
import json

import pytest

from rnnkit.cli import evaluate
from rnnkit.cli.main import main
from rnnkit.data import DataError
from rnnkit.data.pairs import read_pairs
from rnnkit.models.conditional import CondConfig
from rnnkit.models.seq2seq import Seq2SeqConfig
from rnnkit.tasks.cond import CondData, build_cond_task
from rnnkit.tasks.cond import evaluate_file as evaluate_cond
from rnnkit.tasks.metrics import sequence_accuracy
from rnnkit.tasks.seq2seq import Seq2SeqData, build_seq2seq_task, evaluate_file
from rnnkit.train.checkpoint import save_checkpoint

from seq2seq_fixtures import load_translator, train_run, write_names, write_pairs


@pytest.fixture(scope="module")
def s2s_run(tmp_path_factory):
    return train_run(tmp_path_factory.mktemp("s2s"), "seq2seq", 40)


def test_training_reports_sequence_accuracy_and_token_error_rate(s2s_run):
    metrics = json.loads((s2s_run / "metrics.json").read_text())
    for key in ("seq_acc_greedy", "seq_acc_beam", "ter_greedy", "ter_beam", "bleu_beam"):
        assert 0 <= metrics[key] <= (100 if key.startswith("bleu") else 10), key
    rows = [json.loads(l) for l in (s2s_run / "metrics.jsonl").read_text().splitlines()]
    assert {"val_seq_acc", "val_ter"} <= set(rows[-1])


def test_evaluate_file_scores_greedy_and_beam(s2s_run, tmp_path):
    test = tmp_path / "test.tsv"
    test.write_text("ich sehe den hund\tI see the dog\nein haus rot\ta house red\n"
                    "du sehe die Zebra\tyou see the zebra\n", encoding="utf-8")   # Z: unknown
    m = evaluate_file(s2s_run, test, beam=2)
    assert m["kind"] == "seq2seq" and m["file"] == str(test) and m["size"] == 3
    assert {"bleu_greedy", "cer_greedy", "seq_acc_greedy", "ter_greedy", "bleu_beam",
            "cer_beam", "seq_acc_beam", "ter_beam"} <= set(m)
    pairs = read_pairs(test)
    greedy = load_translator(s2s_run).greedy([s for s, _ in pairs])
    assert m["seq_acc_greedy"] == sequence_accuracy(greedy, [t for _, t in pairs])
    only_greedy = evaluate_file(s2s_run, test, beam=1)
    assert "ter_beam" not in only_greedy and only_greedy["ter_greedy"] == m["ter_greedy"]


def test_eval_decodes_with_the_runs_beam_and_length_penalty(tmp_path, capsys):
    """eval decoded with beam 5 and α 1.0 whatever the run's test part used: a run trained
    with --length-penalty 3 scored otherwise on its own test file (BLEU 6.2 against 1.5)."""
    run = train_run(tmp_path, "seq2seq", 5, "--length-penalty", "3")
    (tmp_path / "t").mkdir()
    test = write_pairs(tmp_path / "t", 6)
    m = evaluate_file(run, test)
    assert m["beam"] == 2 and m["length_penalty"] == 3.0
    assert m == evaluate_file(run, test, beam=2, length_penalty=3.0)
    capsys.readouterr()
    assert main(["eval", str(run), str(test), "--json", "--length-penalty", "0.5",
                 "--beam-size", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["length_penalty"] == 0.5 and printed["beam"] == 3
    assert "length_penalty" not in evaluate_file(run, test, beam=1)
    capsys.readouterr()   # a length penalty with greedy decoding was dropped without a word
    for cmd in (["eval", str(run), str(test)], ["translate", str(run), "ich"]):
        assert main(cmd + ["--beam-size", "1", "--length-penalty", "3"]) == 2
        assert "--length-penalty scores a beam's hypotheses, and --beam-size 1 decodes " \
               "greedily" in capsys.readouterr().err


def test_a_file_of_unknown_sources_is_warned_about(s2s_run, tmp_path, capsys):
    test = tmp_path / "swapped.tsv"   # sources of characters the model never read
    test.write_text("0123 4567 89\tich sehe den hund\n", encoding="utf-8")
    capsys.readouterr()
    evaluate_file(s2s_run, test, beam=1)
    assert "swapped.tsv: the model's vocabulary holds" in capsys.readouterr().err
    known = tmp_path / "known.tsv"
    known.write_text("ich sehe den hund\tI see the dog\n", encoding="utf-8")
    evaluate_file(s2s_run, known, beam=1)
    assert "warning" not in capsys.readouterr().err


def test_translate_names_the_lines_that_hold_unknown_tokens_once(s2s_run, tmp_path, capsys):
    """Each sentence warned of its own unknown tokens without saying which line it was."""
    lines = tmp_path / "lines.txt"
    lines.write_text("ich sehe den hund\n\n0123 hund\nich sehe 9\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["translate", str(s2s_run), "--file", str(lines), "--beam-size", "1"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 4
    said = [l for l in err.splitlines() if "warning" in l]
    assert len(said) == 1 and "lines.txt: " in said[0] and "line 3: " in said[0] \
        and "line 4: ['9']" in said[0] and "line 1" not in said[0]


def test_a_skipped_over_long_pair_is_said_with_its_line(s2s_run, tmp_path, capsys):
    """The figures counted it ("skipped": 1) and nothing said which line or why."""
    test = tmp_path / "long.tsv"
    test.write_text("ich sehe den hund\tI see the dog\n" + "hund " * 2000 + "\tdog\n", "utf-8")
    capsys.readouterr()
    m = evaluate_file(s2s_run, test, beam=1)
    assert m["size"] == 1 and m["skipped"] == 1
    assert "long.tsv: 1 pair(s) skipped, their sources longer than the model's max_len=" \
        in capsys.readouterr().err


def test_eval_command_table_json_and_out(s2s_run, tmp_path, capsys):
    test = write_pairs(tmp_path, 12)
    assert main(["eval", str(s2s_run), str(test), "--beam-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "seq2seq run on" in out and "12 pairs" in out and "seq_acc_beam" in out
    assert main(["eval", str(s2s_run / "best.pt"), str(test), "--json", "--beam-size", "2",
                 "--out", str(tmp_path / "m.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "m.json").read_text())
    assert printed["size"] == 12 and printed["beam"] == 2


def test_an_out_file_that_cannot_be_written_loses_no_figures(s2s_run, tmp_path, capsys):
    """The file was written before the figures were printed: a failed write printed the error
    alone, after the whole scoring."""
    test = write_pairs(tmp_path, 5)
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    assert main(["eval", str(s2s_run), str(test), "--beam-size", "1",
                 "--out", str(blocked / "m.json")]) != 0
    captured = capsys.readouterr()
    assert "seq2seq run on" in captured.out and "a_file" in captured.err


def one_line_error(capsys, argv, code=2):
    """Run ``rnnkit argv``; the error is one line on stderr (or in SystemExit) and exit != 0."""
    try:
        rc = main(argv)
        message = capsys.readouterr().err.strip()
    except SystemExit as e:
        rc, message = 1, str(e.code)
    assert rc == code and message and len(message.splitlines()) == 1, message
    return message


def test_eval_errors_are_one_line(s2s_run, tmp_path, capsys):
    test = write_pairs(tmp_path, 5)
    assert "no such run folder" in one_line_error(capsys, ["eval", str(tmp_path / "nope"),
                                                           str(test)])
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert "not a readable rnnkit checkpoint" in one_line_error(capsys, ["eval", str(junk),
                                                                         str(test)])
    weird = tmp_path / "weird.pt"
    save_checkpoint(weird, {"kind": "weird"})
    assert "unknown run kind 'weird'" in one_line_error(capsys, ["eval", str(weird), str(test)])
    assert "no such data file" in one_line_error(capsys, ["eval", str(s2s_run),
                                                          str(tmp_path / "none.tsv")])
    bad = tmp_path / "bad.tsv"
    bad.write_text("ich\tI\nno tab here\n", encoding="utf-8")
    assert "bad.tsv:2: expected 'source<TAB>target'" in one_line_error(
        capsys, ["eval", str(s2s_run), str(bad)])
    blank = tmp_path / "blank.tsv"
    blank.write_text("\n\n", encoding="utf-8")
    assert "blank.tsv: the file is empty" in one_line_error(capsys, ["eval", str(s2s_run),
                                                                    str(blank)])
    with pytest.raises(SystemExit) as e:   # argparse's usage, then its one-line error
        main(["eval", str(s2s_run), str(test), "--beam-size", "0"])
    assert e.value.code == 2
    assert "argument --beam-size: must be in [1, 1000], got 0" in capsys.readouterr().err


def test_kinds_without_an_evaluator_say_so(tmp_path, capsys, monkeypatch):
    test = write_pairs(tmp_path, 5)
    run = tmp_path / "c.pt"
    save_checkpoint(run, {"kind": "classify"})
    for target in ("rnnkit.tasks.not_written_yet:evaluate_file",   # no module
                   "rnnkit.tasks.metrics:evaluate_file"):          # module without the function
        monkeypatch.setitem(evaluate.EVALUATORS, "classify", target)
        assert one_line_error(capsys, ["eval", str(run), str(test)]) == \
            "rnnkit: error: runs of kind classify cannot be evaluated yet"


def test_cond_evaluate_file_and_options_that_do_not_apply(tmp_path, capsys):
    run = train_run(tmp_path, "cond", 30)
    capsys.readouterr()
    test = tmp_path / "test.tsv"
    test.write_text("Italy\tMarco\nJapan\tYuki\nJapan\tKenjiQ\n", encoding="utf-8")
    m = evaluate_cond(run, test)
    assert m["kind"] == "cond" and m["size"] == 3
    assert m["cond_gain_nats"] == pytest.approx(m["loss_wrong_cond"] - m["loss"])
    assert main(["eval", str(run), str(test), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["size"] == 3
    assert "--beam-size does not apply to runs of kind cond" in one_line_error(
        capsys, ["eval", str(run), str(test), "--beam-size", "3"])
    test.write_text("Italy\tMarco\nAtlantis\tZed\n", encoding="utf-8")
    assert "test.tsv:2: unknown condition 'Atlantis'" in one_line_error(
        capsys, ["eval", str(run), str(test)])


def test_seq2seq_own_validation_and_test_files(tmp_path):
    data = write_pairs(tmp_path)
    val, test = tmp_path / "val.tsv", tmp_path / "test.tsv"
    val.write_text("ich sehe\tI see\n", encoding="utf-8")
    test.write_text("ein hund\ta dog\ndu haus\tyou house\n", encoding="utf-8")
    build = lambda **d: build_seq2seq_task(Seq2SeqData(data=str(data), batch=8, **d),
                                           Seq2SeqConfig(embed=8, enc_hidden=8, hidden=8),
                                           log=lambda *a: None)
    task = build(val_data=str(val), test_data=str(test))
    assert task.splits["val"] == read_pairs(val) and task.splits["test"] == read_pairs(test)
    assert len(task.splits["train"]) == len(read_pairs(data))     # nothing cut from --data
    cut = build(test_data=str(test))
    assert cut.splits["val"] and len(cut.splits["train"]) + len(cut.splits["val"]) == 240
    bad = tmp_path / "bad.tsv"
    bad.write_text("ich\tI\nich sehe I see\n", encoding="utf-8")
    for which in ("val_data", "test_data"):
        with pytest.raises(DataError, match=r"bad.tsv:2: expected 'source<TAB>target'"):
            build(**{which: str(bad)})


def test_cond_own_test_file_checks_labels(tmp_path):
    names = write_names(tmp_path, 4)
    test = tmp_path / "names-test.tsv"
    build = lambda **d: build_cond_task(CondData(data=str(names), batch=8, **d),
                                        CondConfig(hidden=8, embed=4, cond_size=4),
                                        log=lambda *a: None)
    test.write_text("Italy\tMarco\nItaly\tLuca\n", encoding="utf-8")
    assert len(build(test_data=str(test)).test) == 2
    test.write_text("Italy\tMarco\nMars\tZork\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"names-test.tsv:2: unknown condition 'Mars'"):
        build(test_data=str(test))
    test.write_text("Italy Marco\n", encoding="utf-8")   # named as cond's columns, not seq2seq's
    with pytest.raises(DataError, match=r"names-test.tsv:1: expected 'label<TAB>sequence'") as e:
        build(val_data=str(test))
    assert "Europarl" not in str(e.value)   # translation files' hints are not cond's
    jsonl = tmp_path / "names-test.jsonl"
    jsonl.write_text('{"label": "Italy"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"names-test.jsonl:1: expected a label and a sequence "
                                        r"field \(.*\) or an object of two texts") as e:
        build(test_data=str(jsonl))
    assert "translation" not in str(e.value)
    test.write_text("Italy\t \n", encoding="utf-8")
    with pytest.raises(DataError, match=r"names-test.tsv:1: .* got an empty sequence"):
        build(test_data=str(test))


def test_translate_file_keeps_a_line_for_each_line(s2s_run, tmp_path, capsys):
    """A blank line of --file gives a blank output line: outputs line up with the inputs."""
    f = tmp_path / "in.txt"
    f.write_text("ich sehe den\n\nhaus rot katze\n   \nich sehe den\n\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["translate", str(s2s_run), "--file", str(f), "--beam-size", "1"]) == 0
    out = capsys.readouterr().out.split("\n")
    assert len(out) == 7 and out[1] == out[3] == out[5] == "" and out[6] == ""   # 6 lines
    assert out[0] and out[2] and out[0] == out[4]


def test_translate_reads_a_sentence_as_training_and_eval_read_it(s2s_run, capsys):
    """Spaces around a sentence were <unk> tokens (and another translation) in translate only:
    the pair readers strip them from training and eval pairs."""
    capsys.readouterr()
    assert main(["translate", str(s2s_run), "ich sehe den", "  ich sehe den\t",
                 "--beam-size", "1"]) == 0
    out = capsys.readouterr()
    first, second = out.out.splitlines()
    assert first == second and "<unk>" not in out.err


def test_texts_as_arguments_and_in_a_file_at_once_are_refused(s2s_run, tmp_path, capsys,
                                                              monkeypatch):
    """The file (or standard input) was read and the arguments dropped, or the other way."""
    import io
    f = tmp_path / "in.txt"
    f.write_text("ich sehe den\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["translate", str(s2s_run), "ich sehe den", "--file", str(f)]) == 2
    assert "give the texts as arguments or in --file, not both" in capsys.readouterr().err
    assert main(["translate", str(s2s_run), "-", "--file", str(f)]) == 2   # stdin read, file not
    assert "not both" in capsys.readouterr().err
    assert main(["translate", str(s2s_run), "ich sehe den", " "]) == 2
    assert "argument 2: empty source sentence" in capsys.readouterr().err
    latin = io.TextIOWrapper(io.BytesIO("caf\xe9 sehe\n".encode("latin-1")), "utf-8",
                             errors="surrogateescape")
    monkeypatch.setattr("sys.stdin", latin)
    assert main(["translate", str(s2s_run), "--file", "-"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["rnnkit: error: <stdin>:1: not UTF-8 (byte 0xe9 at offset 3: invalid "
                   "continuation byte); give UTF-8 text, e.g. through iconv -f LATIN1 -t UTF-8 "
                   "(if it is Latin-1)"], err


def test_the_table_names_what_it_counts():
    """A tagger's size is its tokens ('176 examples' said otherwise) and its chunk count a
    whole number ('17.0000')."""
    from rnnkit.cli.evaluate import format_table
    text = format_table({"file": "f.txt", "kind": "tag", "size": 176, "accuracy": 0.5,
                         "chunks": 17.0, "chunk_f1": 1.0})
    assert text.splitlines()[0] == "tag run on f.txt: 176 tokens"
    assert "  chunks            17\n" in text and "  chunk_f1      1.0000\n" in text


def test_counts_print_as_whole_numbers():
    table = evaluate.format_table({"kind": "forecast", "file": "f.csv", "size": 40,
                                   "origins": 29.0, "mae": 1.5})
    assert "origins          29" in table and "mae          1.5000" in table   # was 29.0000
