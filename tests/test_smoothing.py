"""Exponential smoothing over a window and over the history (rnnkit.models.smoothing): the
equations' special cases, the grid fits, and the same parameters in standardised and in the
data's units."""
import math

import pytest
import torch

from rnnkit.models.smoothing import (fit_each_origin, fit_history, fit_smoothing, forecast_each,
                                     grid, history_forecast, smoothing_forecast)


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


def test_history_forecast_is_the_window_filter_started_at_the_series_start():
    """history_forecast from origin t equals smoothing_forecast over the window z[0:t] (the same
    start, the same filter) for every origin and grid point, in one pass."""
    z = torch.randn(60, 2, dtype=torch.float64).cumsum(0)
    params = grid(True)[[5, 100, 400]]
    origins = [59, 24, 30, 45]   # from 2m on: the window holds the steps the trend starts from
    out = history_forecast(z, params, 12, 5, origins)                          # (G, n, K, F)
    for i, t in enumerate(origins):
        torch.testing.assert_close(out[:, i], smoothing_forecast(z[None, :t], params, 12, 5)[:, 0])
    with pytest.raises(ValueError, match="origins in"):
        history_forecast(z, params, 12, 5, [11])


def test_fit_history_finds_the_season():
    """One-step fitting over the history picks a seasonal filter on a seasonal series."""
    t = torch.arange(120, dtype=torch.float64)
    z = (torch.sin(2 * torch.pi * t / 12) + 0.01 * t)[:, None]
    params, err = fit_history(z, list(range(24, 120)), 12, seasonal=True)
    _, flat = fit_history(z, list(range(24, 120)), 12, seasonal=False)
    assert params[4] == 1 and err < flat / 5


@pytest.mark.parametrize("m, seasonal", [(1, False), (4, True), (12, True)])
def test_fit_each_origin_is_fit_history_on_the_history_before_it(m, seasonal):
    """One pass gives each origin t what fit_history gives on z[:t] alone (from 2m on, where the
    trend starts on the same steps), and the parameters follow a change of the series."""
    g = torch.Generator().manual_seed(m)
    t = torch.arange(150, dtype=torch.float64)
    season = torch.sin(2 * torch.pi * t / max(m, 2)) * (1 + 2 * (t >= 100))   # louder from 100
    z = (0.02 * t + season + 0.3 * torch.randn(150, generator=g, dtype=torch.float64))[:, None]
    first = max(8, m)
    origins = [2 * max(m, 4) + 1, 60, 99, 100, 120, 150]
    fits = fit_each_origin(z, origins, first, m, seasonal)
    assert fits.shape == (len(origins), 5)
    for o, p in zip(origins, fits):
        assert p.tolist() == fit_history(z[:o], list(range(first, o)), m, seasonal)[0].tolist()
    with pytest.raises(ValueError, match="each origin must leave a step"):
        fit_each_origin(z, [first], first, m, seasonal)
    # forecast_each: each origin's forecast with its own fit, in one pass for all the fits
    each = forecast_each(z, fits, m, 6, origins)                              # (n, 6, 1)
    for i, (o, p) in enumerate(zip(origins, fits)):
        assert torch.equal(each[i], history_forecast(z, p, m, 6, [o])[0])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("m, F, lead", [(12, 1, (40,)), (1, 3, (7, 2)), (4, 2, ())])
def test_the_compiled_filter_gives_the_numpy_loops_numbers_bit_for_bit(dtype, m, F, lead):
    """history_forecast's pass in the kernel (rnnkit/kernels/smoothing.cpp) and in numpy (the
    kernels off): the same forecasts and one-step errors, bit for bit, for origins unsorted and
    repeated, several variables and grid points in any shape."""
    from rnnkit import kernels
    if not kernels.available():
        pytest.skip("no C++ compiler: only the numpy loop runs")
    g = torch.Generator().manual_seed(m + F)
    z = torch.randn(150, F, generator=g, dtype=torch.float64).cumsum(0).to(dtype)
    every = grid(m > 1)
    params = every[torch.randint(len(every), lead, generator=g)] if lead else every[100]
    origins = [140, 13, 77, 149, 13, 60, 150]
    for errors, K, at in ((False, 6, origins), (True, 1, origins[:-1])):
        fast = history_forecast(z, params, m, K, at, errors=errors)
        with kernels.disabled():
            slow = history_forecast(z, params, m, K, at, errors=errors)
        assert fast.shape == slow.shape == (*lead, len(at), *(() if errors else (K,)), F)
        assert fast.dtype == slow.dtype == dtype and torch.equal(fast, slow)
        assert fast.is_contiguous()   # a view reduced in another order: errors 1 ulp apart
    z = z.double()
    params, err = fit_history(z, list(range(12, 149)), m, m > 1)
    with kernels.disabled():
        slow = fit_history(z, list(range(12, 149)), m, m > 1)
    assert torch.equal(params, slow[0]) and err == slow[1]
