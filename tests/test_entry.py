"""The ``rnnkit`` console script: Ctrl-C while ``import rnnkit`` imports torch ends in one line
and exit 130, as it does later in a command (``--debug`` keeps Python's traceback)."""
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Ctrl-C arriving while torch is imported, made deterministic: the import of torch raises it
INTERRUPTED_IMPORT = """
import builtins, sys
real = builtins.__import__
def interrupted(name, *args, **kwargs):
    if name == "torch" or name.startswith("torch."):
        raise KeyboardInterrupt
    return real(name, *args, **kwargs)
builtins.__import__ = interrupted
sys.argv = ["rnnkit"] + sys.argv[1:]
import _rnnkit_command
sys.exit(_rnnkit_command.main())
"""


# Ctrl-C as the terminal sends it, while rnnkit's own modules load after torch (torch._dynamo,
# seconds): a SIGINT to the process itself
SIGNALLED_IMPORT = """
import builtins, os, signal, sys
real = builtins.__import__
def interrupted(name, *args, **kwargs):
    if name == "torch._dynamo" or name.startswith("rnnkit.bptt"):
        os.kill(os.getpid(), signal.SIGINT)
    return real(name, *args, **kwargs)
builtins.__import__ = interrupted
sys.argv = ["rnnkit"] + sys.argv[1:]
import rnnkit
"""


def run(*args, **env):
    environ = {k: v for k, v in os.environ.items() if k != "RNNKIT_DEBUG"}
    environ.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT, *args], env=environ,
                          capture_output=True, text=True, timeout=120)


def test_console_script_enters_through_the_interrupt_guard():
    script = [e for e in entry_points(group="console_scripts") if e.name == "rnnkit"]
    assert [e.value for e in script] == ["_rnnkit_command:main"]


def test_ctrl_c_during_the_torch_import_is_one_line_and_exit_130():
    done = run("train", "lm", "--help")
    assert done.returncode == 130
    assert done.stderr == "\nrnnkit: interrupted\n"
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_ctrl_c_during_the_torch_import_keeps_the_traceback_under_debug():
    assert "Traceback" in run("--debug", "data", "list").stderr
    done = run("data", "list", RNNKIT_DEBUG="1")
    assert "Traceback" in done.stderr and "KeyboardInterrupt" in done.stderr
    assert run("data", "list", RNNKIT_DEBUG="false").stderr == "\nrnnkit: interrupted\n"


def test_rnnkit_debug_reads_false_off_and_no_as_off(tmp_path, monkeypatch, capsys):
    """RNNKIT_DEBUG=false showed the traceback: anything but "" and "0" was on."""
    from rnnkit.cli.main import main
    for value, traceback in (("false", False), ("Off", False), ("no", False), ("yes", True)):
        monkeypatch.setenv("RNNKIT_DEBUG", value)
        if traceback:
            try:
                main(["sample", str(tmp_path / "none")])
            except Exception as e:
                assert "no such checkpoint file" in str(e)
            else:
                raise AssertionError("RNNKIT_DEBUG=yes did not raise")
        else:
            assert main(["sample", str(tmp_path / "none")]) == 2
            assert capsys.readouterr().err.startswith("rnnkit: error: ")


