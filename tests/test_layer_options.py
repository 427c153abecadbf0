"""rnnkit's options beyond torch.nn: each inside the hand-written BPTT, checked by gradcheck and
against the plain-autograd oracle fed the very same masks."""
import pytest
import torch

import rnnkit
import rnnkit.layers.base as base
from rnnkit.bptt.reference import reference_direction

D64 = torch.float64
CLASSES = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn_tanh": rnnkit.RNN,
           "rnn_relu": lambda *a, **k: rnnkit.RNN(*a, nonlinearity="relu", **k),
           "gru_reset_before": lambda *a, **k: rnnkit.GRU(*a, reset_after=False, **k),
           "lstm_proj": lambda *a, **k: rnnkit.LSTM(*a, proj_size=2, **k)}
OPTIONS = {
    "layer_norm": {"layer_norm": True},
    "recurrent_dropout": {"recurrent_dropout": 0.3},
    "input_dropout": {"input_dropout": 0.3},
    "zoneout": {"zoneout": 0.3},
    "weight_dropout": {"weight_dropout": 0.3},
    "learn_init": {"learn_init": True},
    "return_all": {"return_sequences": "all"},
    "combo": {"recurrent_dropout": 0.2, "zoneout": 0.2, "input_dropout": 0.1, "learn_init": True},
    "combo_ln": {"layer_norm": True, "recurrent_dropout": 0.2, "zoneout": (0.1, 0.3),
                 "weight_dropout": 0.2, "return_sequences": "all"},
}


def supported(mode, kw):
    if kw.get("layer_norm") and mode in ("gru_reset_before", "lstm_proj"):
        return False
    return mode.startswith("lstm") or not isinstance(kw.get("zoneout"), tuple)   # (p_h, p_c): LSTM


def cases(with_reset=True):
    out = []
    for mode in CLASSES:
        for name, kw in OPTIONS.items():
            if supported(mode, kw):
                out.append((mode, name, False))
        if with_reset:
            out.append((mode, "combo", True))
    return out


def make(mode, kw, layers=2, hidden=4, **extra):
    return CLASSES[mode](3, hidden, num_layers=layers, bidirectional=True, **kw, **extra).double()


def reset_mask(B, T):
    r = torch.zeros(B, T, dtype=torch.bool)
    r[0, 2] = r[1, 4] = True
    return r


@pytest.mark.parametrize("mode,name,with_reset", cases())
def test_each_node_matches_the_oracle_with_the_same_masks(mode, name, with_reset, monkeypatch,
                                                          path):
    captured = []
    real_run = base.run

    def spy(*args, **kw):
        res = real_run(*args, **kw)
        captured.append((args, kw, res))
        return res

    monkeypatch.setattr(base, "run", spy)
    m = make(mode, OPTIONS[name])
    x = torch.randn(6, 2, 3, dtype=D64)
    m(x, reset=reset_mask(2, 6) if with_reset else None)
    assert len(captured) == 4
    for (cell, sched, xs, w_ih, w_hh, b_ih, b_hh, h0), kw, res in captured:
        leaves = [t for t in (xs, w_ih, w_hh, b_ih, b_hh, *h0, *kw["inits"], *kw["params"])
                  if t is not None and t.requires_grad]
        want_out, want_fin = reference_direction(cell, sched, xs, w_ih, w_hh, b_ih, b_hh, h0,
                                                 kw["opts"], kw["inits"], kw["params"])
        got = [res[0], *res[1]]
        want = [want_out, *want_fin]
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b)
        seeds = [torch.randn_like(a) for a in got]
        g1 = torch.autograd.grad(got, leaves, seeds, retain_graph=True, allow_unused=True)
        g2 = torch.autograd.grad(want, leaves, seeds, retain_graph=True, allow_unused=True)
        for a, b in zip(g1, g2):
            torch.testing.assert_close(a, b)


FAST_GRADCHECK = [("lstm", "combo_ln", True), ("lstm", "layer_norm", False), ("gru", "combo", True),
                  ("rnn_tanh", "combo", True), ("lstm", "return_all", False),
                  ("gru", "layer_norm", True), ("rnn_relu", "layer_norm", False),
                  ("gru_reset_before", "combo", True), ("lstm_proj", "combo", True)]


