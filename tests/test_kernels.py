"""The fused CPU kernels: built where a compiler is, equal to the Python cells, and never needed."""
import contextlib

import pytest
import torch

import rnnkit
from rnnkit import kernels
from rnnkit.bptt.schedule import Schedule
from rnnkit.cells import CELLS, LN_CELLS
from rnnkit.cells.fused import fused

from helpers import HAVE_CXX, need_kernels


@pytest.mark.skipif(not HAVE_CXX, reason="no C++ compiler on this machine")
def test_kernels_build_where_a_compiler_is():
    assert kernels.available(), kernels.status()
    assert kernels.status().startswith("built: ")


@pytest.mark.parametrize("cell", [CELLS["LSTM"], LN_CELLS["LSTM"], CELLS["GRU"], LN_CELLS["GRU"],
                                  CELLS["RNN_TANH"], CELLS["RNN_RELU"], LN_CELLS["RNN_RELU"]],
                         ids=["lstm", "lstm_ln", "gru", "gru_ln", "rnn_tanh", "rnn_relu", "rnn_ln"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_variant_is_picked_for_cpu_floats_only(cell, dtype):
    need_kernels()
    x = torch.zeros(2, 3, dtype=dtype)
    assert type(fused(cell, x)).__name__.startswith("Fused")
    assert fused(cell, x.to(torch.bfloat16)) is cell
    with kernels.disabled():
        assert fused(cell, x) is cell
    assert fused(CELLS["GRU_RESET_BEFORE"], x) is CELLS["GRU_RESET_BEFORE"]   # no kernel for it


def _activations(a):
    """Run a (1, 4H) pre-activation through the LSTM kernel; returns the activated gates."""
    k = kernels.get(a)
    H = a.shape[1] // 4
    acts, cp = a.clone(), torch.zeros(1, H, dtype=a.dtype)
    c, h, tc = (torch.empty(1, H, dtype=a.dtype) for _ in range(3))
    k.lstm_fwd(b=1, H=H, acts=acts, cp=cp, ld_cp=H, c=c, h=h, tc=tc)
    return acts


def test_float32_sigmoid_and_tanh_match_torch_over_the_whole_range():
    need_kernels()
    H = 4096
    v = torch.cat([torch.linspace(-30, 30, H - 8),
                   torch.tensor([-1e4, -100.0, -88.5, -1e-30, 0.0, 1e-30, 88.5, 1e4])])
    a = torch.cat([v, v, v, v]).unsqueeze(0)
    acts = _activations(a)[0]
    sig, tanh = acts[:H], acts[2 * H:3 * H]
    torch.testing.assert_close(sig, torch.sigmoid(v), atol=1e-7, rtol=3e-7)
    torch.testing.assert_close(tanh, torch.tanh(v), atol=1e-7, rtol=3e-7)
    small = v.abs() < 1e-3                               # tanh x ≈ x: relative accuracy kept
    torch.testing.assert_close(tanh[small], torch.tanh(v[small]), atol=0, rtol=1e-6)
    nan = _activations(torch.full((1, 8), float("nan")))
    assert nan.isnan().all()


CONFIGS = {
    "plain": {},
    "layer_norm": {"layer_norm": True},
    "rec_dropout": {"recurrent_dropout": 0.3, "num_layers": 2, "bidirectional": True},
    "ln_rec_dropout": {"layer_norm": True, "recurrent_dropout": 0.3, "learn_init": True,
                       "num_layers": 2, "bidirectional": True},
    "ln_options": {"layer_norm": True, "recurrent_dropout": 0.3, "zoneout": (0.1, 0.2),
                   "learn_init": True, "num_layers": 2, "bidirectional": True},
    "options": {"recurrent_dropout": 0.3, "zoneout": 0.2, "input_dropout": 0.1,
                "weight_dropout": 0.2, "num_layers": 2, "bidirectional": True},
}


def _train_step(m, x, reset):
    torch.manual_seed(1)                      # the same masks on both paths
    res = m(x, reset=reset)
    out = res[0].data if isinstance(res[0], torch.nn.utils.rnn.PackedSequence) else res[0]
    h, c = res[1] if isinstance(res[1], tuple) else (res[1], res[1])
    (out.sin().sum() + h.pow(2).sum() + c.cos().sum()).backward()
    got = [out.detach(), h.detach(), c.detach()] + [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    return got


GRU_CONFIGS = {"gru_plain": {}, "gru_options": dict(CONFIGS["options"]),
               "gru_rec_dropout": dict(CONFIGS["rec_dropout"])}
RNN_CONFIGS = {"rnn_tanh": dict(CONFIGS["rec_dropout"]),
               "rnn_relu": {"nonlinearity": "relu", **CONFIGS["rec_dropout"]},
               "rnn_options": dict(CONFIGS["options"]),
               "rnn_ln": {"layer_norm": True, **CONFIGS["rec_dropout"]},
               "rnn_relu_ln": {"nonlinearity": "relu", "layer_norm": True}}
GRU_CONFIGS["gru_ln"] = {"layer_norm": True, **CONFIGS["rec_dropout"]}
GRU_CONFIGS["gru_ln_options"] = {"layer_norm": True, **CONFIGS["options"]}


@pytest.mark.parametrize("config", list(CONFIGS) + list(GRU_CONFIGS) + list(RNN_CONFIGS))
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("packed", [False, True])
def test_fused_and_python_paths_agree(config, dtype, tol, packed):
    """A training step (outputs, final states, every gradient) through both paths."""
    need_kernels()
    if config in GRU_CONFIGS:
        m = rnnkit.GRU(5, 16, **GRU_CONFIGS[config]).to(dtype)
    elif config in RNN_CONFIGS:
        m = rnnkit.RNN(5, 16, **RNN_CONFIGS[config]).to(dtype)
    else:
        m = rnnkit.LSTM(5, 16, **CONFIGS[config]).to(dtype)
    x = torch.randn(7, 4, 5, dtype=dtype)
    reset = None
    if packed:
        x = torch.nn.utils.rnn.pack_padded_sequence(x, [7, 3, 6, 1], enforce_sorted=False)
    else:
        reset = torch.zeros(4, 7, dtype=torch.bool)
        reset[1, 3] = reset[2, 5] = True
    fast = _train_step(m, x, reset)
    with kernels.disabled():
        slow = _train_step(m, x, reset)
    for a, b in zip(fast, slow):
        scale = b.abs().max().clamp_min(1)
        assert ((a - b).abs().max() / scale).item() < tol


@pytest.mark.parametrize("cls,c_kind", [(rnnkit.LSTM, "strided"), (rnnkit.LSTM, "broadcast"),
                                         (rnnkit.GRU, None)])
def test_non_contiguous_initial_states_read_and_get_their_gradients(cls, c_kind):
    need_kernels()
    m = cls(3, 4)
    x = torch.randn(5, 2, 3)
    h0 = torch.randn(4, 2, 1).permute(2, 1, 0).requires_grad_()      # dense, columns strided
    if c_kind == "strided":
        c0 = torch.randn(4, 2, 1).permute(2, 1, 0).requires_grad_()
        c_in = c0
    else:
        c0 = torch.randn(1, 1, 4).requires_grad_()                   # rows broadcast: stride 0
        c_in = c0.expand(1, 2, 4)
    hx = (h0, c_in) if cls is rnnkit.LSTM else h0
    got = []
    for ctx in (contextlib.nullcontext(), kernels.disabled()):
        h0.grad = c0.grad = None
        with ctx:
            out, fin = m(x, hx)
            fin = fin if isinstance(fin, tuple) else (fin,)
            (out.sin().sum() + sum(f.pow(2).sum() for f in fin)).backward()
        got.append([out.detach(), h0.grad] + ([c0.grad] if cls is rnnkit.LSTM else []))
    for a, b in zip(*got):
        torch.testing.assert_close(a, b)


def test_one_direction_gradcheck_through_the_kernels():
    need_kernels()
    cell, H = LN_CELLS["LSTM"], 3
    sched = Schedule([3, 3, 2, 1], reverse=True)
    d = torch.float64
    gi = torch.randn(sched.N, 4 * H, dtype=d, requires_grad=True)
    w_hh = (torch.randn(4 * H, H, dtype=d) * 0.5).requires_grad_()
    h0 = [torch.randn(3, H, dtype=d, requires_grad=True) for _ in range(2)]
    params = [torch.randn(4 * H, dtype=d, requires_grad=True), torch.randn(4 * H, dtype=d, requires_grad=True),
              torch.randn(H, dtype=d, requires_grad=True), torch.randn(H, dtype=d, requires_grad=True)]
    assert type(fused(cell, gi)).__name__ == "FusedLayerNormLSTMMath"

    def f(gi, w_hh, h, c, *ps):
        out, fin = rnnkit.bptt.function.run(cell, sched, gi, None, w_hh, None, None, (h, c), params=ps)
        return (out, *fin)

    assert torch.autograd.gradcheck(f, (gi, w_hh, *h0, *params))


@pytest.mark.parametrize("make,loop", [(lambda: rnnkit.LSTM(5, 8, bidirectional=True), "FusedLSTMMath"),
                                       (lambda: rnnkit.GRU(5, 8, recurrent_dropout=0.2), "FusedGRUMath"),
                                       (lambda: rnnkit.LSTM(5, 8, layer_norm=True, recurrent_dropout=0.2),
                                        "FusedLayerNormLSTMMath"),
                                       (lambda: rnnkit.RNN(5, 8, nonlinearity="relu"), "FusedVanillaMath")])
def test_whole_time_loop_runs_where_it_can_and_steps_where_it_cannot(make, loop, monkeypatch):
    """Full and packed batches, both directions, take the compiled loop; resets (and zoneout)
    take the Python loop of step kernels."""
    need_kernels()
    import rnnkit.cells.fused as fused_mod
    cls = getattr(fused_mod, loop)
    calls = {"loop": 0, "step": 0}
    real_loop, real_step = cls.forward_loop, cls.forward_step

    def count_loop(self, *a):
        calls["loop"] += 1
        return real_loop(self, *a)

    def count_step(self, *a):
        calls["step"] += 1
        return real_step(self, *a)

    monkeypatch.setattr(cls, "forward_loop", count_loop)
    monkeypatch.setattr(cls, "forward_step", count_step)
    m = make()
    x = torch.randn(6, 3, 5)
    m(x)
    assert calls["loop"] == m.num_directions and calls["step"] == 0
    calls.update(loop=0, step=0)
    m(x, lengths=torch.tensor([6, 2, 4]))
    assert calls["loop"] == m.num_directions and calls["step"] == 0
    calls.update(loop=0, step=0)
    m(x, reset=torch.zeros(3, 6, dtype=torch.bool))
    assert calls["loop"] == 0 and calls["step"] == 6 * m.num_directions


def test_without_a_usable_gemm_the_step_kernels_run_and_agree(monkeypatch):
    need_kernels()
    m = rnnkit.LSTM(5, 8, layer_norm=True, recurrent_dropout=0.2)
    x = torch.randn(6, 3, 5)
    whole = _train_step(m, x, None)
    k = kernels.get(x)
    monkeypatch.setattr(k, "gemm", None)
    steps = _train_step(m, x, None)
    for a, b in zip(whole, steps):
        torch.testing.assert_close(a, b, rtol=2e-5, atol=2e-6)
