"""rnnkit eval and predict --eval of a classifier: the run's own test file scores as metrics.json
says (loss with and without class weights, per-class figures), unknown labels and class folders
are named, and predict refuses texts beside --eval."""
import pytest

from rnnkit.cli.main import main
from rnnkit.data import DataError
from rnnkit.tasks.classify_trained import Classifier, evaluate_file
from rnnkit.tasks.common import train
from rnnkit.train import TrainConfig

from test_classify_tokens import ZH_NEG, ZH_POS, write_zh, zh_task


def test_evaluate_file_and_predict_eval(tmp_path, capsys):
    task = zh_task(tmp_path)
    out = tmp_path / "run"
    train(task, TrainConfig(max_steps=20, eval_every=10, lr=0.02), out, quiet=True,
          log=lambda *a: None)
    path = write_zh(tmp_path, "eval.tsv")
    m = evaluate_file(out, path)
    assert m["kind"] == "classify" and m["size"] == 30 and 0 <= m["accuracy"] <= 1
    assert set(m) >= {"file", "macro_f1"}
    bad = write_zh(tmp_path, "bad.tsv", ["positive\t好", "neutral\t一般"])
    with pytest.raises(DataError, match=r"bad.tsv:2: unknown label 'neutral'"):
        evaluate_file(out, bad)
    assert main(["predict", str(out), "--eval", str(path)]) == 0
    assert "30 examples, accuracy" in capsys.readouterr().out
    assert "warning" not in capsys.readouterr().err
    latin = write_zh(tmp_path, "latin.tsv", ["positive\tgood film", "negative\tbad film"])
    evaluate_file(out, latin)   # characters the model never read: warned about, still scored
    assert "latin.tsv: the model's vocabulary holds 0% of the file's tokens" \
        in capsys.readouterr().err


@pytest.mark.parametrize("class_weight", ["none", "balanced"])
def test_evaluate_file_scores_the_run_s_test_file_as_training_did(tmp_path, capsys,
                                                                  class_weight):
    """With --class-weight balanced the test loss was the weighted mean: 0.67 where eval said
    0.55."""
    test = write_zh(tmp_path, "test.tsv", [f"positive\t{ZH_POS[0]}很", f"negative\t{ZH_NEG[1]}的",
                                           f"negative\t{ZH_NEG[3]}"])
    out = tmp_path / "run"
    train(zh_task(tmp_path, test_data=str(test), class_weight=class_weight),
          TrainConfig(max_steps=20, eval_every=10, lr=0.02), out, quiet=True,
          log=lambda *a: None)
    import json
    run = json.loads((out / "metrics.json").read_text())
    m = evaluate_file(out, test)
    assert m["size"] == run["test_size"] == 9
    assert m["loss"] == pytest.approx(run["test_loss"], rel=1e-5)
    assert (m["accuracy"], m["macro_f1"]) == (run["test_accuracy"], run["test_macro_f1"])
    assert m["per_class"] == run["test_per_class"]
    assert main(["eval", str(out), str(test)]) == 0
    table = capsys.readouterr().out
    assert "  per_class:" in table and "support" in table and "negative" in table


def test_predict_of_no_texts_and_eval_beside_texts(tmp_path, capsys):
    out = tmp_path / "run"
    train(zh_task(tmp_path), TrainConfig(max_steps=4, eval_every=2), out, quiet=True,
          log=lambda *a: None)
    assert Classifier.load(out).predict([]) == []          # was torch.cat's error
    path = write_zh(tmp_path, "eval.tsv")
    capsys.readouterr()
    assert main(["predict", str(out), "好书", "--eval", str(path)]) == 2   # the text was dropped
    assert "--eval scores a labelled file; give no texts" in capsys.readouterr().err
    assert main(["predict", str(out), "--eval", str(path), "--json"]) == 0
    import json
    assert json.loads(capsys.readouterr().out)["size"] == 30
    folder = tmp_path / "classes"
    for label in ("positive", "neutral"):
        (folder / label).mkdir(parents=True)
        (folder / label / "1.txt").write_text("好书", encoding="utf-8")
    with pytest.raises(DataError, match=r"classes/neutral: unknown label 'neutral'"):
        evaluate_file(out, folder)


def test_predict_warns_of_a_labelled_file_and_of_text_it_cannot_read(tmp_path, capsys):
    """A label<TAB>text file given to predict classified each label as words of its text; a
    text of words the model never read got a label and no word of doubt (eval warned)."""
    out = tmp_path / "run"
    train(zh_task(tmp_path), TrainConfig(max_steps=4, eval_every=2), out, quiet=True,
          log=lambda *a: None)
    labelled = write_zh(tmp_path, "labelled.tsv", [f"positive\t{ZH_POS[0]}",
                                                   f"negative\t{ZH_NEG[0]}"])
    capsys.readouterr()
    assert main(["predict", str(out), "--file", str(labelled)]) == 0
    assert "labelled.tsv: every line starts with one of the model's labels and a tab" \
        in capsys.readouterr().err
    assert main(["predict", str(out), "good film"]) == 0
    assert "argument: the model's vocabulary holds 0% of the arguments' tokens" \
        in capsys.readouterr().err
    assert main(["predict", str(out), ZH_POS[0], f"positive,{ZH_POS[1]}"]) == 0
    assert "warning" not in capsys.readouterr().err