@pytest.mark.parametrize("mode,name,with_reset", FAST_GRADCHECK)
def test_gradcheck_with_options(mode, name, with_reset, path):
    check_layer(mode, name, with_reset, layers=1, hidden=2)


@pytest.mark.slow
@pytest.mark.parametrize("mode,name,with_reset", cases())
def test_gradcheck_with_options_two_layers(mode, name, with_reset):
    check_layer(mode, name, with_reset, layers=2, hidden=4)


def check_layer(mode, name, with_reset, layers, hidden):
    m = make(mode, OPTIONS[name], layers=layers, hidden=max(hidden, 3))
    names = [n for n, _ in m.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in m.parameters()]
    x = torch.randn(5, 2, 3, dtype=D64, requires_grad=True)
    reset = reset_mask(2, 5) if with_reset else None

    def f(x, *ps):
        torch.manual_seed(7)          # the same masks at every evaluation
        res = torch.func.functional_call(m, dict(zip(names, ps)), (x,), {"reset": reset})
        state = res[1] if isinstance(res[1], tuple) else (res[1],)
        extra = () if len(res) == 2 else tuple(t for t in res[2][:2] if t is not None)
        return (res[0], *state, *extra)

    assert torch.autograd.gradcheck(f, (x, *params))


def test_defaults_are_torch_nn_exactly():
    ref = torch.nn.LSTM(3, 4, 2)
    m = rnnkit.LSTM(3, 4, 2, layer_norm=False, recurrent_dropout=0.0, zoneout=0.0)
    assert list(m.state_dict()) == list(ref.state_dict())


def test_zoneout_is_random_in_training_and_its_expectation_in_eval():
    m = rnnkit.GRU(3, 4, zoneout=0.5)
    x = torch.randn(8, 2, 3)
    assert not torch.equal(m(x)[0], m(x)[0])
    m.eval()
    torch.testing.assert_close(m(x)[0], m(x)[0])
    # eval: h_t = p h_{t-1} + (1 - p) h̃_t
    plain = rnnkit.GRU(3, 4)
    plain.load_state_dict(m.state_dict())
    h, outs = torch.zeros(1, 2, 4), []
    for t in range(8):
        h_new = plain(x[t:t + 1], h)[1]
        h = 0.5 * h + 0.5 * h_new
        outs.append(h[0])
    torch.testing.assert_close(m(x)[0], torch.stack(outs))


def test_recurrent_dropout_off_in_eval_and_mask_fixed_over_time():
    m = rnnkit.LSTM(3, 4, recurrent_dropout=0.5).eval()
    ref = rnnkit.LSTM(3, 4)
    ref.load_state_dict(m.state_dict())
    x = torch.randn(6, 2, 3)
    torch.testing.assert_close(m(x)[0], ref(x)[0])


def test_reset_restarts_each_row_where_asked():
    """A stream with a reset at step t equals running from step t alone, from the initial state."""
    m = rnnkit.LSTM(3, 4, num_layers=2)
    x = torch.randn(7, 2, 3)
    reset = torch.zeros(2, 7, dtype=torch.bool)
    reset[1, 3] = True
    out, _ = m(x, reset=reset)
    fresh, _ = m(x[3:, 1:2])
    torch.testing.assert_close(out[3:, 1:2], fresh)
    torch.testing.assert_close(out[:, 0:1], m(x[:, 0:1])[0])     # row 0 never reset
    with pytest.raises(ValueError, match=r"reset must have shape \(2, 7\) \(batch, time\)"):
        m(x, reset=torch.zeros(7, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"reset must have shape \(7,\) \(time: the input is "
                                         r"unbatched\), got \(2, 7\)"):
        m(x[:, 0], reset=reset)


def test_learned_initial_state_gets_gradient_and_is_used():
    m = rnnkit.GRU(3, 4, learn_init=True)
    with torch.no_grad():
        m.init_h_l0.fill_(0.5)
    x = torch.randn(5, 2, 3)
    out, _ = m(x)
    ref = rnnkit.GRU(3, 4)
    ref.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("init")})
    torch.testing.assert_close(out, ref(x, torch.full((1, 2, 4), 0.5))[0])
    out.sum().backward()
    assert m.init_h_l0.grad.abs().sum() > 0


