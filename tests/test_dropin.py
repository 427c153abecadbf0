"""rnnkit's layers dropped in for torch.nn's in user code: unbatched input with batch_first,
proj_size where torch refuses it, a gradient of a gradient (refused, not silently wrong), an
empty batch, autocast, torch.save of a whole module, torch.nn's exception classes and weight
lists, torch.jit.trace and both ONNX exporters."""
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import rnnkit


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("T", [1, 5])
def test_unbatched_input_with_batch_first_has_torch_shapes(name, T):
    torch.manual_seed(0)
    ours = getattr(rnnkit, name)(3, 4, batch_first=True, dtype=torch.float64)
    theirs = getattr(nn, name)(3, 4, batch_first=True, dtype=torch.float64)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(T, 3, dtype=torch.float64)
    (a, ha), (b, hb) = ours(x), theirs(x)
    assert a.shape == b.shape == (T, 4)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(ha, hb)


@pytest.mark.parametrize("name", ["RNN", "GRU"])
def test_proj_size_is_lstms_only(name):
    with pytest.raises(ValueError, match=f"proj_size argument is only supported for LSTM, not "
                                         f"{name}"):
        getattr(rnnkit, name)(3, 4, proj_size=2)


def test_a_gradient_of_a_gradient_is_refused_not_dropped():
    """create_graph=True (a gradient penalty): the gradient would miss its own graph, and the
    penalty's term through the layer would be lost without a word."""
    m = rnnkit.GRU(3, 4)
    out, _ = m(torch.randn(5, 2, 3))
    with pytest.raises(RuntimeError, match="first derivatives only; create_graph=True"):
        torch.autograd.grad(out.sum(), m.weight_hh_l0, create_graph=True)
    out, _ = m(torch.randn(5, 2, 3))
    g, = torch.autograd.grad(out.sum(), m.weight_hh_l0)            # first derivatives: fine
    assert g.shape == m.weight_hh_l0.shape


def test_an_empty_batch_says_so():
    with pytest.raises(ValueError, match="a batch of 0 sequences"):
        rnnkit.LSTM(3, 4)(torch.randn(5, 0, 3))


