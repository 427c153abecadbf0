"""No run silently lost or corrupted: one run per folder, resumed only on the data it started on,
leftovers of killed runs cleaned, a run that learns nothing fails, every failure one line."""
import errno
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from rnnkit.cli import main as cli
from rnnkit.cli.main import main
from rnnkit.tasks.common import train
from rnnkit.train import TrainConfig, save_checkpoint
from rnnkit.train.runlock import RunLock, RunLockError
from rnnkit.train.trainer import MAX_SKIPPED_IN_A_ROW, Trainer, TrainingError

from task_fixtures import write_labelled

FAST = ["--max-steps", "6", "--eval-every", "3", "--warmup-steps", "0", "--quiet"]
TINY_LM = ["--hidden", "16", "--embed", "8", "--layers", "1", "--batch", "4", "--seq-len", "16"]


def lm_corpus(tmp_path, text="the cat sat on the mat.\n" * 40):
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- the run-folder lock
def test_second_run_on_a_locked_folder_is_refused(tmp_path):
    with RunLock(tmp_path / "run"):
        with pytest.raises(RunLockError, match=rf"{tmp_path}/run: another rnnkit run .*pid {os.getpid()}"):
            RunLock(tmp_path / "run").acquire()
    with RunLock(tmp_path / "run"):   # released: free again
        pass


def test_a_fresh_run_into_a_live_run_s_folder_names_the_live_run(tmp_path, capsys):
    """It was told to pass --resume, which then met the lock."""
    run = tmp_path / "run"
    assert main(["train", "lm", "--data", str(lm_corpus(tmp_path)), "--out", str(run),
                 *TINY_LM, *FAST]) == 0
    capsys.readouterr()
    with RunLock(run):
        assert main(["train", "lm", "--data", str(lm_corpus(tmp_path)), "--out", str(run),
                     *TINY_LM, *FAST]) == 2
        err = capsys.readouterr().err
        assert "another rnnkit run is training into this folder" in err and "--resume" not in err
    assert RunLock.holder(run) is None


