"""The quick preset of ``rnnkit gradflow`` end to end (slow tier: a few minutes on 2 CPU cores)."""
import json
from pathlib import Path

import pytest

from rnnkit.cli.main import main


@pytest.mark.slow
def test_quick_preset_runs_and_reports(tmp_path):
    out = tmp_path / "gradflow"
    assert main(["gradflow", "--task", "adding", "--lags", "10", "50", "100", "200",
                 "--preset", "quick", "--out", str(out), "--quiet"]) == 0
    report = (out / "report.md").read_text()
    assert "Made by: `rnnkit gradflow --task adding --lags 10 50 100 200 --preset quick" in report
    for T in (10, 50, 100, 200):
        assert (out / f"gradflow_adding_T{T}.png").exists()
        assert (out / f"learning_adding_T{T}.png").exists()
    runs = {(r["config"]["lag"], r["name"]): r for r in
            (json.loads(p.read_text()) for p in out.glob("adding/T*/*.json"))}
    assert len(runs) == 4 * 6
    # the measured decay at init: tanh vanishes; relu with W_hh = 1.5·I grows by ~1.5 a step
    assert runs[(100, "rnn-tanh-default-clip1")]["decay_init"] < 0.9
    assert runs[(100, "rnn-relu-identity-gain1.5-clip1")]["decay_init"] > 1.3
    assert runs[(10, "gru-default-clip1")]["solved_step"] is not None


def test_bad_notes_damaged_records_and_huge_sizes_are_one_line(tmp_path, capsys, monkeypatch):
    """--notes is read before any training; a damaged run record is named (and trained again
    where a run trains); sizes past memory are a range error or the out-of-memory line, never
    'internal error'."""
    tiny = ["--lags", "4", "--cells", "gru", "--steps", "2", "--hidden", "4", "--batch", "4",
            "--test-size", "8", "--eval-every", "1", "--quiet"]
    out = tmp_path / "gf"
    assert main(["gradflow", "--out", str(out), *tiny, "--notes", str(tmp_path / "no.md")]) == 2
    assert "no.md" in capsys.readouterr().err and not out.exists()
    record = out / "adding" / "T4" / "gru-default-clip1-adam.json"
    record.parent.mkdir(parents=True)
    record.write_text('{"config": {')
    assert main(["gradflow", "--report-only", "--out", str(out), "--lags", "4"]) == 2
    assert f"{record}: not a gradflow run record" in capsys.readouterr().err
    assert main(["gradflow", "--out", str(out), *tiny]) == 0        # trained again over it
    assert json.loads(record.read_text())["config"]["cell"] == "gru"
    with pytest.raises(SystemExit):
        main(["gradflow", "--out", str(out), *tiny[:-5], "--test-size", str(10**12)])
    capsys.readouterr()
    from rnnkit.cli import gradflow

    def huge(*a, **k):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: "
                           "can't allocate memory: you tried to allocate 4294967296 bytes.")
    monkeypatch.setattr(gradflow, "run_grid", huge)
    assert main(["gradflow", "--out", str(out), *tiny]) == 1
    assert capsys.readouterr().err.startswith("rnnkit: error: out of memory: 4.0 GiB asked for")


def test_report_only_refuses_flags_that_choose_runs(tmp_path, capsys):
    assert main(["gradflow", "--report-only", "--out", str(tmp_path), "--lags", "4",
                 "--cells", "gru", "--steps", "999"]) == 2
    err = capsys.readouterr().err
    assert "--report-only reports every run saved" in err and "--cells, --steps choose" in err


def test_a_grid_with_no_run_says_why_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "gf"
    assert main(["gradflow", "--cells", "lstm", "--inits", "identity", "--lags", "4",
                 "--out", str(out)]) == 2
    assert "no run to train: cells lstm with inits identity" in capsys.readouterr().err
    assert not out.exists()


TINY = ["--lags", "4", "--cells", "gru", "--steps", "2", "--hidden", "4", "--batch", "4",
        "--test-size", "8", "--eval-every", "1", "--quiet"]


def test_a_run_of_other_settings_is_never_replaced(tmp_path, capsys):
    """The record's file name leaves out the seed, steps, sizes: a second setting replaced the
    first's runs, and --report-only still listed both commands as its source."""
    out = tmp_path / "gf"
    assert main(["gradflow", "--out", str(out), *TINY]) == 0
    record = out / "adding" / "T4" / "gru-default-clip1-adam.json"
    before = record.read_bytes()
    assert main(["gradflow", "--out", str(out), *TINY, "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert f"{record}: a run of other settings is saved there (seed 0 where this one has 1)" in err
    assert record.read_bytes() == before
    assert main(["gradflow", "--out", str(out), *TINY]) == 0          # the same: reused


def test_output_folders_are_checked_before_training(tmp_path, capsys, monkeypatch):
    """A file as --out or --report-dir, an empty name, an unwritable report folder: refused
    before training (the report folder failed after every run, naming a temporary file)."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    for flag in ("--out", "--report-dir"):
        with pytest.raises(SystemExit):
            main(["gradflow", "--out", str(tmp_path / "gf"), flag, str(afile), *TINY])
        assert "a file, a folder was expected" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            main(["gradflow", "--out", str(tmp_path / "gf"), flag, "", *TINY])
        assert "expected a folder name, got an empty one" in capsys.readouterr().err
    locked = tmp_path / "ro"
    locked.mkdir()
    from rnnkit.cli import gradflow
    real = gradflow.os.access        # a read-only folder (chmod does not stop root)
    monkeypatch.setattr(gradflow.os, "access", lambda p, mode: Path(p) != locked and real(p, mode))
    assert main(["gradflow", "--out", str(tmp_path / "gf2"), "--report-dir", str(locked),
                 *TINY]) == 2
    assert f"{locked}: the folder is not writable" in capsys.readouterr().err
    assert not (tmp_path / "gf2" / "adding").exists()


def test_report_only_reads_whole_records_and_says_what_is_missing(tmp_path, capsys):
    """A record that is valid JSON but not a whole record was an internal KeyError; a lag with
    no runs was left out of the report without a word; 'rnn' and 'rnn-tanh' ran twice."""
    out = tmp_path / "gf"
    assert main(["gradflow", "--out", str(out), *TINY[:2], "--cells", "rnn", "rnn-tanh",
                 *TINY[4:]]) == 0
    assert [p.name for p in (out / "adding" / "T4").glob("*.json")] == [
        "rnn-tanh-default-clip1-adam.json"]
    capsys.readouterr()
    assert main(["gradflow", "--report-only", "--out", str(out), "--lags", "4", "9"]) == 0
    captured = capsys.readouterr()
    assert f"no runs saved under {out} for adding T=9" in captured.err
    assert captured.out.startswith(f"reporting the runs saved under {out} for adding, T = 4, 9")
    part = out / "adding" / "T4" / "zz.json"
    part.write_text('{"config": {}}')
    assert main(["gradflow", "--report-only", "--out", str(out), "--lags", "4"]) == 2
    assert f"{part}: not a gradflow run record" in capsys.readouterr().err


def test_cells_without_a_colour_of_their_own_are_drawn_apart():
    """indrnn and mgu (and cells of one's own) took a colour by a hash of their names: both
    grey in one plot."""
    from rnnkit.diagnostics.plots import colour
    drawn = [colour({"config": {"cell": c, "gain": 1}}) for c in ("indrnn", "mgu", "my-rnn")]
    assert len(set(drawn)) == 3 and colour({"config": {"cell": "mgu", "gain": 1}}) == drawn[1]