def test_autocast_runs_the_layer_in_its_own_dtype():
    """Under CPU autocast the kernels would be handed bfloat16 tensors: the layer runs in its
    weights' float32 instead, with the same result as without autocast."""
    torch.manual_seed(0)
    m = rnnkit.LSTM(3, 4, batch_first=True)
    x = torch.randn(2, 5, 3, requires_grad=True)
    want, _ = m(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, (h, c) = m(x)
    assert got.dtype == h.dtype == torch.float32
    torch.testing.assert_close(got, want)
    got.sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float32


@pytest.mark.parametrize("cell", ["RNNCell", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_runs_a_cell_in_its_own_dtype(cell, dtype):
    """The cells too (they failed in their kernels or on a float32 x bfloat16 product)."""
    torch.manual_seed(0)
    m = getattr(rnnkit, cell)(3, 4)
    x = torch.randn(2, 3, requires_grad=True)
    h = torch.randn(2, 4).to(dtype)                    # a state left over from autocast code
    hx = (h, h.clone()) if cell == "LSTMCell" else h
    want = m(x, (h.float(), h.float()) if cell == "LSTMCell" else h.float())
    with torch.autocast("cpu", dtype=dtype):
        got = m(x, hx)
    got, want = (got[0], want[0]) if cell == "LSTMCell" else (got, want)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want)
    got.sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float32


@pytest.mark.parametrize("make", [
    lambda: rnnkit.LSTM(4, 8, 2, bidirectional=True),
    lambda: rnnkit.GRU(4, 8, layer_norm=True, zoneout=0.1),
    lambda: rnnkit.Recurrent("mgu", 4, 8),
    lambda: rnnkit.GRUCell(4, 8)], ids=["lstm", "gru-options", "mgu", "cell"])
def test_a_whole_saved_module_loads_with_weights_only_naming_its_class(make, tmp_path):
    """torch.save(model) then torch.load under safe_globals([the model's classes]), as scripts
    do with torch.nn.LSTM: rnnkit's options and cells are not more names the user must list."""
    model = nn.Sequential(make()).eval()
    torch.save(model, tmp_path / "m.pt")
    with torch.serialization.safe_globals([nn.Sequential, type(model[0])]):
        loaded = torch.load(tmp_path / "m.pt", weights_only=True)
    x = torch.randn(3, 4) if isinstance(model[0], rnnkit.GRUCell) else torch.randn(5, 3, 4)
    first = lambda out: out[0] if isinstance(out, tuple) else out            # noqa: E731
    assert torch.equal(first(loaded(x)), first(model(x)))


@pytest.mark.parametrize("misuse,torch_raises", [
    (lambda L: L(5, 7)(torch.randn(6, 2, 5), torch.zeros(1, 3, 7)), RuntimeError),   # h0 shape
    (lambda L: L(5, 7)(torch.randn(6, 2, 4)), RuntimeError),                        # input size
    (lambda L: L(5, 7)(torch.randn(0, 2, 5)), RuntimeError),                        # no steps
    (lambda L: L(5, 7)(torch.randn(6, 2, 5).double()), ValueError),                 # input dtype
    (lambda L: L(5, 7)(torch.randn(6, 2, 5), torch.zeros(1, 2, 7).double()), RuntimeError),
    (lambda L: L(5, 7, 2.0), TypeError),                                            # num_layers
    (lambda L: L(5, 7)(torch.randn(6, 2, 5, 1)), ValueError)])                      # 4-D input
@pytest.mark.parametrize("layer", ["GRU", "RNN"])
def test_misuse_raises_what_torch_nn_raises(misuse, torch_raises, layer):
    """Code that catches torch.nn's exception class around a layer catches rnnkit's too."""
    with pytest.raises(torch_raises):
        misuse(getattr(nn, layer))
    with pytest.raises(torch_raises):
        misuse(getattr(rnnkit, layer))


def test_all_weights_and_flat_weights_as_in_torch_nn():
    """The forget-gate bias snippet scripts use with torch.nn.LSTM."""
    layers = [nn.LSTM(5, 7, 2, bidirectional=True), rnnkit.LSTM(5, 7, 2, bidirectional=True)]
    for m in layers:
        for names in m._all_weights:
            for name in filter(lambda n: "bias" in n, names):
                b = getattr(m, name)
                b.data[b.size(0) // 4:b.size(0) // 2].fill_(1.0)
    assert layers[0]._all_weights == layers[1]._all_weights
    assert [w.shape for w in layers[0]._flat_weights] == [w.shape for w in layers[1]._flat_weights]
    assert all(torch.equal(getattr(layers[1], n)[7:14], torch.ones(7))
               for n in layers[1]._flat_weights_names if "bias" in n)


def test_dropout_on_one_layer_warns_as_torch_nn_does():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        rnnkit.GRU(3, 4, dropout=0.5)


class _Tagger(nn.Module):
    """A model of a user's own: an rnnkit layer between torch.nn modules."""

    def __init__(self, layer):
        super().__init__()
        self.rnn = layer
        self.out = nn.Linear(layer.hidden_size * layer.num_directions, 3)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.out(y)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("make", [
    lambda: rnnkit.LSTM(4, 8, 2, bidirectional=True, batch_first=True),
    lambda: rnnkit.GRU(4, 8, batch_first=True),
    lambda: rnnkit.RNN(4, 8, 2, nonlinearity="relu", batch_first=True)], ids=["lstm", "gru", "rnn"])
def test_jit_trace_and_both_onnx_exporters_record_a_model_with_an_rnnkit_layer(make, tmp_path):
    """torch.jit.trace and torch.onnx.export (TorchScript-based and dynamo) record torch's own
    recurrent operator on the layer's parameters: the trace follows new sizes and trains, the
    ONNX files run in onnxruntime, and nothing is drawn from the random stream."""
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = _Tagger(make()).eval()
    x, x2 = torch.randn(2, 5, 4), torch.randn(3, 7, 4)
    state = torch.random.get_rng_state()
    traced = torch.jit.trace(model, (x,))
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.testing.assert_close(traced(x2), model(x2))
    traced(x2).sum().backward()
    assert model.rnn.weight_hh_l0.grad is not None and model.rnn.weight_hh_l0.grad.abs().sum() > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), tmp_path / "ts.onnx", dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "batch", 1: "time"}})
        torch.onnx.export(model, (x,), dynamo=True).save(tmp_path / "dynamo.onnx")
    with torch.no_grad():
        want, want2 = model(x).numpy(), model(x2).numpy()
    got = ort.InferenceSession(str(tmp_path / "ts.onnx")).run(None, {"x": x2.numpy()})[0]
    np.testing.assert_allclose(got, want2, rtol=1e-5, atol=1e-5)
    session = ort.InferenceSession(str(tmp_path / "dynamo.onnx"))
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_jit_trace_of_a_layer_with_lengths_and_of_the_cells():
    torch.manual_seed(0)
    layer = rnnkit.GRU(4, 6, bidirectional=True, batch_first=True).eval()
    x, lengths = torch.randn(3, 5, 4), torch.tensor([5, 2, 4])

    class Lengths(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, x, n):
            return self.layer(x, lengths=n)

    traced = torch.jit.trace(Lengths(), (x, lengths))
    other = torch.tensor([3, 5, 1])
    torch.testing.assert_close(traced(x, other), layer(x, lengths=other))
    for cell in (rnnkit.LSTMCell(4, 6), rnnkit.GRUCell(4, 6), rnnkit.RNNCell(4, 6)):
        h = torch.randn(2, 6)
        hx = (h, torch.randn(2, 6)) if isinstance(cell, rnnkit.LSTMCell) else h
        traced = torch.jit.trace(cell, (torch.randn(2, 4), hx))
        x = torch.randn(2, 4)
        torch.testing.assert_close(traced(x, hx), cell(x, hx))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_jit_trace_refuses_a_layer_torch_nn_cannot_express_in_one_line():
    with pytest.raises(RuntimeError, match=r"GRU with layer_norm=True cannot run under "
                                           r"torch.jit.trace or torch.onnx.export .* "
                                           r"torch.export.export"):
        torch.jit.trace(rnnkit.GRU(4, 6, layer_norm=True), (torch.randn(5, 2, 4),))


