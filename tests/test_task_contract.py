"""The contract every task model keeps, on tiny fixtures: a few training steps through the shared
trainer lower the loss; the run folder alone rebuilds a predictor that predicts the same.

To add a task model (issue 5: Seq2Seq, ConditionalGenerator), append one ``TaskCase`` to CASES.
"""
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
import torch

from rnnkit.tasks.classify_trained import Classifier
from rnnkit.tasks.common import train
from rnnkit.tasks.forecast_trained import Forecast
from rnnkit.tasks.lm import load_lm
from rnnkit.tasks.image_to_text import ImageReader
from rnnkit.tasks.recognize import Recognizer
from rnnkit.tasks.tag_trained import Tagger
from rnnkit.train import TrainConfig

from task_fixtures import classify_task, forecast_task, tag_task
from lm_fixtures import CHINESE, lm_continuations, lm_task
from recognize_fixtures import image_to_text_task, recognitions, recognize_task
from seq2seq_fixtures import (cond_task, generations, generator, load_generator,
                              load_translator, seq2seq_task, translations, translator)


@dataclass
class TaskCase:
    name: str
    build: Callable[[Any], Any]        # tmp_path -> a fresh trainer task on a fixture it writes
    predictor: Callable[[Any], Any]    # task -> the in-memory predictor
    load: Callable[[Any], Any]         # run folder -> the predictor rebuilt from the checkpoint
    predict: Callable[[Any], Any]      # predictor -> predictions as plain data (lists, arrays)
    train: dict = field(default_factory=dict)   # TrainConfig overrides


CASES = [
    TaskCase("classify", classify_task, Classifier.from_task, Classifier.load,
             lambda p: p.predict(["a good warm film", "awful dull story", "unseen words here"])),
    TaskCase("classify-attention-gru", lambda t: classify_task(t, cell="gru", pooling="attention"),
             Classifier.from_task, Classifier.load, lambda p: p.predict(["great fun", "bad"])),
    TaskCase("tag", tag_task, Tagger.from_task, Tagger.load,
             lambda p: p.tag([["the", "dog", "ran"], ["a", "zebra", "slept", "fast"]])),
    TaskCase("tag-crf", lambda t: tag_task(t, crf=True, char_embed=0), Tagger.from_task,
             Tagger.load, lambda p: p.tag([["the", "cat", "sat"], ["dogs", "ran"]])),
    TaskCase("forecast-direct", forecast_task, Forecast.from_task, Forecast.load,
             lambda p: p.forecast(15)),
    TaskCase("forecast-autoregressive", lambda t: forecast_task(t, mode="autoregressive"),
             Forecast.from_task, Forecast.load, lambda p: p.forecast(9)),
    TaskCase("forecast-multivariate", lambda t: forecast_task(t, columns="value,other"),
             Forecast.from_task, Forecast.load, lambda p: p.forecast(8)),
    TaskCase("seq2seq-attention", seq2seq_task, translator, load_translator, translations),
    TaskCase("seq2seq-gru-no-attention",
             lambda t: seq2seq_task(t, cell="gru", attention="none", input_feed=False),
             translator, load_translator, translations),
    TaskCase("cond", cond_task, generator, load_generator, generations),
    TaskCase("lm", lm_task, lambda task: (task.model, task.vocab), load_lm, lm_continuations),
    TaskCase("lm-tied-chinese", lambda t: lm_task(t, CHINESE, tie="yes"),
             lambda task: (task.model, task.vocab), load_lm, lm_continuations),
    TaskCase("lm-adaptive-gru", lambda t: lm_task(t, cell="gru", softmax="adaptive"),
             lambda task: (task.model, task.vocab), load_lm, lm_continuations),
    TaskCase("recognize-ctc", recognize_task, Recognizer.from_task, Recognizer.load,
             recognitions),
    TaskCase("recognize-ctc-lstm", lambda t: recognize_task(t, cell="lstm", time_stride=4),
             Recognizer.from_task, Recognizer.load, recognitions),
    TaskCase("image-to-text", image_to_text_task, ImageReader.from_task, ImageReader.load,
             recognitions),
]


def batch_loss(task, batch):
    task.model.eval()
    with torch.no_grad():
        return float(task.loss(batch)[0])


def assert_same(a, b):
    """Equal structure; numbers equal to float tolerance."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)) and not (a and isinstance(a[0], float)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, (float, np.ndarray, torch.Tensor)) or (isinstance(a, list) and a):
        np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                                   rtol=1e-5, atol=1e-6)
    else:
        assert a == b


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_task_contract(case, tmp_path):
    task = case.build(tmp_path)
    batch = task.train_batch(0)
    before = batch_loss(task, batch)
    config = TrainConfig(**{"lr": 1e-2, "max_steps": 30, "eval_every": 10, "warmup_steps": 0,
                            "log_every": 10, **case.train})
    metrics = train(task, config, tmp_path / "run", quiet=True)
    assert batch_loss(task, batch) < before, "training did not lower the loss on a seen batch"
    assert metrics["steps"] == 30 and (tmp_path / "run" / "metrics.json").is_file()
    expected = case.predict(case.predictor(task))          # train() left best.pt in the model
    assert_same(case.predict(case.load(tmp_path / "run")), expected)