def test_lock_of_a_killed_run_is_taken_over(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from rnnkit.train.runlock import RunLock\n"
        f"RunLock({str(run)!r}).acquire(); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RunLockError):
        RunLock(run).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    (run / ".last.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    with RunLock(run):
        assert f"pid {os.getpid()}" in (run / ".lock").read_text()
        assert not list(run.glob(".*.tmp"))           # the killed run's partial write is gone


def test_refused_run_leaves_no_folder_and_a_file_is_no_folder(tmp_path, capsys):
    missing = tmp_path / "nope.txt"
    assert main(["train", "lm", "--data", str(missing), "--out", str(tmp_path / "run"), *FAST]) == 2
    assert not (tmp_path / "run").exists()
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["train", "lm", "--data", str(lm_corpus(tmp_path)), "--out", str(afile),
                 *TINY_LM, *FAST]) == 2
    assert "afile: --out must be a folder" in capsys.readouterr().err


# ---------------------------------------------------------------- resume on the same data only
def test_resume_refuses_changed_data(tmp_path, capsys):
    data, out = write_labelled(tmp_path), tmp_path / "run"
    flags = ["--hidden", "8", "--embed", "8", "--batch", "8"]
    assert main(["train", "classify", "--data", str(data), "--out", str(out), *flags, *FAST]) == 0
    assert json.loads((out / "metrics.json").read_text())["steps"] == 6
    with open(data, "a", encoding="utf-8") as f:
        f.write("positive\ta good new film\n")
    capsys.readouterr()
    resume = ["train", "classify", "--out", str(out), "--resume", "--max-steps", "9", "--quiet"]
    assert main(resume) == 2
    err = capsys.readouterr().err.strip()
    assert "the --data file changed since this run started" in err and len(err.splitlines()) == 1
    assert main([*resume, "--allow-data-change"]) != 0          # labels and vocabulary: no
    assert "cannot continue on changed data" in capsys.readouterr().err


def test_resume_refuses_a_changed_folder_or_listed_file(tmp_path, capsys):
    """A folder is fingerprinted by its files; a listing by the files it names too."""
    import shutil
    from recognize_fixtures import write_captchas, write_tsv
    from rnnkit.cli.fingerprints import check_same_data
    folder = write_captchas(tmp_path / "caps")
    listing = write_tsv(tmp_path / "list.tsv", [(f"caps/{p.name}", p.stem.split("_")[0])
                                                for p in sorted(folder.glob("*.png"))])
    flags = ["--height", "16", "--channels", "4", "--hidden", "6", "--layers", "1",
             "--time-stride", "2", "--batch", "4", "--test-fraction", "0.25",
             "--val-fraction", "0.25", "--warmup-steps", "0", "--eval-every", "2", "--quiet"]
    for data, name in ((folder, "folder"), (listing, "listing")):
        out = tmp_path / f"run-{name}"
        assert main(["train", "recognize", "--data", str(data), "--out", str(out),
                     "--max-steps", "2", *flags]) == 0
    (folder / ".notes").write_text("hidden files are not data")
    resume = ["--resume", "--max-steps", "3", "--quiet"]
    assert main(["train", "recognize", "--out", str(tmp_path / "run-folder"), *resume]) == 0
    first = sorted(folder.glob("*.png"))[0]
    shutil.copy(sorted(folder.glob("*.png"))[1], first)             # same name, other image
    capsys.readouterr()
    assert main(["train", "recognize", "--out", str(tmp_path / "run-folder"), *resume[:2], "4",
                 "--quiet"]) == 2
    assert "the --data folder changed since this run started" in capsys.readouterr().err
    assert main(["train", "recognize", "--out", str(tmp_path / "run-listing"), *resume]) == 2
    assert "the files the --data listing names changed" in capsys.readouterr().err
    # what an older checkpoint could not record is not compared
    check_same_data("run", {"data": "missing"}, {"data": "folder-sha256:ab"}, False)
    check_same_data("run", {"data": "sha256:ab"}, {"data": "sha256:ab", "data:files": "x"}, False)


def test_lm_resume_on_changed_data_only_when_allowed(tmp_path, capsys):
    corpus, out = lm_corpus(tmp_path), tmp_path / "run"
    assert main(["train", "lm", "--data", str(corpus), "--out", str(out), *TINY_LM, *FAST]) == 0
    with open(corpus, "a", encoding="utf-8") as f:
        f.write("the mat sat on the cat.\n" * 5)
    resume = ["train", "lm", "--out", str(out), "--resume", "--max-steps", "9", "--quiet"]
    assert main(resume) == 2
    assert main([*resume, "--allow-data-change"]) == 0
    assert json.loads((out / "metrics.json").read_text())["steps"] == 9


# ---------------------------------------------------------------- a run that learns nothing
class NaNTask:
    """A task whose loss is NaN from step ``from_step`` on."""

    def __init__(self, from_step=0):
        self.model = torch.nn.Linear(2, 1)
        self.from_step = from_step

    def train_batch(self, step):
        return step

    def loss(self, step):
        loss = self.model(torch.ones(1, 2)).pow(2).mean()
        return (loss * float("nan") if step >= self.from_step else loss), 1

    def evaluate(self):
        return {"val_loss": float("nan")}


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")
def test_run_of_non_finite_steps_stops_and_fails(tmp_path):
    trainer = Trainer(NaNTask(), TrainConfig(max_steps=10 * MAX_SKIPPED_IN_A_ROW, warmup_steps=0))
    with pytest.warns(UserWarning, match="non-finite loss"):
        with pytest.raises(TrainingError, match=f"the last {MAX_SKIPPED_IN_A_ROW} steps all had a non-finite loss"):
            trainer.fit()
    assert trainer.step == MAX_SKIPPED_IN_A_ROW - 1


def test_run_without_a_finite_validation_loss_fails(tmp_path):
    config = TrainConfig(max_steps=4, eval_every=2, warmup_steps=0)
    with pytest.raises(TrainingError, match="learned nothing: no evaluation gave a finite"):
        train(NaNTask(from_step=10**6), config, tmp_path / "run", quiet=True, log=lambda *a: None)


# ---------------------------------------------------------------- kills leave nothing inconsistent
def test_finished_run_resumed_is_not_evaluated_twice(tmp_path):
    corpus, out = lm_corpus(tmp_path), tmp_path / "run"
    argv = ["train", "lm", "--data", str(corpus), "--out", str(out), *TINY_LM, *FAST]
    assert main(argv) == 0
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert main(["train", "lm", "--out", str(out), "--resume", "--quiet"]) == 0   # nothing left to do
    assert (out / "metrics.jsonl").read_text().splitlines() == rows
    assert json.loads((out / "metrics.json").read_text())["final_val_loss"] == json.loads(rows[-1])["val_loss"]


def test_best_is_saved_aside_before_last_and_moved_after(tmp_path, monkeypatch):
    """A kill between the writes must leave a best.pt of the step last.pt names as best: the
    new one is written aside first and moved into place once last.pt is written."""
    import rnnkit.train.callbacks as callbacks
    order = []
    monkeypatch.setattr(callbacks, "save_checkpoint", lambda path, state: order.append(path.name))
    monkeypatch.setattr(callbacks.os, "replace",
                        lambda a, b: order.append(f"{a.name} -> {b.name}"))
    cb = callbacks.Checkpointer(tmp_path)

    class T:
        def state_dict(self):
            return {}
    cb.out.mkdir(exist_ok=True)
    cb.on_eval(T(), {"best": True, "step": 1})
    assert order == [".best-next.pt", "last.pt", ".best-next.pt -> best.pt"]
    order.clear()
    cb.on_eval(T(), {"best": False, "step": 2})
    assert order == ["last.pt"]


# ---------------------------------------------------------------- one line for every failure
@pytest.mark.parametrize("error, code, text", [
    (OSError(errno.ENOSPC, "No space left on device", "/data/run/last.pt"), 1,
     "rnnkit: error: /data/run/last.pt: no space left on device"),
    (PermissionError(errno.EACCES, "Permission denied", "/etc/run"), 1,
     "rnnkit: error: /etc/run: permission denied"),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "a/b"), 1,
     "rnnkit: error: a/b: a part of the path is not a folder"),
    (ZeroDivisionError("division by zero"), 1, "rnnkit: error: internal error, ZeroDivisionError"),
    (TrainingError("the run learned nothing"), 1, "rnnkit: error: the run learned nothing"),
])
def test_errors_become_one_line(monkeypatch, capsys, error, code, text):
    def fail(args):
        raise error
    monkeypatch.setattr(cli.kernels, "run", fail)
    assert main(["kernels"]) == code
    err = capsys.readouterr().err
    assert err.startswith(text) and err.count("\n") == 1 and "Traceback" not in err
    with pytest.raises(type(error)):
        main(["--debug", "kernels"])