def test_return_sequences_all_shapes_and_consistency():
    m = rnnkit.LSTM(3, 4, num_layers=2, bidirectional=True, return_sequences="all", batch_first=True)
    x = torch.randn(2, 6, 3)
    out, (h, c), seq = m(x)
    assert seq.h.shape == (4, 2, 6, 4) and seq.c.shape == (4, 2, 6, 4) and seq.gates.shape == (4, 2, 6, 16)
    torch.testing.assert_close(seq.h[2], out[..., :4])            # last layer, forward direction
    torch.testing.assert_close(seq.c[2][:, -1], c[2])              # forward direction ends at T-1
    torch.testing.assert_close(seq.c[3][:, 0], c[3])               # reverse direction ends at 0
    assert not seq.gates.requires_grad and ((seq.gates >= -1) & (seq.gates <= 1)).all()


def test_forget_bias_and_layer_norm_parameters():
    m = rnnkit.LSTM(3, 4, forget_bias=1.0, layer_norm=True)
    torch.testing.assert_close(m.bias_ih_l0[4:8], torch.ones(4))
    torch.testing.assert_close(m.bias_hh_l0[4:8], torch.zeros(4))
    names = {n for n, _ in m.named_parameters()}
    assert {"ln_ih_weight_l0", "ln_hh_weight_l0", "ln_c_weight_l0", "ln_c_bias_l0"} <= names
    with pytest.raises(ValueError, match="reset_after=True GRU only"):
        rnnkit.GRU(3, 4, layer_norm=True, reset_after=False)
    with pytest.raises(ValueError, match="zoneout must be a probability"):
        rnnkit.GRU(3, 4, zoneout=1.0)


@pytest.mark.parametrize("packed", [False, True])
def test_gru_reset_before_matches_the_oracle(packed):
    from rnnkit.bptt.reference import reference_rnn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    m = rnnkit.GRU(3, 4, num_layers=2, bidirectional=True, reset_after=False).double()
    lengths = torch.tensor([5, 7, 2]) if packed else torch.full((3,), 7)
    x = torch.randn(7, 3, 3, dtype=D64, requires_grad=True)
    out, h = m(pack_padded_sequence(x, lengths, enforce_sorted=False) if packed else x)
    want, (want_h,) = reference_rnn(m, x, lengths)
    torch.testing.assert_close(pad_packed_sequence(out)[0] if packed else out, want)
    torch.testing.assert_close(h, want_h)
    assert "reset_after=False" in repr(m)


def test_sequences_gates_of_a_vanilla_cell_are_its_new_state_before_zoneout():
    """return_sequences='all' gives an RNN's activation h̃_t as its gates: with layer norm they
    were W_hh h (the norm's cache), with zoneout the zoned state."""
    torch.manual_seed(0)
    x = torch.randn(4, 2, 3)
    m = rnnkit.RNN(3, 5, layer_norm=True, return_sequences="all")
    out, _, seq = m(x)
    torch.testing.assert_close(seq.gates[0], out.detach())
    z = rnnkit.RNN(3, 4, nonlinearity="relu", zoneout=0.5, return_sequences="all").eval()
    out, _, seq = z(x)
    a = x @ z.weight_ih_l0.T + z.bias_ih_l0 + z.bias_hh_l0
    h, raw, zoned = torch.zeros(2, 4), [], []
    for t in range(4):
        new = torch.relu(a[t] + h @ z.weight_hh_l0.T)
        h = 0.5 * h + 0.5 * new                                             # eval: the expectation
        raw.append(new)
        zoned.append(h)
    torch.testing.assert_close(out, torch.stack(zoned))
    torch.testing.assert_close(seq.gates[0], torch.stack(raw).detach())


def test_sequences_of_an_unbatched_input_with_batch_first():
    m = rnnkit.GRU(3, 5, batch_first=True, return_sequences="all")
    out, _, seq = m(torch.randn(4, 3))
    assert out.shape == (4, 5) and seq.h.shape == seq.gates.shape[:-1] + (5,) == (1, 4, 5)


