"""Working with trained runs: a resume that changes a data setting the model fills in, one with
nothing left to train, one that lays the schedule out again, one from another folder, a classifier resumed step for step, and BLEU
on outputs too short for 4-grams."""
import json
import os

import pytest

from rnnkit.cli.main import main
from rnnkit.tasks.translation import corpus_bleu

from task_fixtures import write_labelled, write_series

QUIET = ["--warmup-steps", "0", "--quiet"]
FORECAST = ["--window", "12", "--horizon", "3", "--layers", "1", "--hidden", "8", "--batch", "8"]
CLASSIFY = ["--hidden", "8", "--embed", "8", "--batch", "8", "--schedule", "constant",
            "--eval-every", "1"]


def train(argv, capsys=None):
    assert main(["train", *argv, *QUIET]) == 0
    return capsys.readouterr() if capsys else None


def error_of(capsys, argv):
    assert main(["train", *argv, *QUIET]) == 2
    return capsys.readouterr().err


def test_resume_refuses_a_changed_window_or_horizon(tmp_path, capsys):
    out = str(tmp_path / "run")
    train(["forecast", "--data", str(write_series(tmp_path)), "--out", out, *FORECAST,
           "--max-steps", "2"])
    for flag, value in (("--window", "24"), ("--horizon", "6")):
        err = error_of(capsys, ["forecast", "--out", out, "--resume", "--max-steps", "3", flag,
                                value])
        assert f"{flag} {value}: on --resume the model and data settings are the run's" in err


def test_resume_takes_the_runs_own_auto_flags_and_refuses_an_added_part(tmp_path, capsys):
    """--window 0 (chosen from the data) restated on --resume is the run's own flag, though the
    run stored the window it chose; a --val-data the run never had is a changed setting."""
    out, data = str(tmp_path / "run"), str(write_series(tmp_path))
    train(["forecast", "--data", data, "--out", out, *FORECAST[2:], "--window", "0",
           "--max-steps", "2"])
    train(["forecast", "--data", data, "--out", out, "--resume", "--max-steps", "3",
           "--window", "0"])
    err = error_of(capsys, ["forecast", "--out", out, "--resume", "--max-steps", "4",
                            "--window", "5"])
    assert "--window 5: on --resume the model and data settings are the run's" in err
    extra = tmp_path / "val.csv"
    extra.write_text(open(data).read())
    err = error_of(capsys, ["forecast", "--out", out, "--resume", "--max-steps", "4",
                            "--val-data", str(extra)])
    assert "--val-data" in err and "on --resume the model and data settings are the run's ('')" in err


def test_a_resume_with_nothing_to_train_says_so(tmp_path, capsys):
    out = str(tmp_path / "run")
    train(["forecast", "--data", str(write_series(tmp_path)), "--out", out, *FORECAST,
           "--max-steps", "2"])
    capsys.readouterr()
    err = train(["forecast", "--out", out, "--resume", "--max-steps", "2"], capsys).err
    assert "is at step 2 and --max-steps is 2: nothing to train" in err
    err = train(["forecast", "--out", out, "--resume", "--max-steps", "4"], capsys).err
    assert ("the run's 2 steps followed a cosine learning-rate schedule laid out over 2 steps; "
            "it goes on laid out over 4") in err
    err = train(["forecast", "--out", out, "--resume", "--max-steps", "6", "--schedule",
                 "constant"], capsys).err
    assert "learning-rate schedule" not in err
    timed = str(tmp_path / "timed")       # a time limit spent: more steps alone train nothing
    train(["forecast", "--data", str(write_series(tmp_path)), "--out", timed, *FORECAST,
           "--max-minutes", "0.00001"])   # 0.6 ms: spent by the first evaluation, however fast
    capsys.readouterr()
    err = train(["forecast", "--out", timed, "--resume", "--max-steps", "50"], capsys).err
    assert "and --max-minutes is 1e-05: nothing to train; give a larger --max-minutes" in err
    assert "learning-rate schedule" not in err


