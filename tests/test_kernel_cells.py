"""A cell's fast path in its own files: the peephole LSTM's compiled loops (its rows in
rnnkit/kernels/peephole_lstm.cpp, the shared scaffold, its @fast_path class in
rnnkit/cells/peephole_lstm.py) equal its Python steps and pass gradcheck."""
import pytest
import torch

import rnnkit
from rnnkit import kernels
from rnnkit.bptt.schedule import Schedule
from rnnkit.cells.fused import fused
from rnnkit.cells.peephole_lstm import FusedPeepholeLSTM, PeepholeLSTM


def need_kernels():
    if not kernels.available():
        pytest.skip(f"fused kernels {kernels.status()}")


def _train_step(m, x):
    torch.manual_seed(1)                                  # the same dropout masks on both paths
    out, (h, c) = m(x)
    o = out.data if isinstance(out, torch.nn.utils.rnn.PackedSequence) else out
    (o.sin().sum() + h.pow(2).sum() + c.cos().sum()).backward()
    got = [o.detach(), h.detach(), c.detach()] + [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    return got


@pytest.mark.parametrize("opts", [{}, {"recurrent_dropout": 0.3, "num_layers": 2,
                                       "bidirectional": True, "learn_init": True}],
                         ids=["plain", "options"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("packed", [False, True])
def test_peephole_compiled_loop_agrees_with_its_python_steps(opts, dtype, tol, packed):
    need_kernels()
    torch.manual_seed(0)
    m = rnnkit.Recurrent("peephole-lstm", 5, 16, **opts).to(dtype)
    with torch.no_grad():                                 # peepholes away from their zero start
        for name, p in m.named_parameters():
            if name.startswith("weight_c"):
                p.uniform_(-0.5, 0.5)
    x = torch.randn(7, 4, 5, dtype=dtype)
    if packed:
        x = torch.nn.utils.rnn.pack_padded_sequence(x, [7, 3, 6, 1], enforce_sorted=False)
    fast = _train_step(m, x)
    with kernels.disabled():
        slow = _train_step(m, x)
    for a, b in zip(fast, slow):
        assert ((a - b).abs().max() / b.abs().max().clamp_min(1)).item() < tol


def test_peephole_takes_the_compiled_loop(monkeypatch):
    need_kernels()
    cell = rnnkit.cells.get("peephole-lstm")
    assert type(fused(cell, torch.zeros(1))) is FusedPeepholeLSTM
    calls = []
    real = FusedPeepholeLSTM.forward_loop
    monkeypatch.setattr(FusedPeepholeLSTM, "forward_loop",
                        lambda self, *a: calls.append(1) or real(self, *a))
    rnnkit.Recurrent("peephole-lstm", 3, 4, bidirectional=True)(torch.randn(5, 2, 3))
    assert len(calls) == 2


def test_peephole_gradcheck_through_the_compiled_loop():
    need_kernels()
    cell, H, d = PeepholeLSTM(), 3, torch.float64
    sched = Schedule([3, 3, 2, 1], reverse=True)
    gi = torch.randn(sched.N, 4 * H, dtype=d, requires_grad=True)
    w_hh = (torch.randn(4 * H, H, dtype=d) * 0.5).requires_grad_()
    h0 = [torch.randn(3, H, dtype=d, requires_grad=True) for _ in range(2)]
    params = [(torch.randn(H, dtype=d) * 0.5).requires_grad_() for _ in range(3)]
    assert type(fused(cell, gi)) is FusedPeepholeLSTM

    def f(gi, w_hh, h, c, *ps):
        out, fin = rnnkit.bptt.function.run(cell, sched, gi, None, w_hh, None, None, (h, c),
                                            params=ps)
        return (out, *fin)

    assert torch.autograd.gradcheck(f, (gi, w_hh, *h0, *params))
