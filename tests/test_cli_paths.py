"""The command line as a new user meets it: empty and ~ paths, pipes and devices as data, texts
after --, a terminal that cannot show the output, RNNKIT_THREADS' range, view of a file that is
no checkpoint, --version, and flags that would do nothing."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnnkit.cli.main import main
from lm_fixtures import write_corpus

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--layers", "1", "--hidden", "8", "--embed", "4", "--seq-len", "8", "--batch", "2",
        "--quiet"]


def code_and_err(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def test_an_empty_path_is_refused_not_read_as_this_folder(tmp_path, monkeypatch, capsys):
    """Path('') is '.': --data '' trained on every .txt file below the working folder."""
    monkeypatch.chdir(tmp_path)
    write_corpus(tmp_path)
    code, err = code_and_err(["train", "lm", "--data", "", "--out", "r", *TINY], capsys)
    assert code == 2 and "--data must name a file, a folder or a data set, got an empty" in err
    assert not (tmp_path / "r").exists()
    for argv in (["eval", "r", ""], ["predict", "r", "--eval", ""], ["sample", ""]):
        code, err = code_and_err(argv, capsys)
        assert code == 2 and "must name a file or folder, got an empty string" in err, argv


def test_a_tilde_in_an_output_path_is_the_home_folder(tmp_path, monkeypatch, capsys):
    """--out=~/runs/x (no shell expansion after '=') made a folder named ~ here."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    write_corpus(tmp_path / "home")
    assert main(["train", "lm", "--data=~/corpus.txt", "--out=~/runs/x", "--max-steps", "1",
                 *TINY]) == 0
    assert (tmp_path / "home" / "runs" / "x" / "best.pt").is_file()
    assert not (tmp_path / "~").exists()
    assert main(["eval", "~/runs/x", "~/corpus.txt", "--out=~/m.json"]) == 0
    assert (tmp_path / "home" / "m.json").is_file()


def test_a_pipe_or_a_device_as_data_is_said_to_be_one(tmp_path, capsys):
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    for data in (str(fifo), "/dev/null"):
        code, err = code_and_err(["train", "lm", "--data", data, "--out", str(tmp_path / "r"),
                                  *TINY], capsys)
        assert code == 2 and "is not a regular file (a pipe, a device, ...)" in err, err
    code, err = code_and_err(["check-cell", "/dev/null"], capsys)
    assert code == 2 and "/dev/null: not a regular file" in err


def test_texts_after_a_double_dash_may_start_with_a_dash(monkeypatch):
    from rnnkit.cli import main as cli
    seen = {}
    monkeypatch.setattr(cli.predict, "run", lambda args: seen.setdefault("texts", args.texts))
    parser = cli.build_parser()
    args = cli.parse(parser, ["predict", "r", "--json", "--", "-bad film", "ok"])
    assert args.texts == ["-bad film", "ok"]
    with pytest.raises(SystemExit):
        cli.parse(parser, ["predict", "r", "--json", "--nope", "text"])


