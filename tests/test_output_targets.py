"""Where an output lands when its path is not a plain file's place: a symbolic link, a device
or a pipe, a full disk inside torch's writer, a umask; and a training log the terminal's
encoding cannot show."""
import errno
import json
import os
import stat
import subprocess
import sys
import threading

import pytest

from rnnkit.outputs import atomic_write


def test_a_symbolic_link_is_kept_and_the_file_it_names_replaced(tmp_path):
    """The link itself was replaced by a file, and the file it named left as it was."""
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "link.json").symlink_to("real.json")
    atomic_write(tmp_path / "link.json", lambda f: f.write(b"new"))
    assert (tmp_path / "link.json").is_symlink()
    assert (tmp_path / "real.json").read_text() == "new"
    (tmp_path / "dangling.json").symlink_to("made.json")            # as `>` in a shell does
    atomic_write(tmp_path / "dangling.json", lambda f: f.write(b"made"))
    assert (tmp_path / "made.json").read_text() == "made"
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_pipe_is_written_in_place_not_replaced(tmp_path):
    """A FIFO or a device (/dev/null, /dev/stdout) was replaced by a regular file: as root,
    `rnnkit eval ... --out /dev/null` would have made the system's /dev/null a JSON file."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    atomic_write(fifo, lambda f: f.write(b"through the pipe"))
    reader.join(10)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
    if os.geteuid() == 0:   # a null device of the test's own (a regression must not hit the
        null = tmp_path / "null"   # system's)
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        atomic_write(null, lambda f: f.write(b"gone"))
        assert stat.S_ISCHR(os.stat(null).st_mode)


def test_a_new_file_follows_the_umask_and_a_replaced_one_keeps_its_mode(tmp_path):
    """Every output was made 0644, whatever the umask (077: 0600 meant)."""
    before = os.umask(0o077)
    try:
        atomic_write(tmp_path / "new.json", lambda f: f.write(b"{}"))
    finally:
        os.umask(before)
    assert stat.S_IMODE(os.stat(tmp_path / "new.json").st_mode) == 0o600
    (tmp_path / "shared.json").write_text("{}")
    os.chmod(tmp_path / "shared.json", 0o664)
    atomic_write(tmp_path / "shared.json", lambda f: f.write(b"[]"))
    assert stat.S_IMODE(os.stat(tmp_path / "shared.json").st_mode) == 0o664


def test_a_full_disk_inside_torchs_writer_names_the_file(tmp_path):
    """torch's zip writer raises a RuntimeError of its own as it closes a file on a full disk;
    the OSError it was handling has no file name, so the command said only "no space left on
    device"."""
    def full(f):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos")
    with pytest.raises(RuntimeError) as e:
        atomic_write(tmp_path / "last.pt", full)
    assert e.value.__context__.filename == str(tmp_path / "last.pt")
    assert not list(tmp_path.iterdir())


def test_export_goes_through_a_link_and_into_a_pipe(tmp_path):
    from lm_fixtures import write_corpus
    from rnnkit.cli.main import main
    from rnnkit.export.writers import export_run
    run = tmp_path / "run"
    assert main(["train", "lm", "--data", str(write_corpus(tmp_path)), "--out", str(run),
                 "--max-steps", "2", "--eval-every", "2", "--hidden", "8", "--layers", "1",
                 "--batch", "4", "--seq-len", "8", "--quiet"]) == 0
    (tmp_path / "real.pt2").write_bytes(b"old")
    (tmp_path / "model.pt2").symlink_to("real.pt2")
    export_run(run / "best.pt", "pt2", tmp_path / "model.pt2")
    assert (tmp_path / "model.pt2").is_symlink()
    assert (tmp_path / "real.pt2").stat().st_size > 1000
    fifo = tmp_path / "program.pt2"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    export_run(run / "best.pt", "pt2", fifo)
    reader.join(30)
    (tmp_path / "stdout.pt2").symlink_to("/dev/stdout")   # (pt2 needs its suffix)
    with open(tmp_path / "piped.pt2", "wb") as f:    # `rnnkit export ... --out OUT > F`
        done = subprocess.run([sys.executable, "-m", "rnnkit", "export", str(run), "--format",
                               "pt2", "--out", str(tmp_path / "stdout.pt2")], stdout=f,
                              stderr=subprocess.PIPE, timeout=300)
    assert done.returncode == 0 and b"stdout.pt2: " in done.stderr   # the line not in the file
    piped = (tmp_path / "piped.pt2").read_bytes()
    assert piped[:2] == b"PK" and b"stdout.pt2: " not in piped
    size = (tmp_path / "real.pt2").stat().st_size                # (names differ in a pt2)
    assert got[0][:2] == b"PK" and abs(len(got[0]) - size) < size / 10
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and not list(tmp_path.glob(".*tmp*"))


