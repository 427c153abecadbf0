"""Synthetic long-lag tasks: the adding problem (Hochreiter & Schmidhuber 1997) and copy memory.

Both put the information the loss needs at a known distance (the lag T) before the loss, so
whether a cell learns them measures how far its error signal δ travels back in time.
Generators are seeded ``torch.Generator`` s: the same seed gives the same batch.

Shape legend: T time (the lag), B batch, K symbols to copy, C classes.

Adding problem (the variant of Arjovsky et al. 2016 and Le et al. 2015; H&S 1997 used values in
[-1, 1] and a rescaled target). Input x: (T, B, 2); channel 0 holds values v_t ~ U[0, 1], channel 1
is a marker with exactly two ones, one at a position drawn uniformly from the first half
[0, T//2), one from the second half [T//2, T). Target y = the sum of the two marked values, (B, 1).
Statistics: E[y] = 1, Var[y] = 2 · 1/12 = 1/6, so always predicting 1 has MSE 1/6 ≈ 0.1667 (the
best constant). The first marked value lies at least T - T//2 steps before the loss at t = T-1.

Copy memory (Hochreiter & Schmidhuber 1997; the form of Arjovsky et al. 2016). K symbols drawn
uniformly from {1, ..., 8}, then T blanks (0) with the delimiter 9 at the last of them, then K
blanks, total length T + 2K. Input: one-hot (T + 2K, B, 10). Target (T + 2K, B): 0 everywhere except
the last K steps, which repeat the K symbols. The memoryless baseline (blanks, then a uniform guess
over the 8 symbols) has cross-entropy K·log 8 / (T + 2K) per step and recall accuracy 1/8.
"""
import math
from dataclasses import dataclass

import torch

ADDING_BASELINE_MSE = 1.0 / 6.0      # MSE of always predicting E[y] = 1
COPY_ALPHABET = 8                    # symbols 1..8; 0 is the blank, 9 the delimiter
COPY_CLASSES = COPY_ALPHABET + 2     # input one-hot width (blank, 8 symbols, delimiter)


def adding_batch(T, B, generator):
    """(x (T, B, 2), y (B, 1)) for the adding problem at lag T (see the module docstring)."""
    if T < 2:
        raise ValueError(f"the adding problem needs T >= 2, got T={T}")
    values = torch.rand(T, B, generator=generator)                              # (T, B)
    first = torch.randint(0, T // 2, (B,), generator=generator)                 # (B,)
    second = torch.randint(T // 2, T, (B,), generator=generator)                # (B,)
    marks = torch.zeros(T, B)                                                   # (T, B)
    cols = torch.arange(B)
    marks[first, cols] = 1.0
    marks[second, cols] = 1.0
    x = torch.stack([values, marks], dim=2)                                     # (T, B, 2)
    y = (values * marks).sum(0, keepdim=True).T                                 # (B, 1)
    return x, y


def copy_batch(T, B, generator, K=10):
    """(x (T+2K, B, 10) one-hot, y (T+2K, B) class indices) for copy memory at lag T."""
    if T < 1 or K < 1:
        raise ValueError(f"the copy task needs T >= 1 and K >= 1, got T={T}, K={K}")
    symbols = torch.randint(1, COPY_ALPHABET + 1, (K, B), generator=generator)  # (K, B)
    blank = torch.zeros(T + K, B, dtype=torch.long)
    seq = torch.cat([symbols, blank], 0)                                        # (T+2K, B)
    seq[K + T - 1] = COPY_ALPHABET + 1                                          # the delimiter 9
    y = torch.cat([torch.zeros(T + K, B, dtype=torch.long), symbols], 0)        # (T+2K, B)
    x = torch.nn.functional.one_hot(seq, COPY_CLASSES).float()                  # (T+2K, B, 10)
    return x, y


@dataclass
class TaskSpec:
    """What the experiment loop needs to know about a task."""
    name: str
    input_size: int
    output_size: int
    per_step: bool        # output at every step (copy) or only the last (adding)
    metric: str           # the score reported in the table
    baseline: float       # the score of the best memoryless guess


def task_spec(name, T, K=10):
    if name == "adding":
        return TaskSpec("adding", 2, 1, False, "test MSE", ADDING_BASELINE_MSE)
    if name == "copy":
        return TaskSpec("copy", COPY_CLASSES, COPY_ALPHABET + 1, True, "recall accuracy",
                        1.0 / COPY_ALPHABET)
    raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")


def copy_baseline_xent(T, K=10):
    """Cross-entropy per step of the memoryless strategy (see the module docstring)."""
    return K * math.log(COPY_ALPHABET) / (T + 2 * K)


TASKS = {"adding": adding_batch, "copy": copy_batch}