def test_output_closed_by_its_reader_ends_quietly(tmp_path):
    """``rnnkit data list | head -1``: no BrokenPipeError traceback."""
    proc = subprocess.run(f"{sys.executable} -m rnnkit data list | head -c 1",
                          shell=True, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


# ---------------------------------------------------------------- checkpoints that do not fit
@pytest.mark.parametrize("damage, text", [
    (lambda c: c["model_config"].update(hidden=10**9), "LMConfig.hidden must be in"),
    (lambda c: c["model_config"].update(hidden=24), "size mismatch"),
    (lambda c: c.pop("vocab"), "KeyError"),
    (lambda c: c["vocab"].update(tokens=c["vocab"]["tokens"][:-3]), "its vocabulary has"),
    (lambda c: c["model"][next(iter(c["model"]))].fill_(float("nan")), "NaN or infinite"),
])
def test_checkpoint_that_does_not_fit_is_refused_by_name(tmp_path, capsys, damage, text):
    """A checkpoint whose digest is right but whose content does not fit (written by hand, or
    by another program) is refused by every command that loads it, naming the file."""
    from rnnkit.train import load_checkpoint
    out = tmp_path / "run"
    assert main(["train", "lm", "--data", str(lm_corpus(tmp_path)), "--out", str(out), *TINY_LM, *FAST]) == 0
    ckpt = load_checkpoint(out / "best.pt")
    damage(ckpt)
    save_checkpoint(out / "odd.pt", ckpt)
    capsys.readouterr()
    assert main(["sample", str(out / "odd.pt"), "-n", "1", "--length", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rnnkit: error: {out / 'odd.pt'}: ") and text in err
    assert err.count("\n") == 1


def test_resume_refuses_model_and_data_flags_and_empty_out(tmp_path, capsys):
    corpus, out = lm_corpus(tmp_path), tmp_path / "run"
    assert main(["train", "lm", "--data", str(corpus), "--out", str(out), *TINY_LM, *FAST]) == 0
    capsys.readouterr()
    resume = ["train", "lm", "--out", str(out), "--resume", "--max-steps", "9", "--quiet"]
    assert main([*resume, "--hidden", "32"]) == 2
    assert "--hidden 32: on --resume the model and data settings are the run's (16)" in capsys.readouterr().err
    assert main([*resume, "--hidden", "16", "--data", str(corpus)]) == 0   # the same: fine
    with pytest.raises(SystemExit):
        main(["train", "lm", "--data", str(corpus), "--out", "", *FAST])
    assert "--out: must name a folder" in capsys.readouterr().err


def test_closed_standard_output_is_one_line(tmp_path):
    proc = subprocess.run(f"{sys.executable} -m rnnkit data list >&-", shell=True,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.strip() == \
        "rnnkit: error: standard output is closed; nothing could be written"


def test_telemetry_flag_writes_gradients_and_resume_keeps_them_in_step(tmp_path):
    corpus, out = lm_corpus(tmp_path), tmp_path / "run"
    assert main(["train", "lm", "--data", str(corpus), "--out", str(out), *TINY_LM, *FAST,
                 "--telemetry", "2"]) == 0
    rows = [json.loads(x) for x in (out / "gradients.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 2, 4]
    layer = rows[0]["layers"][next(iter(rows[0]["layers"]))]
    assert len(layer["h"]) == 16 and all(v is None or v >= 0 for v in layer["h"])
    assert main(["train", "lm", "--out", str(out), "--resume", "--max-steps", "9", "--quiet",
                 "--telemetry", "2"]) == 0
    steps = [json.loads(x)["step"] for x in (out / "gradients.jsonl").read_text().splitlines()]
    assert steps == [0, 2, 4, 6, 8]
    # without the flag, --resume goes on recording as the run did (it switched it off)
    assert main(["train", "lm", "--out", str(out), "--resume", "--max-steps", "13",
                 "--quiet"]) == 0
    steps = [json.loads(x)["step"] for x in (out / "gradients.jsonl").read_text().splitlines()]
    assert steps == [0, 2, 4, 6, 8, 10, 12]


def test_telemetry_of_the_step_before_a_checkpoint_survives_a_stop_after_it(tmp_path,
                                                                            monkeypatch):
    """The record of step 9 was written when step 10 began: a run stopped between the
    checkpoint after step 10 and step 10's start, then resumed, never wrote it."""
    from rnnkit.train.trainer import Trainer
    corpus = lm_corpus(tmp_path)
    flags = [*TINY_LM, "--max-steps", "14", "--eval-every", "5", "--quiet", "--telemetry", "3"]
    assert main(["train", "lm", "--data", str(corpus), "--out", str(tmp_path / "whole"),
                 *flags]) == 0
    real = Trainer.train_step

    def stopped_at_10(self, stats):
        if self.step == 10:
            raise KeyboardInterrupt
        return real(self, stats)
    monkeypatch.setattr(Trainer, "train_step", stopped_at_10)
    assert main(["train", "lm", "--data", str(corpus), "--out", str(tmp_path / "cut"),
                 *flags]) == 130
    monkeypatch.setattr(Trainer, "train_step", real)
    assert main(["train", "lm", "--out", str(tmp_path / "cut"), "--resume", "--quiet"]) == 0
    steps = lambda run: [json.loads(x)["step"] for x in   # noqa: E731
                         (tmp_path / run / "gradients.jsonl").read_text().splitlines()]
    assert steps("cut") == steps("whole") == [0, 3, 6, 9, 12]


def test_outputs_that_cannot_be_written_are_refused_before_the_work(tmp_path, capsys):
    """A folder given as a file to write, or a plot format matplotlib does not write without
    more packages, is an argument error naming what was given; a whole pickled module given as
    a checkpoint says what it is, in plain text."""
    from rnnkit.cli.options import image_file, image_format, output_file
    import argparse
    from rnnkit.outputs import atomic_write
    from rnnkit.train.checkpoint import CheckpointError, load_checkpoint
    with pytest.raises(argparse.ArgumentTypeError, match="is a folder, a file was expected"):
        output_file(str(tmp_path))
    with pytest.raises(argparse.ArgumentTypeError, match="expected a .png, .svg or .pdf"):
        image_file(str(tmp_path / "plot.jpg"))
    assert image_format(image_file(str(tmp_path / "p.SVG"))) == "svg"
    assert image_format(tmp_path / "plot") == "png"
    with pytest.raises(IsADirectoryError) as e:
        atomic_write(tmp_path, lambda f: f.write(b"x"))
    assert e.value.filename == str(tmp_path) and not list(tmp_path.parent.glob(".*.tmp"))
    torch.save(torch.nn.Linear(2, 2), tmp_path / "m.pt")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path / "m.pt")
    assert "holds a pickled torch.nn.modules.linear.Linear" in str(e.value)
    assert "\x1b" not in str(e.value)
    with pytest.raises(SystemExit) as e:
        main(["export", str(tmp_path / "m.pt"), "--format", "pt2", "--out", str(tmp_path)])
    assert e.value.code == 2 and "argument --out" in capsys.readouterr().err


def test_an_output_of_a_long_legal_name_is_written_and_errors_name_it(tmp_path):
    """A 250-character name is legal; its temporary file's name (15 more) was not, so the write
    failed as 'file name too long', naming a hidden file the user never gave."""
    import errno
    from rnnkit.outputs import atomic_write
    long = tmp_path / ("e" * 245 + ".json")
    atomic_write(long, lambda f: f.write(b"{}"))
    assert long.read_bytes() == b"{}" and len(list(tmp_path.iterdir())) == 1
    def full(f):
        raise OSError(errno.ENOSPC, "No space left on device", f.name)
    with pytest.raises(OSError) as e:
        atomic_write(tmp_path / "m.json", full)
    assert e.value.filename == str(tmp_path / "m.json")


def test_a_command_line_with_a_name_that_is_not_utf8_takes_the_lock(tmp_path, monkeypatch):
    """Linux names may hold any bytes: Python reads them as surrogates, which the lock's note of
    the command could not encode, so no run could train on such a file."""
    from rnnkit.train.runlock import RunLock
    monkeypatch.setattr("sys.argv", ["rnnkit", "train", "lm", "--data", "lat\udce9.txt"])
    lock = RunLock(tmp_path / "run").acquire()
    try:
        assert "--data lat" in RunLock.holder(tmp_path / "run")
    finally:
        lock.release()



def test_a_resume_whose_data_is_not_found_says_so(tmp_path, capsys, monkeypatch):
    """A run that recorded its --data as given (relative, by an older rnnkit) resumed from
    another folder: "the --data file changed ... the data now gives missing"."""
    from rnnkit.train.checkpoint import load_checkpoint
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    lm_corpus(tmp_path / "a")
    monkeypatch.chdir(tmp_path / "a")
    out = tmp_path / "run"
    assert main(["train", "lm", "--data", "corpus.txt", "--out", str(out), *TINY_LM, *FAST]) == 0
    for name in ("last.pt", "best.pt"):
        ckpt = load_checkpoint(out / name)
        ckpt["data_config"]["data"] = "corpus.txt"
        save_checkpoint(out / name, ckpt)
    monkeypatch.chdir(tmp_path / "b")
    capsys.readouterr()
    assert main(["train", "lm", "--out", str(out), "--resume", "--max-steps", "4"]) == 2
    assert "the run's --data file corpus.txt is not there (a path relative to the folder the run " \
           "started in?); give --data PATH to resume on it" in capsys.readouterr().err
    assert main(["train", "lm", "--out", str(out), "--resume", "--max-steps", "4", "--data",
                 str(tmp_path / "a" / "corpus.txt")]) == 0