def test_a_terminal_that_cannot_show_the_output_is_said_so(tmp_path):
    """In a Latin-1 locale, printing Chinese read as 'text that is not valid UTF-8' (exit 2)."""
    script = ("import sys; from rnnkit.cli import main as m; "
              "m.COMMANDS['data'].run_list = lambda a: print('\u843d'); "
              "sys.exit(m.main(['data', 'list']))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "latin-1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "this terminal's encoding (iso8859-1) cannot show ('\\u843d'); use a UTF-8 " \
           "locale" in done.stderr


def test_rnnkit_threads_past_1024_is_refused(monkeypatch):
    from rnnkit.config import ConfigError
    from rnnkit.train import distributed
    monkeypatch.setenv("RNNKIT_THREADS", "100000")
    with pytest.raises(ConfigError, match=r"RNNKIT_THREADS=100000: expected threads in "
                                          r"\[1, 1024\]"):
        distributed._threads()


def test_view_of_a_file_that_is_no_checkpoint_is_refused(tmp_path, capsys):
    """It started the server and presented the file as a run."""
    text = write_corpus(tmp_path)
    code, err = code_and_err(["view", str(text), "--port", "0"], capsys)
    assert code == 2 and "not a readable rnnkit checkpoint" in err


def test_version_and_a_flag_that_would_do_nothing(tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("rnnkit 0.")
    monkeypatch.chdir(tmp_path)
    write_corpus(tmp_path)
    assert main(["train", "lm", "--data", "corpus.txt", "--out", "r", "--max-steps", "1",
                 "--allow-data-change", *TINY]) == 0
    assert "--allow-data-change is not used" in capsys.readouterr().err


def test_a_bad_switch_read_while_rnnkit_loads_is_one_line():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RNNKIT_FAST_STEP": "2"}
    env.pop("RNNKIT_DEBUG", None)
    done = subprocess.run([sys.executable, "-m", "rnnkit", "--version"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert done.stderr == ("rnnkit: warning: RNNKIT_FAST_STEP must be 0 (off) or 1 (on), got "
                           "'2'; read as on\n")


def test_utf16_standard_input_gets_a_command_that_runs_and_levels_are_taken_once():
    from rnnkit.cli.forecast import levels
    from rnnkit.data import DataError
    from rnnkit.data.text import decode_text
    with pytest.raises(DataError, match=r"^<stdin>: UTF-16 text \(a byte-order mark FF FE, "
                                        r"little-endian\); give UTF-8 text, e\.g\. through "
                                        r"iconv -f UTF-16 -t UTF-8$"):
        decode_text(b"\xff\xfeg\x00o\x00\n\x00", "<stdin>", iconv=False)
    assert levels("80,95,80") == (80.0, 95.0)       # 80 was printed twice


def test_a_home_folder_of_no_user_is_one_line(capsys):
    """Path('~nosuchuser/x').expanduser() raises a RuntimeError, which argparse printed as a
    traceback (and --data gave an internal error)."""
    for argv in (["predict", "~nosuchuser/run", "hello"], ["check-cell", "~nosuchuser/c.py"],
                 ["train", "lm", "--data", "x.txt", "--out", "~nosuchuser/x"]):
        code, err = code_and_err(argv, capsys)
        assert code == 2 and "~nosuchuser is no user with a home folder" in err, argv
    code, err = code_and_err(["train", "lm", "--data", "~nosuchuser/x.txt", "--out", "r"], capsys)
    assert code == 2 and err.startswith("rnnkit: error: ~nosuchuser/x.txt: ~nosuchuser is no ")


def test_check_cell_takes_paths_as_the_other_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    code, err = code_and_err(["check-cell", ""], capsys)
    assert code == 2 and "must name a file or folder, got an empty string" in err
    code, err = code_and_err(["check-cell", "~/cell.py"], capsys)
    assert code == 2 and f"{tmp_path}/cell.py: no such file" in err


def test_an_argument_that_is_not_utf8_is_said_so_not_blamed_on_the_terminal(monkeypatch,
                                                                             capsys):
    """A surrogate (the bytes of a non-UTF-8 argument) that cannot be encoded read as a
    terminal that cannot show the output (exit 1)."""
    from rnnkit.cli import main as cli
    monkeypatch.setattr(cli.COMMANDS["data"], "run_list", lambda args: "caf\udce9".encode())
    code, err = code_and_err(["data", "list"], capsys)
    assert code == 2 and err.startswith("rnnkit: error: text that is not valid UTF-8")


def test_a_pipe_as_a_validation_file_is_refused_and_eval_reads_one(tmp_path, capsys):
    corpus = write_corpus(tmp_path)
    fifo = tmp_path / "val.txt"
    os.mkfifo(fifo)
    code, err = code_and_err(["train", "lm", "--data", str(corpus), "--val-data", str(fifo),
                              "--out", str(tmp_path / "r"), *TINY], capsys)
    assert code == 2 and "--val-data" in err and "is not a regular file (a pipe" in err
    assert main(["train", "lm", "--data", str(corpus), "--out", str(tmp_path / "r"),
                 "--max-steps", "1", *TINY]) == 0
    capsys.readouterr()      # eval reads a pipe once, as process substitution gives it
    feed = subprocess.Popen(["sh", "-c", f"cat {corpus} > {fifo}"])
    assert main(["eval", str(tmp_path / "r"), str(fifo), "--json"]) == 0
    feed.wait(timeout=60)
    assert '"loss"' in capsys.readouterr().out


def test_a_kernel_cache_of_a_user_with_no_home_is_said_not_made_here(tmp_path, monkeypatch):
    from rnnkit import kernels
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RNNKIT_KERNEL_CACHE", "~nosuchuser/kc")
    with pytest.raises(RuntimeError, match="RNNKIT_KERNEL_CACHE=~nosuchuser/kc: ~nosuchuser is "
                                           "no user with a home folder"):
        kernels._cache_dir()
    assert list(tmp_path.iterdir()) == []


def test_a_device_as_a_file_to_read_is_refused_not_read_forever(tmp_path, capsys):
    """eval RUN /dev/zero read until memory ran out (pipes stay readable: process
    substitution)."""
    corpus = write_corpus(tmp_path)
    assert main(["train", "lm", "--data", str(corpus), "--out", str(tmp_path / "r"),
                 "--max-steps", "1", *TINY]) == 0
    capsys.readouterr()
    code, err = code_and_err(["eval", str(tmp_path / "r"), "/dev/zero"], capsys)
    assert code == 2 and "/dev/zero: a device, not a file of text" in err


def test_odd_paths_are_named_for_what_they_are(tmp_path, monkeypatch, capsys):
    """An empty output name was "a file or folder"; a dangling link as --data "neither a data
    set name nor an existing file"; a folder named last.pt "last.pt/best.pt: no such
    checkpoint file"."""
    monkeypatch.chdir(tmp_path)
    code, err = code_and_err(["eval", "r", "x.txt", "--out", ""], capsys)
    assert code == 2 and "--out: must name a file, got an empty string" in err
    (tmp_path / "data.txt").symlink_to("gone.txt")
    code, err = code_and_err(["train", "lm", "--data", "data.txt", "--out", "r"], capsys)
    assert code == 2 and "'data.txt' is a symbolic link to 'gone.txt', which leads to no " \
        "file" in err
    from rnnkit.data import DataError
    from rnnkit.data.text import read_text
    with pytest.raises(DataError, match="a symbolic link to 'gone.txt', which leads to no file"):
        read_text(tmp_path / "data.txt")                    # (--val-data, --test-data)
    (tmp_path / "r").mkdir()
    code, err = code_and_err(["eval", "r", "data.txt"], capsys)
    assert code == 2 and "data.txt: a symbolic link to 'gone.txt', which leads to no file" in err
    (tmp_path / "run" / "last.pt").mkdir(parents=True)
    code, err = code_and_err(["sample", "run/last.pt"], capsys)
    assert code == 2 and "run/last.pt: a folder; expected a checkpoint file" in err