def test_python_dash_m_rnnkit_is_the_command_too():
    """`python -m rnnkit` (and torchrun's) imports the package before any rnnkit code can catch
    Ctrl-C: the package's first import of torch does, while Python says the module is located
    (sys.argv[0] is "-m" then); imported by anything else it stays Python's."""
    script = SIGNALLED_IMPORT
    environ = {k: v for k, v in os.environ.items() if k != "RNNKIT_DEBUG"}
    environ.update(PYTHONPATH=str(ROOT))
    as_m = script.replace('sys.argv = ["rnnkit"] + sys.argv[1:]',   # as `python -m rnnkit ...`
                          'sys.argv = ["-m"] + sys.argv[1:]; '
                          'sys.orig_argv = [sys.executable, "-m", "rnnkit"] + sys.argv[1:]')
    done = subprocess.run([sys.executable, "-c", as_m, "data", "list"], env=environ,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 130 and done.stderr == "\nrnnkit: interrupted\n"
    done = subprocess.run([sys.executable, "-c", script], env=environ, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 130 and "KeyboardInterrupt" in done.stderr   # a library import


def test_a_package_of_ones_own_run_with_dash_m_keeps_its_ctrl_c(tmp_path):
    """`python -m mypkg`, whose __init__ imports rnnkit, got rnnkit's Ctrl-C handler: its own
    `except KeyboardInterrupt` and `finally` never ran."""
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import rnnkit\n")
    (pkg / "__main__.py").write_text(
        "import os, signal, time\n"
        "try:\n    os.kill(os.getpid(), signal.SIGINT)\n    time.sleep(5)\n"
        "except KeyboardInterrupt:\n    print('caught')\n")
    environ = {k: v for k, v in os.environ.items() if k != "RNNKIT_DEBUG"}
    environ.update(PYTHONPATH=f"{ROOT}{os.pathsep}{tmp_path}")
    done = subprocess.run([sys.executable, "-m", "mypkg"], env=environ, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == "caught\n", done.stderr


def test_a_signal_or_a_full_disk_inside_torchs_writer_is_said_as_itself(monkeypatch, capsys):
    """torch's zip writer raises a RuntimeError of its own as it closes a file after a signal
    or a full disk: that read as 'internal error ... please report it'; SIGHUP (the terminal
    closed) ended the process with no line."""
    import errno
    import signal
    from rnnkit.cli import data, main as cli
    def raising(first):
        def run(args):
            try:
                raise first
            except BaseException:
                raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos")
        return run
    cases = [(OSError(errno.ENOSPC, "No space left on device", "run/last.pt"), 1,
              "no space left on device"),
             (KeyboardInterrupt(), 130, "rnnkit: interrupted"),
             (cli.Terminated(signal.SIGTERM), 143, "rnnkit: terminated (SIGTERM)")]
    for first, code, said in cases:
        monkeypatch.setattr(data, "run_list", raising(first))
        assert cli.main(["data", "list"]) == code
        err = capsys.readouterr().err
        assert said in err.lower() if code == 1 else said in err
        assert "internal error" not in err
    monkeypatch.setattr(data, "run_list", lambda args: (_ for _ in ()).throw(
        cli.Terminated(signal.SIGHUP)))
    assert cli.main(["data", "list"]) == 129
    assert capsys.readouterr().err.strip() == "rnnkit: terminated (SIGHUP)"


def test_a_folder_where_a_file_has_the_name_is_said_in_words(tmp_path, capsys):
    """--out x/metrics.json under a file x said 'x: File exists'."""
    from rnnkit.cli.main import os_error_text
    (tmp_path / "x").write_text("")
    with pytest.raises(OSError) as e:
        (tmp_path / "x").mkdir(parents=True, exist_ok=True)
    assert os_error_text(e.value).endswith("x: a file (or a link) has that name, where a "
                                           "folder was expected")


def test_a_missing_dependency_is_named_with_what_to_install(monkeypatch, capsys):
    """matplotlib absent (pip --no-deps, a conda env): a finished run ended in "internal error,
    ModuleNotFoundError ... please report it"."""
    from rnnkit.cli import data, main as cli
    for name, pip in (("matplotlib.pyplot", "matplotlib"), ("PIL", "Pillow")):
        monkeypatch.setattr(data, "run_list", lambda args: (_ for _ in ()).throw(
            ModuleNotFoundError(f"No module named {name!r}", name=name)))
        assert cli.main(["data", "list"]) == 1
        err = capsys.readouterr().err
        assert f"this needs the Python package {name.split('.')[0]!r}" in err
        assert f"(pip install {pip};" in err and "internal error" not in err
    monkeypatch.setattr(data, "run_list", lambda args: (_ for _ in ()).throw(
        ModuleNotFoundError("No module named 'rnnkit.nothing'", name="rnnkit.nothing")))
    assert cli.main(["data", "list"]) == 1                 # rnnkit's own: a defect
    assert "internal error" in capsys.readouterr().err


def test_a_closed_terminal_ends_a_command_with_129(monkeypatch):
    """SIGHUP as the terminal closes: writing the farewell line to it failed, exit 1."""
    import signal
    from rnnkit.cli import data, main as cli

    class Gone:
        def write(self, text):
            raise OSError(5, "Input/output error")
        def flush(self):
            pass
    monkeypatch.setattr(data, "run_list", lambda args: (_ for _ in ()).throw(
        cli.Terminated(signal.SIGHUP)))
    monkeypatch.setattr("sys.stderr", Gone())
    assert cli.main(["data", "list"]) == 129


@pytest.mark.parametrize("argv", [["train", "lm", "--no-such-flag"], ["train", "lm", "--help"]])
def test_under_torchrun_rank_zero_alone_prints_usage_and_help(argv, monkeypatch, capsys):
    """Every rank parses the same command line: a mistyped flag printed argparse's usage once a
    rank, interleaved and not saying which rank spoke."""
    from rnnkit.cli.main import main
    monkeypatch.setenv("WORLD_SIZE", "2")
    codes = {}
    for rank in ("1", "0"):
        monkeypatch.setenv("RANK", rank)
        with pytest.raises(SystemExit) as e:
            main(argv)
        codes[rank] = e.value.code
        out, err = capsys.readouterr()
        assert (out + err != "") == (rank == "0")
    assert codes["0"] == codes["1"] in (0, 2)


def test_under_torchrun_a_command_that_trains_on_no_rank_is_rank_zeros(monkeypatch, capsys,
                                                                        tmp_path):
    """`torchrun --nproc_per_node 2 -m rnnkit eval ...` printed its report once a rank and
    each rank wrote its --out: eval, sample, export ... now run on rank 0 alone."""
    from rnnkit.cli.main import main
    monkeypatch.setenv("WORLD_SIZE", "2")
    missing = ["eval", str(tmp_path / "no-run"), str(tmp_path / "x.txt")]
    monkeypatch.setenv("RANK", "1")
    assert main(missing) == 0 and capsys.readouterr() == ("", "")
    monkeypatch.setenv("RANK", "0")
    assert main(missing) == 2 and "no-run" in capsys.readouterr().err
