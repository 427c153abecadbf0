"""Errors of the command line itself: an unknown flag said by its own command with the nearest
flag, and out of memory naming the command's own sizes."""
import pytest

from rnnkit.cli.main import main


def test_an_unknown_flag_is_said_by_its_command_with_the_nearest_flag(capsys):
    """It was the top level's: "usage: rnnkit [-h] ..." and "rnnkit: error: ..."."""
    with pytest.raises(SystemExit):
        main(["train", "classify", "--data", "x.tsv", "--out", "r", "--clases", "a,b"])
    err = capsys.readouterr().err
    assert err.startswith("usage: rnnkit train classify") and err.rstrip().endswith(
        "rnnkit train classify: error: unrecognized arguments: --clases a,b (did you mean "
        "--classes?)")
    with pytest.raises(SystemExit):
        main(["eval", "run", "file", "--foo"])
    assert capsys.readouterr().err.rstrip().endswith("rnnkit eval: error: unrecognized "
                                                     "arguments: --foo")
    with pytest.raises(SystemExit):        # before the command: the top level's, as it stands
        main(["--bogus", "train", "lm", "--out", "r"])
    assert capsys.readouterr().err.rstrip().endswith("rnnkit: error: unrecognized arguments: "
                                                     "--bogus")


def test_out_of_memory_names_the_commands_own_flags(capsys, monkeypatch):
    """It named --seq-len to every command (classify has none) and not classify's bag fit."""
    from rnnkit.cli import main as cli
    from rnnkit.cli.main import memory_advice
    assert memory_advice(["train", "classify", "--data", "x"]) == (
        "try a smaller --batch, --hidden, --max-len; --no-linear-start leaves out the bag's fit "
        "before training")
    assert memory_advice(["train", "lm"]) == "try a smaller --batch, --hidden, --seq-len"
    assert memory_advice(["gradflow", "--lags", "1000000"]) == (   # its lengths and test set
        "try a smaller --lags, --test-size, --batch, --hidden")

    def out_of_memory(args):
        raise MemoryError()
    args = cli.build_parser().parse_args(["train", "forecast", "--out", "r"])
    args.func = out_of_memory
    monkeypatch.setattr(cli, "parse_on_rank_zero", lambda p, argv: args)
    assert main(["train", "forecast", "--out", "r"]) == 1
    assert capsys.readouterr().err == ("rnnkit: error: out of memory (try a smaller --batch, "
                                       "--hidden)\n")


def test_a_language_model_run_with_cond_and_a_run_without_best_pt(tmp_path, capsys):
    """sample --cond on a language model said "expected a 'cond' checkpoint, got kind 'lm'
    (rnnkit sample reads it)" to a user who ran rnnkit sample; a run folder with last.pt alone
    said "best.pt: no such checkpoint file" and no more."""
    from rnnkit.tasks.common import train
    from rnnkit.tasks.lm import build_lm_task
    from tests.lm_fixtures import tiny_configs, write_corpus
    data, model, config = tiny_configs(write_corpus(tmp_path), max_steps=2, eval_every=2)
    run = tmp_path / "run"
    train(build_lm_task(data, model, log=lambda *a: None), config, run, quiet=True,
          log=lambda *a: None)
    capsys.readouterr()
    assert main(["sample", str(run), "--cond", "a"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"rnnkit: error: {run} is a language model, which takes no condition: leave --cond out "
        f"(--prime gives the text it goes on from)")
    (run / "best.pt").unlink()
    assert main(["sample", str(run)]) == 2
    assert f"best.pt: no such checkpoint file (the run has last.pt, its latest state, which no " \
           f"validation chose: give {run / 'last.pt'} to use it)" in capsys.readouterr().err
    assert main(["sample", str(run / "last.pt"), "--length", "5"]) == 0


def test_a_second_sigterm_while_the_first_is_handled_ends_quietly():
    """The second raised inside the first's handling (its print): a traceback after
    "rnnkit: terminated (SIGTERM)"."""
    import subprocess
    import sys
    code = ("import os, signal\n"
            "from rnnkit.cli.main import on_sigterm\n"
            "on_sigterm()\n"
            "try:\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "except KeyboardInterrupt:\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    print('went on')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (128 + 15, "", "")
