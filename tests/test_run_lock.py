"""The run folder's lock (rnnkit.train.runlock): what a run taking its folder removes, and a
look at the lock that does not refuse a run starting then."""


def test_a_run_taking_its_folder_leaves_other_commands_temporary_files(tmp_path):
    """It deleted every .*.tmp there: rnnkit forecast writing RUN/forecast.png at that moment
    failed with 'no such file'. A killed run's own leftovers still go, and others an hour on."""
    import os
    from rnnkit.train.runlock import RunLock
    files = {name: tmp_path / name for name in (".last.pt.abc.tmp", ".metrics.json.x.tmp",
                                                ".forecast.png.def.tmp", ".old.png.ghi.tmp")}
    for f in files.values():
        f.write_bytes(b"")
    os.utime(files[".old.png.ghi.tmp"], (1_000_000, 1_000_000))
    lock = RunLock(tmp_path).acquire()
    lock.release()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".tmp") == \
        [".forecast.png.def.tmp"]


def test_a_look_at_the_lock_does_not_refuse_a_run_starting_then(tmp_path):
    """RunLock.holder takes the lock for a moment to see whether a run holds it: a run starting
    in that moment was refused, naming the run before it."""
    import fcntl
    import os
    import threading
    from rnnkit.train.runlock import LOCK_NAME, RunLock
    (tmp_path / LOCK_NAME).write_text("pid 1: an old run\n")
    fd = os.open(tmp_path / LOCK_NAME, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)            # holder()'s look, held a moment
    threading.Timer(0.1, os.close, (fd,)).start()
    RunLock(tmp_path).acquire().release()


def test_a_fresh_run_folder_removed_while_locked_is_released_quietly(tmp_path):
    """release() listed the folder it made: removed mid-run, the run's own error ("the run
    folder was removed or replaced") gave way to "no such file", exit 1, its descriptor open."""
    import os
    import shutil
    from rnnkit.train.runlock import RunLock
    lock = RunLock(tmp_path / "run").acquire()
    fd = lock._fd
    shutil.rmtree(tmp_path / "run")
    lock.release()
    import pytest
    with pytest.raises(OSError):
        os.fstat(fd)                                        # closed
