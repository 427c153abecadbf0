"""``rnnkit eval`` of the recognisers (CTC and image-to-text): a run's own test file scores as
its metrics.json says, folders are read, and foreign inputs are one line naming the file."""
import json

import pytest

from rnnkit.cli.main import main

from recognize_fixtures import TEXTS, write_captchas, write_tsv

pytest.importorskip("captcha")
SMALL = ["--quiet", "--max-steps", "3", "--height", "16", "--channels", "4", "--hidden", "8",
         "--layers", "1", "--batch", "4", "--val-fraction", "0.25"]


def trained(tmp_path, kind, capsys):
    """A run of ``kind`` trained on 8 captchas, tested on a TSV listing 4 others."""
    folder = write_captchas(tmp_path / "caps")
    images = sorted(folder.glob("*.png"), key=lambda p: int(p.stem.split("_")[1]))
    (tmp_path / "train").mkdir()
    for p in images[:8]:
        p.rename(tmp_path / "train" / p.name)
    test = write_tsv(folder / "test.tsv", [(p.name, p.stem.split("_")[0]) for p in images[8:]])
    run = tmp_path / kind
    stride = ["--time-stride", "2"] if kind == "recognize" else []
    assert main(["train", kind, "--data", str(tmp_path / "train"), "--test-data", str(test),
                 "--out", str(run), *SMALL, *stride]) == 0
    capsys.readouterr()
    return run, test, json.loads((run / "metrics.json").read_text())


@pytest.mark.parametrize("kind", ["recognize", "image-to-text"])
def test_eval_of_the_run_s_test_file_gives_its_test_figures(tmp_path, capsys, kind):
    run, test, metrics = trained(tmp_path, kind, capsys)
    assert main(["eval", str(run), str(test), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert (m["kind"], m["size"], m["beam"]) == (kind, metrics["test_size"], 8)
    assert m["loss"] == pytest.approx(metrics["test_loss"], rel=1e-5)
    for name in ("sequence_accuracy", "cer", "wer"):
        assert m[f"greedy_{name}"] == pytest.approx(metrics[f"test_{name}"])
        assert m[f"beam8_{name}"] == pytest.approx(metrics[f"test_beam8_{name}"])
    assert main(["eval", str(run), str(tmp_path / "train"), "--beam-size", "1"]) == 0
    table = capsys.readouterr().out
    assert table.startswith(f"{kind} run on {tmp_path / 'train'}: 8 ") and "beam8" not in table


def test_eval_refuses_what_the_model_cannot_read(tmp_path, capsys):
    run, test, _ = trained(tmp_path, "recognize", capsys)
    bad = write_tsv(test.parent / "bad.tsv", [(sorted(test.parent.glob("*.png"))[0].name, "AZ")])
    assert main(["eval", str(run), str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has 'Z', which the model never learnt to write" in err[0], err
    assert set("".join(TEXTS)) == set("AB12")


def test_eval_scores_short_examples_as_errors_without_advising_a_flag_it_lacks(capsys):
    """The model's time stride is fixed: eval advised '--time-stride', which it has not. A
    scored part keeps the examples the model cannot write (they were left out, and the scores
    were those of the rest); training and validation leave them out."""
    import torch
    from rnnkit.tasks.recognize_data import keep_fitting
    examples = [(torch.zeros(4, 4), [1, 2], "a.png"), (torch.zeros(4, 40), [1, 2], "b.png")]
    assert keep_fitting(examples, 4, "evaluation") == examples
    err = capsys.readouterr().err
    assert "1 evaluation example(s) scored as they are read, which cannot be right, and left " \
           "out of the loss" in err and "--time-stride" not in err
    assert keep_fitting(examples, 4, "test") == examples
    assert "a lower --time-stride keeps them" in capsys.readouterr().err
    assert keep_fitting(examples, 4, "training") == examples[1:]
    assert "1 training example(s) left out" in capsys.readouterr().err
    assert keep_fitting(examples, None, "test") == examples


def test_eval_counts_a_file_too_short_for_its_transcript_as_an_error(tmp_path, capsys):
    """A listing of the test files and one blank strip too narrow for its transcript: it was
    left out, and the figures were the other files'."""
    from PIL import Image

    from rnnkit.tasks.recognize import evaluate_file
    run, test, _ = trained(tmp_path, "recognize", capsys)
    files = sorted(test.parent.glob("*.png"))
    Image.new("L", (4, 16), 255).save(test.parent / "narrow.png")
    rows = [(p.name, p.stem.split("_")[0]) for p in files] + [("narrow.png", "AB12AB12")]
    whole = write_tsv(test.parent / "whole.tsv", rows)
    some = write_tsv(test.parent / "some.tsv", rows[:-1])
    a, b = evaluate_file(run, some, beam=1), evaluate_file(run, whole, beam=1)
    assert "scored as they are read" in capsys.readouterr().err
    n = len(files)
    assert (a["size"], b["size"]) == (n, n + 1) and b["loss"] == pytest.approx(a["loss"])
    assert b["greedy_sequence_accuracy"] == pytest.approx(a["greedy_sequence_accuracy"] * n
                                                          / (n + 1))


def test_an_alphabet_is_read_composed_as_transcripts_are(tmp_path):
    """An --alphabet copied from a macOS file name (n + combining tilde) is NFC, as the
    transcripts are: 'ñ' was not in the alphabet 'año' as typed."""
    from rnnkit.tasks.recognize_data import RecognizeData
    assert RecognizeData(alphabet="an\u0303oc\u0327e\u0301").alphabet == "añoçé"


def test_a_data_folders_subfolders_are_said_to_be_left_out(tmp_path):
    from recognize_fixtures import write_captchas
    from rnnkit.data.media import read_folder
    folder = write_captchas(tmp_path / "images", texts=["AB", "B1"])
    write_captchas(folder / "more", texts=["A1"])
    said = []
    assert len(read_folder(folder, said.append)) == 2
    assert said and "1 subfolder(s) not read (e.g. more)" in said[0]


def test_a_captcha_set_without_the_package_says_so_before_promising_to_render(monkeypatch,
                                                                                tmp_path):
    from rnnkit.data import DataError, captchas
    def missing():
        raise DataError("--data captcha needs the captcha package")
    monkeypatch.setattr(captchas, "image_module", missing)
    said = []
    with pytest.raises(DataError, match="needs the captcha package"):
        captchas.captcha_set(600, "AB12", 2, 4, 32, 7, cache=tmp_path, log=said.append)
    assert said == []
