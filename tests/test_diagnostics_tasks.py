"""The adding and copy-memory generators have the statistics their docstrings state."""
import math

import pytest
import torch

from rnnkit.diagnostics.tasks import (ADDING_BASELINE_MSE, COPY_ALPHABET, adding_batch, copy_batch,
                                      copy_baseline_xent)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_adding_structure_and_statistics():
    T, B = 20, 20_000
    x, y = adding_batch(T, B, gen())
    assert x.shape == (T, B, 2) and y.shape == (B, 1)
    marks = x[..., 1]
    assert torch.all(marks.sum(0) == 2)                                 # exactly two markers
    assert torch.all(marks[: T // 2].sum(0) == 1)                       # one in each half
    assert torch.all((x[..., 0] >= 0) & (x[..., 0] < 1))
    torch.testing.assert_close(y[:, 0], (x[..., 0] * marks).sum(0))
    # E[y] = 1, Var[y] = 1/6: the MSE of always predicting 1 is the stated baseline
    assert abs(y.mean().item() - 1.0) < 0.01
    assert abs((y - 1).pow(2).mean().item() - ADDING_BASELINE_MSE) < 0.005
    assert abs(ADDING_BASELINE_MSE - 0.1667) < 1e-4
    # marker positions uniform over each half
    first = marks[: T // 2].argmax(0)
    counts = torch.bincount(first, minlength=T // 2).float() / B
    assert torch.all((counts - 1 / (T // 2)).abs() < 0.01)


def test_generators_are_seeded():
    a, b = adding_batch(10, 4, gen(3)), adding_batch(10, 4, gen(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], adding_batch(10, 4, gen(4))[0])
    c, d = copy_batch(5, 4, gen(3), K=3), copy_batch(5, 4, gen(3), K=3)
    assert torch.equal(c[0], d[0]) and torch.equal(c[1], d[1])


def test_copy_structure_and_statistics():
    T, B, K = 7, 20_000, 4
    x, y = copy_batch(T, B, gen(), K=K)
    assert x.shape == (T + 2 * K, B, COPY_ALPHABET + 2) and y.shape == (T + 2 * K, B)
    seq = x.argmax(-1)
    assert torch.all(x.sum(-1) == 1)                                    # one-hot
    symbols = seq[:K]
    assert symbols.min() >= 1 and symbols.max() <= COPY_ALPHABET
    assert torch.all(seq[K: K + T - 1] == 0)                            # blanks for the lag
    assert torch.all(seq[K + T - 1] == COPY_ALPHABET + 1)               # the delimiter
    assert torch.all(seq[K + T:] == 0)
    assert torch.all(y[: T + K] == 0) and torch.equal(y[T + K:], symbols)  # recall the K symbols
    freq = torch.bincount(symbols.flatten(), minlength=COPY_ALPHABET + 1)[1:].float() / (K * B)
    assert torch.all((freq - 1 / COPY_ALPHABET).abs() < 0.005)          # uniform over 1..8
    assert copy_baseline_xent(T, K) == pytest.approx(K * math.log(8) / (T + 2 * K))


def test_bad_lags_are_rejected():
    with pytest.raises(ValueError, match="T >= 2"):
        adding_batch(1, 2, gen())
    with pytest.raises(ValueError, match="K >= 1"):
        copy_batch(3, 2, gen(), K=0)