def test_torch_func_grad_and_per_sample_gradients():
    """torch.func.grad of a functional_call gives torch.nn's gradients, and vmap(grad) gives
    per-sample gradients (the LSTM; torch.nn's own GRU fails under vmap(grad))."""
    torch.manual_seed(0)
    m = rnnkit.LSTM(5, 7, 2, batch_first=True)
    t = nn.LSTM(5, 7, 2, batch_first=True)
    t.load_state_dict(m.state_dict())
    x = torch.randn(3, 6, 5)
    p = {k: v.detach() for k, v in m.named_parameters()}

    def loss(module):
        return lambda p, x: torch.func.functional_call(module, p, (x,))[0].pow(2).sum()

    got, want = torch.func.grad(loss(m))(p, x), torch.func.grad(loss(t))(p, x)
    for k in p:
        torch.testing.assert_close(got[k], want[k])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")    # torch's notice: no batching rule for its operator
        each = torch.func.vmap(torch.func.grad(lambda p, xi: loss(m)(p, xi[None])),
                               in_dims=(None, 0))(p, x)
    for i in range(3):
        m.zero_grad()
        m(x[i:i + 1])[0].pow(2).sum().backward()
        for k, w in m.named_parameters():
            torch.testing.assert_close(each[k][i], w.grad)
    cell = rnnkit.GRUCell(3, 4)
    pc = {k: v.detach() for k, v in cell.named_parameters()}
    xc = torch.randn(2, 3)
    got = torch.func.grad(lambda p: torch.func.functional_call(cell, p, (xc,)).sum())(pc)
    cell(xc).sum().backward()
    torch.testing.assert_close(got["weight_hh"], cell.weight_hh.grad)
    ln = rnnkit.GRU(5, 7, layer_norm=True)
    with pytest.raises(RuntimeError, match="GRU with layer_norm=True cannot run under "
                                           "torch.func's transforms .* torch.autograd.grad"):
        torch.func.grad(lambda p: torch.func.functional_call(ln, p, (x,))[0].sum())(
            dict(ln.named_parameters()))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("make", [lambda: rnnkit.LSTM(5, 7, 2, bidirectional=True),
                                  lambda: rnnkit.GRU(5, 7, zoneout=0.1, recurrent_dropout=0.2)],
                         ids=["lstm", "gru-options"])
