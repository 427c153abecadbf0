"""Forecasters saved before the smoothing ran over the history (model_config without "history"):
they load with the smoothing over the window, as they were trained, and forecast without the
history's forecast."""
import torch

from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.tasks.forecast_trained import LEGACY


def legacy_model(period=1, window=6):
    saved = {"features": 1, "horizon": 3, "layers": 1, "hidden": 4, "base": "ets",
             "period": period}                     # no "relative", "window" nor "history"
    model = Forecaster(ForecasterConfig(**{**LEGACY, **saved})).eval()
    assert not model.config.history and not model.uses_history()
    return model


def test_window_smoothing_with_alpha_one_forecasts_the_last_value():
    model = legacy_model()
    model.set_smoothing([1.0, 0.0, 0.0, 0.0, 0.0])           # α = 1: the level is the last value
    z = torch.tensor([[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]]).unsqueeze(-1)   # (1, 8, 1)
    torch.testing.assert_close(model(z), torch.full((1, 3, 1), 6.0))
    torch.testing.assert_close(model.forecast(z, 5), torch.full((1, 5, 1), 6.0))


def test_window_smoothing_keeps_a_constant_series_constant():
    model = legacy_model(period=4)
    model.set_smoothing([0.3, 0.1, 0.2, 0.9, 1.0])           # damped trend and a season
    z = torch.full((2, 12, 1), 7.5, dtype=torch.float64)
    model.double()
    torch.testing.assert_close(model(z), torch.full((2, 3, 1), 7.5, dtype=torch.float64))


def test_window_smoothing_starts_on_the_window_itself():
    model = legacy_model()
    model.set_smoothing([0.5, 0.0, 0.0, 0.0, 0.0])
    z = torch.arange(10.0).view(1, 10, 1)
    moved = z.clone()
    moved[:, :4] += 100.0                                    # the window's first steps
    assert float((model(moved) - model(z)).detach().min()) > 0.5   # start the level: they weigh in


def _series(tmp_path):
    import math
    text = "month,value\n" + "".join(
        f"{1990 + i // 12}-{i % 12 + 1:02d},{100 + i + 10 * math.sin(i * math.pi / 6):.3f}\n"
        for i in range(96))
    (tmp_path / "s.csv").write_text(text, encoding="utf-8")
    return tmp_path / "s.csv"


def test_a_resume_keeps_the_runs_choices(tmp_path, capsys):
    """A version of rnnkit that chose otherwise (here: a checkpoint whose baseline is not the
    one the data would choose now, and one saved before the smoothing's "history") rebuilt
    another model under the run's weights on --resume (or failed on its missing keys)."""
    import json

    from rnnkit.cli.main import main
    from rnnkit.train.checkpoint import load_checkpoint, save_checkpoint
    run = tmp_path / "run"
    flags = ["--hidden", "4", "--max-steps", "2", "--eval-every", "2", "--horizon", "6",
             "--val-fraction", "0.25", "--quiet"]
    assert main(["train", "forecast", "--data", str(_series(tmp_path)), "--out", str(run),
                 *flags]) == 0
    ckpt = load_checkpoint(run / "last.pt", kind="forecast")
    other = "seasonal" if ckpt["model_config"]["base"] != "seasonal" else "last"
    ckpt["model_config"]["base"] = other
    save_checkpoint(run / "last.pt", ckpt)
    capsys.readouterr()
    assert main(["train", "forecast", "--out", str(run), "--resume", "--max-steps", "4",
                 "--quiet"]) == 0
    assert f"baseline {other} (the run's choices, resumed)" in capsys.readouterr().out
    assert load_checkpoint(run / "last.pt", kind="forecast")["model_config"]["base"] == other
    for name in ("last.pt", "best.pt"):                         # as saved before the history
        old = load_checkpoint(run / name, kind="forecast")
        for key in ("history", "relative", "refit"):
            old["model_config"].pop(key, None)
        for key in ("smoothing", "share"):
            old["model"].pop(key)
        save_checkpoint(run / name, old)
    assert main(["train", "forecast", "--out", str(run), "--resume", "--max-steps", "6",
                 "--quiet"]) == 0
    assert json.loads((run / "metrics.json").read_text())["steps"] == 6
