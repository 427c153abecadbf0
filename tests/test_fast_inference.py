"""The inference step (rnnkit.layers.fast_step) equals the layer's forward, on every path:
the compiled whole-stack step, torch's cell ops, and the fallback to forward (the models'
steps: tests/test_fast_inference_models.py)."""
import pytest
import torch

import rnnkit
from rnnkit import kernels
from rnnkit.layers import fast_step

TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-12, atol=1e-12)}


def MGU(*args, **kw):
    return rnnkit.Recurrent("mgu", *args, **kw)


LAYERS = [(rnnkit.LSTM, {}), (rnnkit.GRU, {}), (rnnkit.RNN, {}),
          (rnnkit.RNN, {"nonlinearity": "relu"}), (MGU, {})]


def test_registered_torch_cells_take_the_fast_path():
    assert fast_step.fast_kind(rnnkit.Recurrent("lstm", 3, 4).eval()) == "LSTM"
    assert fast_step.fast_kind(rnnkit.Recurrent("rnn-relu", 3, 4).eval()) == "RNN_RELU"
    assert fast_step.fast_kind(rnnkit.Recurrent("mgu", 3, 4).eval()) == "MGU"
    assert fast_step.fast_kind(rnnkit.GRU(3, 4).train()) is None


def forward_steps(layer, xs, state):
    """The reference: the layer's forward, one length-1 sequence at a time."""
    outs = []
    for x in xs:
        out, state = layer(x[:, None] if layer.batch_first else x[None], state)
        outs.append(out[:, 0] if layer.batch_first else out[0])
    return outs, state


def fast_steps(layer, xs, state):
    outs = []
    for x in xs:
        out, state = fast_step.step(layer, x, state)
        outs.append(out)
    return outs, state


def assert_same(a, b, dtype):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for u, v in zip(a, b):
            assert_same(u, v, dtype)
        return
    assert a.shape == b.shape and a.dtype == b.dtype
    torch.testing.assert_close(a, b, **TOL[dtype])