def test_a_log_the_terminal_cannot_show_does_not_fail_a_finished_run(tmp_path):
    """Under PYTHONIOENCODING=ascii, a run into a folder of Chinese name trained, wrote its
    checkpoints, then failed (exit 1) printing its summary, before the test part was scored."""
    corpus = "".join(f"the cat sat on the mat {i % 7}\n" for i in range(400))
    (tmp_path / "train.txt").write_text(corpus)
    (tmp_path / "test.txt").write_text(corpus[:2000])
    out = tmp_path / "运行"
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "rnnkit", "train", "lm", "--data", str(tmp_path / "train.txt"),
         "--test-data", str(tmp_path / "test.txt"), "--out", str(out), "--max-steps", "4",
         "--eval-every", "2", "--hidden", "16", "--layers", "1", "--batch", "4",
         "--seq-len", "16", "--quiet"], capture_output=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-500:]
    assert "test_loss" in json.loads((out / "metrics.json").read_text())


def test_resume_of_a_run_that_wrote_no_last_pt_says_to_start_again(tmp_path, capsys):
    """A full disk at the first last.pt left .best-next.pt and metrics.jsonl; --resume said
    only "last.pt: no such checkpoint file"."""
    from lm_fixtures import write_corpus
    from rnnkit.cli.main import main
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 0}\n')
    flags = ["train", "lm", "--data", str(write_corpus(tmp_path)), "--out", str(run), "--resume"]
    assert main(flags) == 2
    assert "the run stopped before its first last.pt was written; start it again without " \
           "--resume" in capsys.readouterr().err
    (run / "metrics.jsonl").unlink()
    assert main(flags) == 2
    assert f"{run} holds no run to resume" in capsys.readouterr().err


def test_dev_stdout_writes_where_the_output_goes(tmp_path):
    """--out /dev/stdout with stdout sent to a file (`>> res.txt`) replaced that file: the
    user's earlier lines and the command's own printed lines were lost. A link to it, too."""
    (tmp_path / "out.json").symlink_to("/dev/stdout")
    code = ("from rnnkit.outputs import atomic_write\n"
            "print('printed first')\n"
            "atomic_write('/dev/stdout', lambda f: f.write(b'{}\\n'))\n"
            f"atomic_write({str(tmp_path / 'out.json')!r}, lambda f: f.write(b'[]\\n'))\n"
            "print('printed after')\n")
    res = tmp_path / "res.txt"
    res.write_text("my notes\n")
    with open(res, "ab") as f:
        subprocess.run([sys.executable, "-c", code], stdout=f, check=True, timeout=120)
    assert res.read_text() == "my notes\nprinted first\n{}\n[]\nprinted after\n"
    assert (tmp_path / "out.json").is_symlink()


def test_a_descriptor_that_is_not_open_is_named(tmp_path):
    with pytest.raises(OSError) as e:
        atomic_write("/dev/fd/97", lambda f: f.write(b"x"))
    assert e.value.filename == "/dev/fd/97"


def test_dev_stdin_never_replaces_the_file_it_reads(tmp_path):
    """/dev/stdin of `< data.tsv` leads to data.tsv: --out /dev/stdin replaced the input."""
    data = tmp_path / "data.tsv"
    data.write_text("keep\n")
    code = ("from rnnkit.outputs import atomic_write\n"
            "atomic_write('/dev/stdin', lambda f: f.write(b'x'))\n")
    with open(data) as f:
        done = subprocess.run([sys.executable, "-c", code], stdin=f, capture_output=True,
                              timeout=120)
    assert done.returncode != 0 and b"/dev/stdin" in done.stderr
    assert data.read_text() == "keep\n"


def test_a_run_folder_named_like_a_checkpoint_is_read_as_a_run(tmp_path):
    """--out runs/m.pt trained, and every loader then refused the folder as "a folder"."""
    from rnnkit.train import load_checkpoint, save_checkpoint
    save_checkpoint(tmp_path / "m.pt" / "best.pt", {"n": 1})
    assert load_checkpoint(tmp_path / "m.pt")["n"] == 1


def test_resume_of_a_folder_with_best_pt_alone_says_it_cannot_be_resumed(tmp_path, capsys):
    from lm_fixtures import write_corpus
    from rnnkit.cli.main import main
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"x")
    assert main(["train", "lm", "--data", str(write_corpus(tmp_path)), "--out", str(run),
                 "--resume"]) == 2
    assert "holds a run's best.pt (its last.pt is gone, so it cannot be resumed)" in \
        capsys.readouterr().err
