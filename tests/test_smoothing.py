"""Exponential smoothing over a window (rnnkit.models.smoothing): the equations' special cases,
the grid fit, and the same parameters in standardised and in the data's units."""
import math

import torch

from rnnkit.models.smoothing import fit_smoothing, grid, smoothing_forecast


def windows(series, W, K):
    """Windows (B, W, 1) and the K values after each (B, K, 1) of a 1-D series."""
    s = torch.as_tensor(series, dtype=torch.float64)
    origins = range(W, len(s) - K + 1)
    return (torch.stack([s[t - W:t] for t in origins])[..., None],
            torch.stack([s[t:t + K] for t in origins])[..., None])


def test_alpha_one_without_trend_is_the_last_value():
    z = torch.randn(5, 20, 2, dtype=torch.float64)
    out = smoothing_forecast(z, torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0]), 1, 7)       # (B, K, F)
    assert out.shape == (5, 7, 2)
    torch.testing.assert_close(out, z[:, -1:].expand(-1, 7, -1))


def test_a_grid_of_parameters_at_once_and_affine_equivariance():
    z = torch.randn(4, 24, 1, dtype=torch.float64)
    params = grid(seasonal=True)[:10]                                                 # (G, 5)
    out = smoothing_forecast(z, params, 12, 6)                                        # (G, B, K, F)
    assert out.shape == (10, 4, 6, 1)
    torch.testing.assert_close(out[3], smoothing_forecast(z, params[3], 12, 6))
    torch.testing.assert_close(smoothing_forecast(3 * z + 5, params, 12, 6), 3 * out + 5)


def test_fit_recovers_trend_and_season():
    """A clean trend plus season is forecast almost exactly by the fitted parameters, and far
    better than with the season switched off."""
    t = torch.arange(200, dtype=torch.float64)
    series = 0.05 * t + torch.sin(2 * math.pi * t / 12)
    x, y = windows(series, 48, 12)
    params, err = fit_smoothing(x, y, 12, seasonal=True)
    assert params[4] == 1 and err < 0.05
    _, flat = fit_smoothing(x, y, 12, seasonal=False)
    assert flat > 10 * err
    damped = smoothing_forecast(x, torch.tensor([0.5, 0.0, 0.0, 0.5, 0.0]), 12, 12)
    assert torch.isfinite(damped).all()
