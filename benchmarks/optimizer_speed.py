"""A classifier's whole training step with torch's plain (foreach) AdamW and with its fused kernel,
which ``rnnkit train`` uses: the same model, batches and weights, the two alternated, medians.

    OMP_NUM_THREADS=1 python benchmarks/optimizer_speed.py [--data thucnews-titles] [--steps 40]

The classifier on characters carries a 1,000,000-bucket bag of n-grams with K scores a bucket:
at K = 10 topics its 10 M weights make the optimizer's update the largest part of a step.
"""
import argparse
import statistics
import time

import torch

from rnnkit.models.classifier import ClassifierConfig
from rnnkit.tasks.classify import ClassifyData, build_classify_task


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="thucnews-titles")
    p.add_argument("--steps", type=int, default=40, help="timed steps per optimizer")
    a = p.parse_args()
    task = build_classify_task(ClassifyData(data=a.data), ClassifierConfig(), log=print)
    params = [q for q in task.model.parameters() if q.requires_grad]
    print(f"{sum(q.numel() for q in params):,} weights")
    opts = {"plain": torch.optim.AdamW(params, lr=1e-4),
            "fused": torch.optim.AdamW(params, lr=1e-4, fused=True)}
    times = {k: [] for k in opts}
    for step in range(2 * a.steps + 4):
        name = ("plain", "fused")[step % 2]
        batch = task.train_batch(step)
        t = time.perf_counter()
        opts[name].zero_grad()
        loss, _ = task.loss(batch)
        loss.backward()
        opts[name].step()
        if step >= 4:
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"median step: plain AdamW {med['plain']:.1f} ms, fused {med['fused']:.1f} ms "
          f"({med['plain'] / med['fused']:.2f}x)")


if __name__ == "__main__":
    main()