def test_a_run_resumes_from_another_folder(tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    write_series(work)
    monkeypatch.chdir(work)
    train(["forecast", "--data", "series.csv", "--out", "run", *FORECAST, "--max-steps", "2"])
    monkeypatch.chdir(tmp_path)                       # the data path was relative to work/
    train(["forecast", "--out", "work/run", "--resume", "--max-steps", "3"])
    rows = [json.loads(l) for l in open(tmp_path / "work/run/metrics.jsonl")]
    assert rows[-1]["step"] == 3
    os.rename(work / "series.csv", tmp_path / "moved.csv")   # moved: named again, same bytes
    train(["forecast", "--out", "work/run", "--resume", "--max-steps", "4", "--data",
           "moved.csv"])
    assert json.loads(open(tmp_path / "work/run/metrics.jsonl").readlines()[-1])["step"] == 4


def test_a_classifier_resumes_step_for_step(tmp_path):
    """The linear start's scorer, built again after a resume, draws nothing from the run's
    random stream (dropout's)."""
    data = str(write_labelled(tmp_path))
    train(["classify", "--data", data, "--out", str(tmp_path / "one"), *CLASSIFY,
           "--max-steps", "6"])
    train(["classify", "--data", data, "--out", str(tmp_path / "two"), *CLASSIFY,
           "--max-steps", "3"])
    train(["classify", "--out", str(tmp_path / "two"), "--resume", "--max-steps", "6"])
    losses = [[json.loads(l).get("train_loss") for l in open(tmp_path / run / "metrics.jsonl")]
              for run in ("one", "two")]
    assert losses[0] == losses[1] and len(losses[0]) >= 6


@pytest.mark.parametrize("hyps, refs, low", [
    (["I see the", "a cat"], ["I see the", "a cat"], 99.99),   # right, but under 4 tokens
    (["the cat sat on the mat today"], ["the cat sat on the mat today"], 99.99)])
def test_bleu_of_short_right_outputs(hyps, refs, low):
    assert corpus_bleu(hyps, refs) > low


def test_the_first_resumed_step_runs_at_the_new_rate(tmp_path):
    """The optimizer kept the saved rate for one step: a resume at --lr 1e-9 moved the weights
    by 2e-3, and more steps after a cosine run's end (its rate annealed to 0) did not move
    them at all while metrics.jsonl said otherwise."""
    import torch
    out = str(tmp_path / "run")
    train(["classify", "--data", str(write_labelled(tmp_path)), "--out", out, *CLASSIFY,
           "--max-steps", "3"])
    weights = lambda: torch.load(f"{out}/last.pt", weights_only=True)["model"]   # noqa: E731
    before = weights()
    train(["classify", "--out", out, "--resume", "--max-steps", "4", "--lr", "1e-9"])
    moved = max(float((before[k].float() - w.float()).abs().max())
                for k, w in weights().items())
    assert 0 < moved < 1e-7


def test_a_data_folder_given_again_as_typed_is_the_runs(tmp_path, monkeypatch):
    """A folder given as --data the same way on --resume (relative, as the run was started) is
    no change; it was compared as typed with the absolute path the run stored."""
    from lm_fixtures import write_corpus
    monkeypatch.chdir(tmp_path)
    (tmp_path / "texts").mkdir()
    for name in ("a.txt", "b.txt"):
        write_corpus(tmp_path).rename(tmp_path / "texts" / name)
    lm = ["lm", "--hidden", "8", "--embed", "8", "--layers", "1", "--batch", "4", "--seq-len",
          "8", "--out", "run"]
    train([*lm, "--data", "texts", "--max-steps", "2"])
    train([*lm, "--data", "texts", "--resume", "--max-steps", "3"])
    train([*lm, "--data", "./texts/", "--resume", "--max-steps", "4"])


def test_a_flag_the_config_composes_is_the_runs_as_typed():
    """--alphabet typed decomposed (NFD) is stored composed: the same flag restated on
    --resume was refused with two strings that look alike."""
    from rnnkit.cli.task_runs import same_setting
    assert same_setting("ab\u0065\u0301", "ab\u00e9") and not same_setting("abe", "ab\u00e9")
    assert same_setting(3, 3) and not same_setting(3, "3")


def test_a_fresh_run_does_not_replace_a_finished_run_without_its_last_checkpoint(tmp_path,
                                                                                 capsys):
    """last.pt removed (it holds the optimizer): a fresh run silently replaced best.pt and the
    metrics of the finished run."""
    out = tmp_path / "run"
    train(["forecast", "--data", str(write_series(tmp_path)), "--out", str(out), *FORECAST,
           "--max-steps", "2"])
    (out / "last.pt").unlink()
    before = (out / "best.pt").read_bytes()
    err = error_of(capsys, ["forecast", "--data", str(write_series(tmp_path)), "--out",
                            str(out), *FORECAST, "--max-steps", "2"])
    assert "holds a run's best.pt and metrics.json (its last.pt is gone" in err
    assert (out / "best.pt").read_bytes() == before


def test_a_resume_without_best_pt_is_refused_before_training(tmp_path, capsys):
    """It trained on, then said the run learned nothing (no finite validation loss)."""
    out = tmp_path / "run"
    train(["forecast", "--data", str(write_series(tmp_path)), "--out", str(out), *FORECAST,
           "--max-steps", "2"])
    (out / "best.pt").unlink()
    err = error_of(capsys, ["forecast", "--out", str(out), "--resume", "--max-steps", "4"])
    assert "best.pt: missing: the run's best model (step" in err


def test_a_resume_under_another_time_limit_says_its_schedule_is_relaid(capsys):
    """A run of --max-minutes 0.5 resumed with --max-minutes 1 re-laid its schedule over the
    minute (its lr back from 4e-19 to 2e-3) and said nothing; another --max-steps says so."""
    import dataclasses

    from rnnkit.cli.task_runs import relaid
    from rnnkit.train import TrainConfig
    saved = TrainConfig(max_steps=0, max_minutes=0.5, schedule="cosine")
    ckpt = {"train_config": dataclasses.asdict(saved), "trainer": {"step": 5761, "elapsed": 30.0}}
    relaid(dataclasses.replace(saved, max_minutes=1.0), ckpt)
    assert ("the run's 5,761 steps followed a cosine learning-rate schedule laid out over 0.5 "
            "minutes; it goes on laid out over 1") in capsys.readouterr().err
    relaid(dataclasses.replace(saved, max_minutes=1.0, schedule="constant"), ckpt)
    relaid(saved, ckpt)
    assert "schedule" not in capsys.readouterr().err
    relaid(dataclasses.replace(saved, max_minutes=0, max_steps=9000), ckpt)   # was garbled
    assert ("laid out over its time limit; it goes on laid out over 9,000 steps, so the run "
            "will not equal one of that length") in capsys.readouterr().err


def test_a_refused_switch_is_named_as_typed(tmp_path, capsys):
    """--no-bidirectional on --resume was refused as "--bidirectional False"."""
    from task_fixtures import write_labelled
    out = str(tmp_path / "run")
    train(["classify", "--data", str(write_labelled(tmp_path)), "--out", out, "--hidden", "8",
           "--embed", "8", "--max-steps", "2"])
    err = error_of(capsys, ["classify", "--out", out, "--resume", "--max-steps", "3",
                            "--no-bidirectional"])
    assert err.startswith("rnnkit: error: --no-bidirectional: on --resume the model and data "
                          "settings are the run's (True)")


def test_the_time_spent_reading_the_data_counts_towards_the_budget(tmp_path):
    """The forecaster's choice of its parts took 30 s on 20,000 hourly steps outside
    --max-minutes 0.5: the run took 62 s. Given as spent, it leaves no time to train."""
    import json
    from rnnkit.models.forecaster import ForecasterConfig
    from rnnkit.tasks.common import train as train_task
    from rnnkit.tasks.forecast import ForecastData, build_forecast_task
    from rnnkit.train import TrainConfig
    task = build_forecast_task(ForecastData(data=str(write_series(tmp_path)), season=12),
                               ForecasterConfig(hidden=8), log=lambda *a: None)
    out = tmp_path / "run"
    train_task(task, TrainConfig(max_minutes=0.5, max_steps=0, eval_every=5), out, quiet=True,
               log=lambda *a: None, spent=30.0)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 0 and metrics["wall_seconds"] >= 30
