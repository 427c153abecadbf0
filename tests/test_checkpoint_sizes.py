"""A run's vocabulary, labels, tags or alphabet and its model's sizes must agree: a checkpoint
re-signed with one of another size (written by hand, or by another program) is refused in one
line naming the file, not an index error or a label out of range."""
import pytest

from rnnkit.cli.main import main
from rnnkit.train.checkpoint import load_checkpoint, save_checkpoint

from task_fixtures import write_labelled, write_tagged

SMALL = ["--max-steps", "2", "--eval-every", "2", "--hidden", "8", "--quiet"]


def refused(capsys, command, ckpt, damage, said):
    bad = {k: v for k, v in ckpt.items() if k != "digest"}
    damage(bad)
    path = command[1]
    save_checkpoint(path, bad)
    capsys.readouterr()
    assert main(command) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"rnnkit: error: {path}: its content does not "
                                               f"fit") and said in err[0], err


@pytest.mark.parametrize("damage, said", [
    (lambda c: c.update(labels=c["labels"][:1]), "its labels has 1 labels, its model 2"),
    (lambda c: c.update(labels=c["labels"] + ["other"]), "its labels has 3 labels"),
    (lambda c: c["vocab"]["tokens"].extend(["zz1", "zz2"]), "its vocabulary has"),
])
def test_classifier(tmp_path, capsys, damage, said):
    run = tmp_path / "run"
    assert main(["train", "classify", "--data", str(write_labelled(tmp_path)), "--out", str(run),
                 *SMALL]) == 0
    refused(capsys, ["predict", str(tmp_path / "x.pt"), "good film"],
            load_checkpoint(run / "best.pt"), damage, said)


@pytest.mark.parametrize("damage, said", [
    (lambda c: c.update(tags=c["tags"][:-1]), "its tag set has"),
    (lambda c: c.update(tags=None), "its tag set has a NoneType"),
])
def test_tagger(tmp_path, capsys, damage, said):
    run = tmp_path / "run"
    assert main(["train", "tag", "--data", str(write_tagged(tmp_path)), "--out", str(run),
                 *SMALL]) == 0
    refused(capsys, ["tag", str(tmp_path / "x.pt"), "the dog sat"],
            load_checkpoint(run / "best.pt"), damage, said)


def test_recogniser(tmp_path, capsys):
    pytest.importorskip("captcha")
    from recognize_fixtures import write_captchas
    run = tmp_path / "run"
    folder = write_captchas(tmp_path / "caps")
    assert main(["train", "recognize", "--data", str(folder), "--out", str(run), "--height", "16",
                 "--channels", "4", "--layers", "1", "--time-stride", "2", *SMALL]) == 0
    refused(capsys, ["recognize", str(tmp_path / "x.pt"), str(next(folder.glob("*.png")))],
            load_checkpoint(run / "best.pt"), lambda c: c.update(alphabet=c["alphabet"][:2]),
            "its alphabet has 2 characters, its model 4")


@pytest.mark.parametrize("damage, said", [
    (lambda c: c.update(season="x"), "season 'x' must be counts"),
    (lambda c: c.update(split=[1]), "its split [1] is not two step counts"),
    (lambda c: c.update(labels=5), "its time labels are not one a step"),
    (lambda c: c.update(names=None), "names do not fit"),
    (lambda c: c["scaler"].update(mean=None), "its scaler's mean"),
])
def test_forecaster_fields_of_another_type(tmp_path, capsys, damage, said):
    from task_fixtures import write_series
    run = tmp_path / "run"
    assert main(["train", "forecast", "--data", str(write_series(tmp_path)), "--out", str(run),
                 "--max-steps", "2", "--eval-every", "2", "--quiet"]) == 0
    refused(capsys, ["forecast", str(tmp_path / "x.pt"), "--png", str(tmp_path / "f.png")],
            load_checkpoint(run / "best.pt"), damage, said)


@pytest.mark.parametrize("field", ["scheduler", "task", "data_fingerprint"])
def test_a_last_pt_field_of_another_type_is_one_line_on_resume(tmp_path, capsys, field):
    run = tmp_path / "run"
    assert main(["train", "classify", "--data", str(write_labelled(tmp_path)), "--out", str(run),
                 *SMALL]) == 0
    last = load_checkpoint(run / "last.pt")
    save_checkpoint(run / "last.pt", {k: v for k, v in last.items() if k != "digest"} |
                    {field: None})
    capsys.readouterr()
    assert main(["train", "classify", "--out", str(run), "--resume", "--max-steps", "4",
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"rnnkit: error: {run / 'last.pt'}: its content does not fit"), err