@pytest.mark.parametrize("kw", [{"layer_norm": "no"}, {"learn_init": "false"}, {"layer_norm": 2},
                                {"reset_after": "no"}, {"reset_after": None}])
def test_switches_refuse_what_is_not_true_or_false(kw):
    """A string such as "no" was taken as true (a layer-normalised layer built without a word)."""
    name = next(iter(kw))
    with pytest.raises(ValueError, match=f"{name} must be True or False, got"):
        rnnkit.GRU(3, 4, **kw)
    assert repr(rnnkit.GRU(3, 4, **{name: 1})) == repr(rnnkit.GRU(3, 4, **{name: True}))


def test_numbers_as_torch_nn_takes_them_and_what_is_not_one():
    import numpy as np
    m = rnnkit.LSTM(3, 4, np.int64(2), dropout=np.float32(0.5), recurrent_dropout=np.float32(0.25),
                    forget_bias=np.float32(1))
    assert (m.num_layers, m.dropout, m.options.recurrent_dropout) == (2, 0.5, 0.25)
    assert m.bias_ih_l0[4:8].tolist() == [1.0] * 4
    for bad in ("1", float("nan"), True):
        with pytest.raises(ValueError, match=f"forget_bias must be a finite number.*got {bad!r}"):
            rnnkit.LSTM(3, 4, forget_bias=bad)


def test_a_reset_mask_of_other_values_than_0_and_1_is_refused():
    x, layer = torch.randn(5, 2, 3), rnnkit.GRU(3, 4)
    with pytest.raises(ValueError, match="reset must be a bool mask .* holding 0.5"):
        layer(x, reset=torch.tensor([[0, 0.5, 0, 0, 0]] * 2))
    as_float = layer(x, reset=torch.tensor([[0.0, 1, 0, 0, 0]] * 2))[0]
    torch.testing.assert_close(as_float, layer(x, reset=torch.tensor([[0, 1, 0, 0, 0]] * 2) > 0)[0])


def test_a_state_that_is_not_a_tensor_is_named():
    """(h, None) was an AttributeError from inside the layer; numpy arrays a dtype message that
    read "float32 does not match torch.float32"."""
    import numpy as np
    layer, x = rnnkit.LSTM(3, 4), torch.randn(5, 2, 3)
    with pytest.raises(TypeError, match=r"c_0 must be a Tensor of shape \(1, 2, 4\), got NoneType"):
        layer(x, (torch.zeros(1, 2, 4), None))
    with pytest.raises(TypeError, match="h_0 must be a Tensor of shape .*, got ndarray"):
        layer(x, (np.zeros((1, 2, 4), np.float32),) * 2)


@pytest.mark.parametrize("cls", [rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN])
def test_layer_norm_without_bias_has_none(cls):
    """bias=False with layer_norm=True made random, trained biases that the forward used."""
    torch.manual_seed(0)
    plain = cls(3, 4, bias=False, layer_norm=True, num_layers=2, bidirectional=True).double()
    assert not [n for n, _ in plain.named_parameters() if n.startswith("bias_")]
    biased = cls(3, 4, layer_norm=True, num_layers=2, bidirectional=True).double()
    with torch.no_grad():
        for name, p in biased.named_parameters():
            p.copy_(getattr(plain, name) if hasattr(plain, name) else torch.zeros_like(p))
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    for a, b in zip(plain(x)[0], biased(x)[0]):
        torch.testing.assert_close(a, b)
    torch.autograd.gradcheck(lambda x: plain(x)[0], (x.requires_grad_(),))


@pytest.mark.parametrize("make", [lambda: rnnkit.LSTM(3, 1, layer_norm=True),
                                  lambda: rnnkit.RNN(3, 1, layer_norm=True)])
def test_layer_norm_of_one_unit_is_refused(make):
    """The norm of one unit is its bias: an LSTM's output was 0 at every step, an RNN's one
    constant, whatever the input. A GRU's norms run over its 3 gates' units: taken."""
    with pytest.raises(ValueError, match="layer_norm=True with hidden_size=1: the norm of one "
                                         "unit is its bias"):
        make()
    out, _ = rnnkit.GRU(3, 1, layer_norm=True)(torch.randn(4, 2, 3))
    assert out.shape == (4, 2, 1)