def check(layer, B, dtype, steps=4, state=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(B, layer.input_size, generator=g, dtype=dtype) for _ in range(steps)]
    with torch.no_grad():
        want, want_state = forward_steps(layer, xs, state)
        got, got_state = fast_steps(layer, xs, state)
    for w, o in zip(want, got):
        assert_same(o, w, dtype)
    assert_same(got_state, want_state, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("B", [1, 3, 8])           # 8: the BLAS GEMM above the small-batch loop
@pytest.mark.parametrize("cls,kw", LAYERS)
def test_compiled_step_equals_forward(cls, kw, B, dtype):
    torch.manual_seed(0)
    layer = cls(5, 16, 3, dtype=dtype, **kw).eval()
    check(layer, B, dtype)


@pytest.mark.parametrize("cls,kw", LAYERS)
def test_torch_cell_path_equals_forward(cls, kw):
    torch.manual_seed(0)
    layer = cls(6, 12, 2, batch_first=True, dtype=torch.float64, **kw).eval()
    with kernels.disabled():
        check(layer, 2, torch.float64)


@pytest.mark.parametrize("cls,kw", LAYERS)
def test_without_bias_and_from_a_given_state(cls, kw):
    torch.manual_seed(0)
    layer = cls(4, 8, 2, bias=False, **kw).eval()
    h = torch.randn(2, 3, 8)
    state = (h, torch.randn(2, 3, 8)) if cls is rnnkit.LSTM else h
    check(layer, 3, torch.float32, state=state)


def test_state_passed_in_is_not_written():
    torch.manual_seed(0)
    layer = rnnkit.LSTM(4, 8, 2).eval()
    state = (torch.randn(2, 1, 8), torch.randn(2, 1, 8))
    kept = tuple(s.clone() for s in state)
    with torch.no_grad():
        _, new = fast_step.step(layer, torch.randn(1, 4), state)
    assert all(torch.equal(a, b) for a, b in zip(state, kept))
    assert not any(torch.equal(a, b) for a, b in zip(new, kept))


def test_non_contiguous_state_and_input():
    torch.manual_seed(0)
    layer = rnnkit.GRU(4, 8, 2).eval()
    h = torch.randn(3, 2, 8).transpose(0, 1)                 # (L, B, H), not contiguous
    x = torch.randn(4, 3).t()                                # (B, I), not contiguous
    with torch.no_grad():
        want, want_h = layer(x[None], h)
        got, got_h = fast_step.step(layer, x, h)
    assert_same(got, want[0], torch.float32)
    assert_same(got_h, want_h, torch.float32)


@pytest.mark.parametrize("make", [
    lambda: rnnkit.LSTM(4, 8, 2, layer_norm=True),
    lambda: rnnkit.GRU(4, 8, 2, zoneout=0.2),
    lambda: rnnkit.LSTM(4, 8, 2, proj_size=3),
    lambda: rnnkit.Recurrent("peephole-lstm", 4, 8, 2),
    lambda: rnnkit.LSTM(4, 8, 2, learn_init=True),
], ids=["layer_norm", "zoneout", "proj_size", "peephole", "learn_init"])
def test_other_layers_fall_back_to_forward(make):
    torch.manual_seed(0)
    layer = make().eval()
    if layer.options.learn_init:
        with torch.no_grad():
            for p in layer.parameters():
                p.add_(0.1)
    check(layer, 2, torch.float32)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("input_size", [1, 3])
def test_an_unbatched_step_is_torch_nns_whatever_batch_first(batch_first, input_size):
    """x (I,) on a batch_first layer was read as a batch of I one-feature inputs: (1,) out for
    input_size 1 (one unit of h), an error about a shape never given otherwise."""
    torch.manual_seed(0)
    layer = rnnkit.GRU(input_size, 4, 2, batch_first=batch_first).eval()
    oracle = torch.nn.GRU(input_size, 4, 2, batch_first=batch_first).eval()
    oracle.load_state_dict(layer.state_dict())
    x = torch.randn(input_size)
    with torch.no_grad():
        got, h = fast_step.step(layer, x)
        got, h = fast_step.step(layer, x, h)
        want, want_h = oracle(x[None], oracle(x[None])[1])
    assert got.shape == (4,) and h.shape == (2, 4)
    assert_same(got, want[0], torch.float32)
    assert_same(h, want_h, torch.float32)


def test_a_step_autograd_must_record_runs_forward():
    torch.manual_seed(0)
    layer = rnnkit.LSTM(4, 8, 2).eval()
    x = torch.randn(2, 4)
    out, (h, c) = fast_step.step(layer, x, None)
    assert out.grad_fn is not None
    out.sum().backward()
    assert layer.weight_hh_l0.grad is not None


def test_training_mode_runs_forward_with_its_dropout():
    torch.manual_seed(0)
    layer = rnnkit.LSTM(4, 8, 2, dropout=0.5).train()
    x = torch.randn(2, 4)
    with torch.no_grad():
        torch.manual_seed(1)
        want, _ = layer(x[None])
        torch.manual_seed(1)
        got, _ = fast_step.step(layer, x)
    assert_same(got, want[0], torch.float32)


def test_weights_changed_in_place_or_moved_are_seen():
    torch.manual_seed(0)
    layer = rnnkit.LSTM(4, 8, 2).eval()
    x = torch.randn(1, 4)
    with torch.no_grad():
        fast_step.step(layer, x)
        layer.weight_hh_l1.mul_(2)                                  # in place: same address
        check(layer, 1, torch.float32)
        layer.double()                                              # new tensors
        check(layer, 1, torch.float64)


def test_a_square_weight_given_its_own_transpose_is_seen():
    """W_hh.data = W_hh.data.t(): the same address and shape, other strides; the step read the
    old layout (0.82 off forward)."""
    torch.manual_seed(0)
    layer = rnnkit.RNN(6, 6).eval()
    x = torch.randn(2, 6)
    with torch.no_grad():
        fast_step.step(layer, x)
        layer.weight_hh_l0.data = layer.weight_hh_l0.data.t()
        check(layer, 2, torch.float32)


def test_a_steps_output_is_not_its_state():
    """The compiled step's output was a view of the state it returned: out.relu_() changed the
    next step's state (forward's and torch.nn's outputs are tensors of their own)."""
    torch.manual_seed(0)
    layer = rnnkit.GRU(3, 5).eval()
    with torch.no_grad():
        out, state = fast_step.step(layer, torch.randn(2, 3))
        before = state.clone()
        out.fill_(7.0)
        assert torch.equal(state, before)


def test_a_language_models_table_outlives_a_weight_given_new_data():
    """p.data = torch.randn_like(p) keeps p's version counter; new data landing at the freed
    old address passed for the data the input table was made of (0.4 off forward)."""
    from rnnkit.models.language_model import LanguageModel, LMConfig
    torch.manual_seed(0)
    m = LanguageModel(LMConfig(vocab_size=11, cell="gru", layers=2, hidden=16, embed=8,
                               softmax="full")).eval()
    ids = torch.randint(0, 11, (3, 6))

    def stepped():
        with torch.no_grad():
            s, out = m.init_state(3), []
            for t in range(6):
                logits, s = m.step(ids[:, t], s)
                out.append(logits)
            return torch.stack(out, 1)
    for _ in range(20):
        stepped()                                        # the plan and its table
        for p in (m.rnn.weight_ih_l0, m.embed.weight):
            for _ in range(3):
                p.data = torch.randn_like(p)
        with torch.no_grad(), fast_step.disabled():
            want = m(ids)[0]
        torch.testing.assert_close(stepped(), want, rtol=1e-5, atol=1e-5)


def test_bad_state_gets_the_layers_own_error():
    layer = rnnkit.LSTM(4, 8, 2).eval()
    with torch.no_grad(), pytest.raises(ValueError, match="h_0 of shape"):
        fast_step.step(layer, torch.randn(3, 4), (torch.zeros(2, 2, 8), torch.zeros(2, 2, 8)))
    with torch.no_grad(), pytest.raises(ValueError, match=r"x of shape \(batch >= 1, 4\)"):
        fast_step.step(layer, torch.randn(3, 5))


def test_forward_under_inference_mode_with_changing_lengths():
    """The BPTT workspace reuses its buffers under inference_mode too (there a view has no
    _base, and a 2-D buffer came back: 'shape [8, 128] is invalid for input of size 1152')."""
    torch.manual_seed(0)
    layer = rnnkit.LSTM(8, 16, 1, bidirectional=True, batch_first=True).eval()
    with torch.inference_mode():
        for n in (9, 12, 8, 15, 9):
            out, _ = layer(torch.randn(1, n, 8), lengths=torch.tensor([n]))
            assert out.shape == (1, n, 32)


@pytest.mark.parametrize("value, off", [("0", True), ("off", True), ("False", True),
                                        ("1", False), ("", False)])
def test_rnnkit_fast_step_reads_the_usual_spellings(value, off):
    import os
    import subprocess
    import sys
    code = "import rnnkit.layers.fast_step as f; print(bool(f._switch.off))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "RNNKIT_FAST_STEP": value}, timeout=120)
    assert done.stdout.strip() == str(off), done.stderr


def test_a_parametrised_weight_or_a_hook_takes_forward():
    """weight_norm's weight is a new tensor at each read: the compiled step kept the address of
    one already freed (1.0 off once the memory was reused)."""
    from torch.nn.utils.parametrizations import weight_norm
    torch.manual_seed(0)
    m = rnnkit.GRU(4, 16).eval()
    weight_norm(m, "weight_hh_l0")
    x, h = torch.randn(2, 4), torch.randn(1, 2, 16)
    with torch.no_grad():
        first = fast_step.step(m, x, h)[0]
        reuse = [torch.full((48, 16), 100.0) for _ in range(20)]   # noqa: F841 (fills freed memory)
        again = fast_step.step(m, x, h)[0]
        with fast_step.disabled():
            want = fast_step.step(m, x, h)[0]
    torch.testing.assert_close(first, want)
    torch.testing.assert_close(again, want)
    hooked, seen = rnnkit.LSTM(4, 8).eval(), []
    hooked.register_forward_hook(lambda mod, args, out: seen.append(1))
    with torch.no_grad():
        fast_step.step(hooked, x)
    assert seen == [1]                                     # forward ran, so its hook did


def test_beam_search_sees_weights_written_through_data():
    from rnnkit.decode.beam import beam_search
    from rnnkit.models.language_model import LanguageModel, LMConfig
    torch.manual_seed(0)
    m, other = (LanguageModel(LMConfig(vocab_size=40, layers=2, hidden=32)).eval()
                for _ in range(2))
    beam_search(m, [1, 2, 3], beam_size=3, max_len=12)   # caches m's weights in the fast step
    for p, q in zip(m.parameters(), other.parameters()):
        p.data.copy_(q.data)                             # an EMA's copy: no version bump
    with fast_step.disabled():
        want = beam_search(m, [1, 2, 3], beam_size=3, max_len=12)
    assert beam_search(m, [1, 2, 3], beam_size=3, max_len=12) == want


def test_a_step_s_bad_x_is_named_as_given():
    """An empty batch ran on the compiled path (forward refuses it); a wrong size was told as
    the shape of the one-step sequence made of x."""
    m = rnnkit.LSTM(4, 8, 2).eval()
    for x in (torch.randn(0, 4), torch.randn(2, 5)):
        with torch.no_grad(), pytest.raises(ValueError, match=r"a step takes x of shape "
                                            rf"\(batch >= 1, 4\) or \(4,\), got \({x.shape[0]}, "):
            fast_step.step(m, x)
