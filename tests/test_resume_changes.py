"""What --resume lets change and what it does with the change: a seed is the run's own, and data
changed under --allow-data-change starts the best over."""
import json

import torch

from rnnkit.cli.main import main

FAST = ["--max-steps", "6", "--eval-every", "3", "--warmup-steps", "0", "--quiet"]
TINY_LM = ["--hidden", "16", "--embed", "8", "--layers", "1", "--batch", "4", "--seq-len", "16"]


def lm_run(tmp_path, text="the cat sat on the mat.\n" * 40, *flags):
    corpus, out = tmp_path / "corpus.txt", tmp_path / "run"
    corpus.write_text(text, encoding="utf-8")
    assert main(["train", "lm", "--data", str(corpus), "--out", str(out), *TINY_LM, *FAST,
                 *flags]) == 0
    return corpus, out


def test_a_resume_with_another_seed_is_refused(tmp_path, capsys):
    """seq2seq and recognize took the new seed's batch order from the resumed step on (a run of
    neither seed), and lm recorded the new seed for a run drawn with the old one."""
    _, out = lm_run(tmp_path, "the cat sat on the mat.\n" * 40, "--seed", "5")
    resume = ["train", "lm", "--out", str(out), "--resume", "--max-steps", "9", "--quiet"]
    capsys.readouterr()
    assert main([*resume, "--seed", "6"]) == 2
    err = capsys.readouterr().err
    assert "--seed 6: on --resume the run goes on with its own random stream (--seed 5" in err
    assert main([*resume, "--seed", "5"]) == 0        # the run's own seed restated
    assert torch.load(out / "last.pt", weights_only=False)["train_config"]["seed"] == 5


def test_changed_data_under_allow_data_change_starts_the_best_over(tmp_path, capsys):
    """best_val stayed the old validation text's loss (0.53 on easy text): no evaluation on the
    new, harder text (2.66 -> 2.27) was ever marked best, and best.pt stayed the old model."""
    corpus, out = lm_run(tmp_path, "ab\n" + "a" * 1200 + "\n", "--lr", "0.05")
    before = json.loads((out / "metrics.json").read_text())["best_val_loss"]
    corpus.write_text("".join("ab"[(i * i) % 7 % 2] for i in range(1200)) + "\n",
                      encoding="utf-8")   # the same characters, harder to predict
    capsys.readouterr()
    assert main(["train", "lm", "--out", str(out), "--resume", "--max-steps", "9",
                 "--allow-data-change", "--lr", "1e-5", "--quiet"]) == 0
    assert (f"best.pt's validation loss, {before:.4g}, was measured on the old validation text"
            in capsys.readouterr().err)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 9 and rows[-1]["best"] and rows[-1]["val_loss"] > before
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best_step"] == 9 and metrics["best_val_loss"] == rows[-1]["val_loss"]
    assert torch.load(out / "best.pt", weights_only=False)["trainer"]["step"] == 9


def test_allow_data_change_with_no_step_left_scores_the_run_again(tmp_path, capsys):
    """At --max-steps already, the best was reset and no evaluation followed: "the run learned
    nothing", exit 1, for a run with a sound best.pt."""
    corpus, out = lm_run(tmp_path, "the cat sat on the mat.\n" * 40)
    corpus.write_text("the mat sat on the cat.\n" * 40, encoding="utf-8")
    capsys.readouterr()
    assert main(["train", "lm", "--out", str(out), "--resume", "--allow-data-change",
                 "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["best_step"] == 6


def test_a_changed_test_file_leaves_the_best_as_it_is(tmp_path, capsys):
    """Only --test-data changed: best.pt's validation loss still holds, but the best was reset."""
    val, test = tmp_path / "val.txt", tmp_path / "test.txt"
    val.write_text("the cat sat.\n" * 10, encoding="utf-8")
    test.write_text("the mat sat.\n" * 10, encoding="utf-8")
    _, out = lm_run(tmp_path, "the cat sat on the mat.\n" * 40, "--val-data", str(val),
                    "--test-data", str(test))
    before = json.loads((out / "metrics.json").read_text())
    test.write_text("the cat mat.\n" * 10, encoding="utf-8")
    capsys.readouterr()
    assert main(["train", "lm", "--out", str(out), "--resume", "--max-steps", "7",
                 "--allow-data-change", "--quiet"]) == 0
    assert "--allow-data-change: best.pt's validation loss" not in capsys.readouterr().err
    after = json.loads((out / "metrics.json").read_text())
    assert after["best_val_loss"] <= before["best_val_loss"]
    assert after["best_step"] in (before["best_step"], 7)
