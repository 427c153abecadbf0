"""Tiny task data sets written by the tests (no network), and the tiny configs that train on them."""
import math

from rnnkit.models.classifier import ClassifierConfig
from rnnkit.models.forecaster import ForecasterConfig
from rnnkit.models.tagger import TaggerConfig
from rnnkit.tasks.classify import ClassifyData, build_classify_task
from rnnkit.tasks.forecast import ForecastData, build_forecast_task
from rnnkit.tasks.tag import TagData, build_tag_task

POS = ["a good film", "great fun and good acting", "a fine warm story", "good good great",
       "warm and fine", "great acting"]
NEG = ["a bad film", "awful and dull acting", "a poor cold story", "bad bad awful",
       "cold and dull", "poor acting"]
TAGGED = ["the/D cat/N sat/V", "a/D dog/N ran/V fast/R", "the/D big/A dog/N sat/V",
          "a/D cat/N ran/V", "dogs/N ran/V fast/R", "the/D small/A cat/N slept/V"]


def write_labelled(tmp_path, name="labels.tsv"):
    path = tmp_path / name
    rows = [f"positive\t{t}" for t in POS] + [f"negative\t{t}" for t in NEG]
    path.write_text("\n".join(rows * 4) + "\n", encoding="utf-8")
    return path


def write_tagged(tmp_path, name="tagged.txt"):
    path = tmp_path / name
    path.write_text("\n".join(TAGGED * 6) + "\n", encoding="utf-8")
    return path


def write_series(tmp_path, name="series.csv", n=160):
    path = tmp_path / name
    rows = [f"{t},{math.cos(2 * math.pi * t / 12):.4f},{10 + 5 * math.sin(2 * math.pi * t / 12) + 0.05 * t:.4f}"
            for t in range(n)]
    path.write_text("t,other,value\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def classify_task(tmp_path, **model):
    data = ClassifyData(data=str(write_labelled(tmp_path)), batch=8)
    cfg = ClassifierConfig(**{"hidden": 16, "embed": 16, "dropout": 0.0, **model})
    return build_classify_task(data, cfg, log=lambda *a: None)


def tag_task(tmp_path, **model):
    data = TagData(data=str(write_tagged(tmp_path)), batch=8, min_count=1)
    cfg = TaggerConfig(**{"hidden": 16, "embed": 16, "char_embed": 8, "char_hidden": 8,
                          "dropout": 0.0, **model})
    return build_tag_task(data, cfg, log=lambda *a: None)


def forecast_task(tmp_path, columns="", **model):
    data = ForecastData(data=str(write_series(tmp_path)), columns=columns, window=24, horizon=6,
                        season=12, batch=8)
    # linear off: its closed-form fit alone already forecasts this noiseless fixture, so training
    # could not lower the loss (tests/test_forecast_task.py covers the linear part)
    cfg = ForecasterConfig(**{"layers": 1, "hidden": 16, "linear": False, **model})
    return build_forecast_task(data, cfg, log=lambda *a: None)
