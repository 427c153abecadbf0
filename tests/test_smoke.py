"""Seconds-long check that the package imports and a layer trains one step."""
import torch

import rnnkit


def test_lstm_forward_backward_step():
    m = rnnkit.LSTM(3, 4, num_layers=2, bidirectional=True)
    x = torch.randn(5, 2, 3, requires_grad=True)
    out, (h, c) = m(x)
    assert out.shape == (5, 2, 8) and h.shape == (4, 2, 4) and c.shape == (4, 2, 4)
    out.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in m.parameters())
