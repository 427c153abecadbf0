"""GradientTelemetry logs ||dL/dh_t|| and the global gradient norm from the shared trainer."""
import io
import json
import math
import warnings

import pytest
import torch
from torch import nn

import rnnkit
from rnnkit.diagnostics.callbacks import GradientTelemetry
from rnnkit.train import TrainConfig, Trainer


class TinyTask:
    """Predict the sum of a sequence from an LSTM's last state; step ``bad`` has an infinite loss."""
    unit = "sequence"

    def __init__(self, T=7, bad=None):
        self.T, self.bad = T, bad
        self.model = nn.ModuleDict({"rnn": rnnkit.LSTM(1, 6), "head": nn.Linear(6, 1)})

    def train_batch(self, step):
        g = torch.Generator().manual_seed(step)
        return torch.randn(self.T, 4, 1, generator=g), step

    def loss(self, batch):
        x, step = batch
        out, _ = self.model["rnn"](x)                             # (T, B, H)
        loss = (self.model["head"](out[-1]) - x.sum(0)).pow(2).mean()
        return (loss * math.inf if step == self.bad else loss), 4

    def evaluate(self):
        return {"val_loss": 0.0}


def test_telemetry_every_n_steps(tmp_path):
    path = tmp_path / "gradients.jsonl"
    cb = GradientTelemetry(every=3, path=path)
    task = TinyTask(bad=6)
    cfg = TrainConfig(max_steps=8, eval_every=100, log_every=1, warmup_steps=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Trainer(task, cfg, [cb]).fit()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 3, 6]
    assert cb.history == rows[-1:]              # the file holds them all, memory the last
    first = rows[0]["layers"]["rnn.l0"]
    assert len(first["h"]) == len(first["c"]) == 7 and first["decay_h"] > 0
    assert rows[0]["grad_norm"] > 0
    assert rows[2]["grad_norm"] is None and rows[2]["skipped_steps"] == 1   # the skipped step
    assert rows[2]["layers"] == {}                                         # no backward ran
    assert rnnkit.bptt.telemetry.current() is None                         # recorder closed


def test_recorded_norms_match_a_direct_recording():
    task = TinyTask()
    cb = GradientTelemetry(every=1)
    cfg = TrainConfig(max_steps=1, eval_every=100, warmup_steps=0, lr=1e-9)
    snapshot = {k: v.clone() for k, v in task.model.state_dict().items()}
    Trainer(task, cfg, [cb]).fit()
    task.model.load_state_dict(snapshot)
    with rnnkit.record_gradients(task.model) as rec:
        task.loss(task.train_batch(0))[0].backward()
    got = cb.history[0]["layers"]["rnn.l0"]["h"]
    torch.testing.assert_close(torch.tensor(got, dtype=torch.float64), rec.norms["rnn.l0"]["h"])


def test_the_progress_bar_ends_its_line_when_a_run_stops(capsys):
    """An error was glued to the bar's line and the bar drawn again after it."""
    from rnnkit.train.callbacks import ProgressBar
    out = Terminal()

    class Stop:
        def on_log(self, trainer, stats):
            if trainer.step == 3:
                raise RuntimeError("stop")
    cfg = TrainConfig(max_steps=8, eval_every=100, log_every=1, warmup_steps=0)
    bar = ProgressBar(file=out)
    with pytest.raises(RuntimeError):
        Trainer(TinyTask(), cfg, [bar, Stop()]).fit()
    assert "3/8" in out.getvalue() and out.getvalue().endswith("\n")   # closed: a line


class Terminal(io.StringIO):   # a bar is drawn on a terminal only
    def isatty(self):
        return True


def test_a_blown_up_perplexity_is_printed_in_a_few_digits():
    """A diverged run's ppl was printed as a 97-digit number."""
    from rnnkit.train.callbacks import ProgressBar

    class Perplexing(TinyTask):
        def evaluate(self):
            return {"val_loss": 221.0, "val_bits": 221.0 / math.log(2), "val_ppl": math.exp(221.0)}
    out = io.StringIO()
    Trainer(Perplexing(), TrainConfig(max_steps=2, eval_every=2, warmup_steps=0),
            [ProgressBar(file=out)]).fit()
    assert "ppl 9.53e+95, " in out.getvalue()
