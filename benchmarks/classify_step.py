"""The classify task's training step, timed with and without the words' character n-grams in
the bag: batch building, forward, backward and Adam, on a data set's training part.

    python benchmarks/classify_step.py [--data movie-reviews] [--char-grams 5,0] [--steps 10]
        [--repeats 3] [--threads 2]

Each setting builds the task as ``rnnkit train classify --data DATA --char-grams N`` would
(without the linear start), warms up for 3 steps, then times --steps steps --repeats times; the
settings take turns, so the machine's load falls on each alike. Prints the median seconds a step
of each and their ratio to the first.
"""
import argparse
import statistics
import time

import torch

from rnnkit.models.classifier import ClassifierConfig
from rnnkit.tasks.classify import ClassifyData, build_classify_task


def stepper(data, char_grams):
    """A function that trains the task one step (step number in, nothing out)."""
    task = build_classify_task(ClassifyData(data=data), ClassifierConfig(char_grams=char_grams),
                               log=lambda *a: None)
    task._start = None                       # no initial weights to restore at step 0
    opt = torch.optim.Adam(task.model.parameters())
    task.model.train()

    def step(s):
        batch = task.train_batch(s)
        opt.zero_grad(set_to_none=True)
        loss, _ = task.loss(batch)
        loss.backward()
        opt.step()
    return step


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="movie-reviews")
    p.add_argument("--char-grams", default="5,0", help="settings compared, comma-separated")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    settings = [int(c) for c in a.char_grams.split(",")]
    steps = {c: stepper(a.data, c) for c in settings}
    for step in steps.values():
        for s in range(3):
            step(s)
    times = {c: [] for c in settings}
    for r in range(a.repeats):
        for c, step in steps.items():
            t = time.perf_counter()
            for s in range(a.steps):
                step(3 + r * a.steps + s)
            times[c].append((time.perf_counter() - t) / a.steps)
    first = statistics.median(times[settings[0]])
    for c in settings:
        m = statistics.median(times[c])
        print(f"--char-grams {c}: {m:.3f} s a step (median of {a.repeats}), "
              f"{m / first:.2f}x --char-grams {settings[0]}")


if __name__ == "__main__":
    main()