def test_half_precision_layers_compute_in_float32_on_the_cpu(make, dtype):
    """A bfloat16 or float16 layer runs the float32 node (step by step in half precision it was
    7-18 times slower): a layer's outputs are the float32 node's on the same (half-precision)
    weights, rounded once (each layer of a stack reads the one below rounded); the gradients
    reach the half-precision weights."""
    torch.manual_seed(0)
    half = make().to(dtype)
    full = make().to(dtype).float()
    full.load_state_dict({k: v.float() for k, v in half.state_dict().items()})
    x = torch.randn(6, 3, 5).to(dtype)
    for m in (half, full):
        m.train()
    torch.manual_seed(1)
    got, _ = half(x.requires_grad_())
    torch.manual_seed(1)
    want, _ = full(x.float())
    assert got.dtype == dtype
    if half.num_layers == 1 and not half.bidirectional:
        assert torch.equal(got, want.to(dtype))
    else:
        torch.testing.assert_close(got, want.to(dtype), rtol=0.02, atol=4e-3)
    got.float().pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.dtype == dtype for p in half.parameters())
    assert x.grad is not None and x.grad.dtype == dtype


@pytest.mark.parametrize("cell", ["RNNCell", "LSTMCell", "GRUCell"])
def test_a_cell_step_autograd_does_not_record_skips_the_training_machinery(cell, monkeypatch):
    """Generation under no_grad runs torch's fused cell op (the node, schedule and workspace
    cost six times the arithmetic at batch 1): the same outputs as the recorded step."""
    from rnnkit.layers import cells
    torch.manual_seed(0)
    m = getattr(rnnkit, cell)(5, 7)
    x = torch.randn(3, 5)
    hx = (torch.randn(3, 7), torch.randn(3, 7)) if cell == "LSTMCell" else torch.randn(3, 7)
    want = m(x, hx)

    def no_node(*a, **k):
        raise AssertionError("the step's node ran for a step autograd does not record")
    monkeypatch.setattr(cells.CellStep, "apply", no_node)
    with torch.no_grad():
        got = m(x, hx)
    torch.testing.assert_close(got, want if cell == "LSTMCell" else want.detach())
    m.requires_grad_(False)
    torch.testing.assert_close(m(x, hx), got)                       # nothing requires a grad


