"""A cell's fast path in its own files: the compiled loops of the peephole LSTM and of IndRNN
(their rows in rnnkit/kernels/peephole_lstm.cpp, indrnn.cpp on the shared scaffold; their
@fast_path classes in rnnkit/cells/peephole_lstm.py, indrnn.py) equal their Python steps and
pass gradcheck."""
import pytest
import torch

import rnnkit
from rnnkit import kernels
from rnnkit.bptt.schedule import Schedule
from rnnkit.cells.fused import fused
from rnnkit.cells.indrnn import FusedIndRNN, IndRNN
from rnnkit.cells.peephole_lstm import FusedPeepholeLSTM, PeepholeLSTM


def need_kernels():
    if not kernels.available():
        pytest.skip(f"fused kernels {kernels.status()}")


def _train_step(m, x):
    torch.manual_seed(1)                                  # the same dropout masks on both paths
    out, fin = m(x)
    h, c = fin if isinstance(fin, tuple) else (fin, fin)
    o = out.data if isinstance(out, torch.nn.utils.rnn.PackedSequence) else out
    (o.sin().sum() + h.pow(2).sum() + c.cos().sum()).backward()
    got = [o.detach(), h.detach(), c.detach()] + [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    return got


@pytest.mark.parametrize("cell", ["peephole-lstm", "indrnn"])
@pytest.mark.parametrize("opts", [{}, {"recurrent_dropout": 0.3, "num_layers": 2,
                                       "bidirectional": True, "learn_init": True}],
                         ids=["plain", "options"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("packed", [False, True])
def test_compiled_loop_agrees_with_the_python_steps(cell, opts, dtype, tol, packed):
    need_kernels()
    torch.manual_seed(0)
    m = rnnkit.Recurrent(cell, 5, 16, **opts).to(dtype)
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


@pytest.mark.parametrize("name,variant", [("peephole-lstm", FusedPeepholeLSTM),
                                          ("indrnn", FusedIndRNN)])
def test_the_compiled_loop_runs(name, variant, monkeypatch):
    need_kernels()
    cell = rnnkit.cells.get(name)
    assert type(fused(cell, torch.zeros(1))) is variant
    assert fused(cell, torch.zeros(1, dtype=torch.bfloat16)) is cell
    calls = []
    for method in ("forward_loop", "backward_loop"):
        real = getattr(variant, method)
        monkeypatch.setattr(variant, method,
                            lambda self, *a, real=real, m=method: calls.append(m) or real(self, *a))
    out = rnnkit.Recurrent(name, 3, 4, bidirectional=True)(torch.randn(5, 2, 3))[0]
    out.sum().backward()
    assert sorted(calls) == ["backward_loop"] * 2 + ["forward_loop"] * 2


def test_peephole_gradcheck_through_the_compiled_loop():
    need_kernels()
    torch.manual_seed(0)
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


def test_indrnn_gradcheck_through_the_compiled_loop():
    need_kernels()
    torch.manual_seed(0)                        # pre-activations away from relu's kink at 0
    cell, H, d = IndRNN(), 3, torch.float64
    sched = Schedule([3, 3, 2, 1], reverse=True)
    gi = torch.randn(sched.N, H, dtype=d, requires_grad=True)
    u = torch.rand(H, dtype=d).requires_grad_()
    h0 = torch.rand(3, H, dtype=d, requires_grad=True)
    assert type(fused(cell, gi)) is FusedIndRNN

    def f(gi, u, h):
        out, fin = rnnkit.bptt.function.run(cell, sched, gi, None, u, None, None, (h,))
        return (out, *fin)

    assert torch.autograd.gradcheck(f, (gi, u, h0))
