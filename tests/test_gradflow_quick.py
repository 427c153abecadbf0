"""The quick preset of ``rnnkit gradflow`` end to end (slow tier: a few minutes on 2 CPU cores)."""
import json

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