# ---- the edges: shapes without data, odd sizes and dtypes, other autograd modes -------------
def test_fake_and_meta_tensors_give_shapes_as_torch_nn_does():
    """FakeTensorMode (shapes without data: the compiled kernels must not touch them) and the
    meta device (autocast knows no 'meta')."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode():
        out, h = rnnkit.GRU(3, 4)(torch.randn(5, 2, 3))
        assert out.shape == (5, 2, 4) and h.shape == (1, 2, 4)
        h, c = rnnkit.LSTMCell(3, 4)(torch.randn(2, 3))
        assert h.shape == (2, 4)
    out, (h, c) = rnnkit.LSTM(3, 4, device="meta")(torch.randn(5, 2, 3, device="meta"))
    assert out.shape == (5, 2, 4) and out.device.type == "meta"
    assert rnnkit.GRUCell(3, 4, device="meta")(torch.randn(2, 3, device="meta")).shape == (2, 4)


def test_printed_like_torch_nn():
    assert repr(rnnkit.RNNCell(3, 5, nonlinearity="relu")) == \
        repr(torch.nn.RNNCell(3, 5, nonlinearity="relu"))
    assert repr(rnnkit.LSTM(3, 5, 2, bidirectional=True, proj_size=2)) == \
        repr(torch.nn.LSTM(3, 5, 2, bidirectional=True, proj_size=2))


def test_odd_sizes_and_dtypes_are_refused_or_run_as_torch_nn():
    gru = rnnkit.GRU(3, 4)
    gru.weight_hh_l0.data = gru.weight_hh_l0.data.double()
    with pytest.raises(RuntimeError, match="the parameters' dtypes differ .weight_hh_l0 is "
                                           "torch.float64"):
        gru(torch.randn(5, 2, 3))
    cell = rnnkit.GRUCell(3, 4)
    cell.bias_hh.data = cell.bias_hh.data.double()
    with pytest.raises(RuntimeError, match="bias_hh is torch.float64"):
        cell(torch.randn(2, 3))
    ours, theirs = rnnkit.GRUCell(3, 0), torch.nn.GRUCell(3, 0)
    assert ours(torch.randn(2, 3)).shape == theirs(torch.randn(2, 3)).shape == (2, 0)
    for lengths in ([], torch.tensor([], dtype=torch.long)):
        with pytest.raises(RuntimeError, match="GRU: a batch of 0 sequences"):
            rnnkit.GRU(3, 4)(torch.randn(5, 0, 3), lengths=lengths)
    with pytest.raises(RuntimeError, match="GRU: input has zero time steps"):
        rnnkit.GRU(3, 4)(torch.randn(0, 2, 3))


def test_batched_and_forward_mode_derivatives_are_refused_in_one_line():
    lstm = rnnkit.LSTM(2, 3)
    x = torch.randn(4, 1, 2, requires_grad=True)
    out = lstm(x)[0]
    with pytest.raises(RuntimeError, match="backward runs one gradient at a time"):
        torch.autograd.grad(out, x, torch.eye(12).reshape(12, 4, 1, 3), is_grads_batched=True)
    with pytest.raises(NotImplementedError, match="no forward-mode derivative"):
        import torch.autograd.forward_ad as fwAD
        with fwAD.dual_level():
            lstm(fwAD.make_dual(x.detach(), torch.ones_like(x)))
    jac = torch.autograd.functional.jacobian(lambda t: lstm(t)[0], x.detach())   # one at a time
    assert jac.shape == (4, 1, 3, 4, 1, 2)
    gru, oracle = rnnkit.GRU(2, 3).double(), nn.GRU(2, 3).double()   # (torch.nn's float32
    oracle.load_state_dict(gru.state_dict())                   # LSTM has no forward AD on CPU)
    x, v = torch.randn(2, 4, 1, 2, dtype=torch.float64)
    got, want = (torch.func.jvp(lambda t: m(t)[0], (x,), (v,))[1] for m in (gru, oracle))
    torch.testing.assert_close(got, want)      # torch.func runs the layer's own operations
    lstm, oracle = rnnkit.LSTM(2, 3), nn.LSTM(2, 3)         # float32: oneDNN's has no jvp rule
    oracle.load_state_dict(lstm.state_dict())
    x, v = x.float(), v.float()
    with torch.backends.mkldnn.flags(enabled=False), warnings.catch_warnings():
        warnings.simplefilter("ignore")                       # torch's notice about TF32
        got, want = (torch.func.jvp(lambda t: m(t)[0], (x,), (v,))[1] for m in (lstm, oracle))
    torch.testing.assert_close(got, want)
