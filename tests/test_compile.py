"""torch.compile and torch.export of rnnkit's layers through the BPTT custom operators
(rnnkit/bptt/ops.py): results and gradients equal eager mode, rnnkit's own errors for bad input.

The compiled tests use the aot_eager backend (dynamo, AOTAutograd and the operators' fake
implementations, everything but inductor's code generation: seconds instead of a minute on two
cores); one slow test runs inductor itself."""
import pytest
import torch

import rnnkit

CASES = [
    pytest.param(lambda: rnnkit.LSTM(5, 6, 2), id="lstm"),
    pytest.param(lambda: rnnkit.GRU(5, 6, 1, bidirectional=True), id="gru-bi"),
    pytest.param(lambda: rnnkit.RNN(5, 6, 1, nonlinearity="relu", batch_first=True),
                 id="rnn-relu"),
    pytest.param(lambda: rnnkit.LSTM(5, 6, 1, layer_norm=True), id="lstm-ln"),
    pytest.param(lambda: rnnkit.GRU(5, 6, 1, zoneout=0.2).eval(), id="gru-zoneout-eval"),
    pytest.param(lambda: rnnkit.LSTM(5, 6, 1, proj_size=3), id="lstm-proj",
                 marks=pytest.mark.slow),
    pytest.param(lambda: rnnkit.Recurrent("mgu", 5, 6, 1), id="mgu", marks=pytest.mark.slow),
]


def _fwd_bwd(layer, x, h0):
    out, state = layer(x, h0)
    state = state if isinstance(state, tuple) else (state,)
    loss = (out ** 2).sum() + sum((s * s).sum() for s in state)
    grads = torch.autograd.grad(loss, [x, *layer.parameters()])
    return [out, *state, *grads]


@pytest.mark.parametrize("make", CASES)
def test_compiled_forward_backward_equals_eager(make):
    torch._dynamo.reset()
    layer = make().double()
    x = torch.randn(4, 3, 5, dtype=torch.double, requires_grad=True)
    h0 = None
    want = _fwd_bwd(layer, x, h0)
    got = _fwd_bwd(torch.compile(layer, backend="aot_eager", fullgraph=True), x, h0)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)


def test_compiled_training_with_recurrent_dropout_matches_eager_on_the_same_masks():
    torch._dynamo.reset()
    layer = rnnkit.LSTM(5, 6, 1, recurrent_dropout=0.3)
    x = torch.randn(4, 2, 5, requires_grad=True)
    torch.manual_seed(1)
    want = _fwd_bwd(layer, x, None)
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    torch.manual_seed(1)
    got = _fwd_bwd(compiled, x, None)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_compiled_layer_gives_rnnkit_errors_for_a_changed_input():
    torch._dynamo.reset()
    layer = torch.compile(rnnkit.GRU(5, 6, 1), backend="aot_eager")
    layer(torch.randn(3, 2, 5))
    with pytest.raises(ValueError, match=r"input.size\(-1\) must be input_size=5, got 7"):
        layer(torch.randn(3, 2, 7))
    with pytest.raises(TypeError, match="input dtype must match the weights' torch.float32, "
                                        "got torch.float64"):
        layer(torch.randn(3, 2, 5, dtype=torch.double))


def test_compiled_model_trains_like_eager():
    """A language model's training step (embedding, LSTM, loss, optimiser) compiled."""
    from rnnkit.models.language_model import LanguageModel, LMConfig
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = LanguageModel(LMConfig(vocab_size=7, cell="lstm", layers=2, hidden=6, embed=4))
    x, y = torch.randint(0, 7, (2, 5)), torch.randint(0, 7, (2, 5))
    loss = model.loss(x, y)[0]
    grads = torch.autograd.grad(loss, list(model.parameters()))
    compiled = torch.compile(model.loss, backend="aot_eager", fullgraph=True)
    loss2 = compiled(x, y)[0]
    grads2 = torch.autograd.grad(loss2, list(model.parameters()))
    torch.testing.assert_close(loss2, loss)
    for a, b in zip(grads2, grads):
        torch.testing.assert_close(a, b)


def test_export_keeps_the_sequence_length_dynamic():
    layer = rnnkit.LSTM(5, 6, 2, bidirectional=True).eval()
    T = torch.export.Dim("T", min=1, max=1000)
    B = torch.export.Dim("B", min=1, max=1000)
    ep = torch.export.export(layer, (torch.randn(4, 3, 5),), dynamic_shapes=({0: T, 1: B},))
    assert "rnnkit.bptt_forward" in str(ep.graph)
    for shape in ((2, 1, 5), (9, 4, 5)):
        x = torch.randn(shape)
        got, want = ep.module()(x), layer(x)
        torch.testing.assert_close(got[0], want[0])
        torch.testing.assert_close(got[1][1], want[1][1])


def test_cell_keys_rebuild_rnnkit_cells():
    """A saved program names its cells by class and attributes: a fresh process rebuilds them."""
    from rnnkit.bptt import ops
    from rnnkit.cells import CELLS
    for cell in CELLS.values():
        key = ops.cell_key(cell)
        saved = ops._CELLS.pop(key)
        try:
            again = ops.lookup(key)
            assert type(again) is type(cell) and vars(again) == vars(cell)
        finally:
            ops._CELLS[key] = saved


def test_a_saved_programs_cell_key_never_imports_a_module(tmp_path, monkeypatch):
    """A key names a module: outside rnnkit, lookup takes it only from the modules already
    imported (a program file must not choose code to run), and says what to import."""
    import sys
    from rnnkit.bptt import ops
    from rnnkit.cells.base import CellError
    (tmp_path / "planted_cell_mod.py").write_text("import sys\nsys.stderr.write('RAN')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(CellError, match="import planted_cell_mod .the module that defines it."):
        ops.lookup('planted_cell_mod:MyCell:{}')
    assert "planted_cell_mod" not in sys.modules
    with pytest.raises(CellError, match="this program runs the cell this.Zen"):
        ops.lookup('this:Zen:{}')                       # not imported: not run
    with pytest.raises(CellError, match="does not define as an rnnkit Cell class"):
        ops.lookup('os:path:{}')                        # imported, but not a cell
    with pytest.raises(CellError, match="attributes that are not JSON values"):
        ops.lookup('mymod:TableCell@7f339dafdc90')


def test_two_cell_classes_of_one_name_each_run_their_own_steps():
    """A factory's classes (or a notebook's redefined one) share module and name: each must run
    its own steps when compiled, where the second ran the first one's."""
    def make(act, dact):
        class Act(rnnkit.Cell):
            def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
                out[0].copy_(act(torch.addmm(gi, hrec, w_hh_t)))

            def prepare_backward(self, cache, states, prev, params):
                return (dact(states[0]),)

            def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
                torch.mul(dstate[0], pre[0], out=dgi)
                dhrec.addmm_(dgi, w_hh)

            def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
                h = state[0] if hrec is None else hrec
                return (act(gi + h @ w_hh.t() + (0 if b_hh is None else b_hh)),)
        return Act
    x = torch.randn(5, 2, 3)
    for cell in (make(torch.tanh, lambda h: 1 - h * h), make(torch.sigmoid, lambda h: h * (1 - h))):
        layer = rnnkit.Recurrent(cell, 3, 4).eval()
        torch._dynamo.reset()
        torch.testing.assert_close(torch.compile(layer, backend="aot_eager")(x)[0], layer(x)[0])


@pytest.mark.slow
def test_inductor_compiles_lstm_forward_backward():
    torch._dynamo.reset()
    layer = rnnkit.LSTM(5, 6, 2)
    x = torch.randn(4, 3, 5, requires_grad=True)
    want = _fwd_bwd(layer, x, None)
    got = _fwd_bwd(torch.compile(layer, fullgraph=True), x, None)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_compiled_variable_lengths_equal_eager():
    """lengths= packs (its batch sizes are data: a graph break, not an error); the operators
    then run the packed schedule."""
    torch._dynamo.reset()
    layer = rnnkit.GRU(5, 6, 1, bidirectional=True, batch_first=True).double()
    x = torch.randn(3, 6, 5, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([6, 2, 4])

    def fwd_bwd(f):
        out, h = f(x, lengths=lengths)
        return [out, h, *torch.autograd.grad((out ** 2).sum() + (h ** 2).sum(),
                                             [x, *layer.parameters()])]
    want = fwd_bwd(layer)
    got = fwd_bwd(torch.compile(layer, backend="aot_eager"))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_compiled_layer_takes_new_lengths_and_batch_sizes():
    """After a second shape dynamo traces T and B as symbols: the operators take them."""
    torch._dynamo.reset()
    layer = rnnkit.LSTM(4, 5, 1, bidirectional=True)
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    for T, B in ((3, 2), (5, 2), (7, 3)):
        x = torch.randn(T, B, 4)
        torch.testing.assert_close(compiled(x)[0], layer(x)[0])


def test_input_dropout_compiles_whole_and_exports_with_dynamic_sizes():
    """The input-dropout mask's rows follow from T and B without a list of indices."""
    from torch.export import Dim
    torch._dynamo.reset()
    layer = rnnkit.LSTM(5, 6, input_dropout=0.3)                         # training mode
    x = torch.randn(4, 3, 5)
    torch.manual_seed(1)
    want = layer(x)[0]
    torch.manual_seed(1)
    got = torch.compile(layer, backend="aot_eager", fullgraph=True)(x)[0]
    torch.testing.assert_close(got, want)
    torch.export.export(layer, (x,), dynamic_shapes=({0: Dim("T", min=2, max=100),
                                                      1: Dim("B", min=2, max=100)},))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_compiled_equals_eager(dtype):
    """Compiled, a half-precision layer runs the float32 node and rounds, as eager does."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    gru = rnnkit.GRU(8, 12).to(dtype)
    x = torch.randn(20, 3, 8).to(dtype)
    torch.testing.assert_close(torch.compile(gru, backend="aot_eager", fullgraph=True)(x)[0],
                               gru(x)[0], rtol=0, atol=0)


def test_compiled_backward_is_recorded_under_each_layers_name_and_outside_autocast():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = torch.nn.Sequential()
    model.rnn = rnnkit.LSTM(5, 6, 2, bidirectional=True)
    x = torch.randn(7, 3, 5)

    def norms_and_grads(f, autocast):
        with rnnkit.record_gradients(model) as rec:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = f(x)[0].float().pow(2).sum()
                grads = torch.autograd.grad(loss, list(model.rnn.parameters()))
        return {k: v["h"] for k, v in rec.norms.items()}, grads

    want, plain = norms_and_grads(model.rnn, False)
    assert sorted(want) == ["rnn.l0", "rnn.l0_reverse", "rnn.l1", "rnn.l1_reverse"]
    compiled = torch.compile(model.rnn, backend="aot_eager")
    got, _ = norms_and_grads(compiled, False)
    assert sorted(got) == sorted(want)
    for k in want:
        torch.testing.assert_close(got[k], want[k])
    for f in (model.rnn, compiled):                # backward called inside an autocast block
        _, grads = norms_and_grads(f, True)
        for a, b in zip(grads, plain):
            torch.testing.assert_close(a, b)


def test_a_new_layer_like_one_compiled_before_compiles_nothing_again():
    """Each layer's id was a constant of its graph: dynamo guarded on it, every new layer (a
    model built again per fold or trial) compiled again, and the 9th failed under fullgraph.
    The compiled backward still records each under its own name."""
    x = torch.randn(6, 2, 3)
    for make, keys in ((lambda: rnnkit.GRU(3, 4, bidirectional=True), ["l0", "l0_reverse"]),
                       (lambda: rnnkit.GRU(3, 4, layer_norm=True), ["l0"]),   # a cell of its
                       (lambda: rnnkit.LSTM(3, 4, proj_size=2), ["l0"])):     # own: its key
        torch._dynamo.reset()
        with torch._dynamo.config.patch(error_on_recompile=True):
            for i in range(10):
                model = torch.nn.Sequential()
                model.rnn = make()
                compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
                assert recorded(model, compiled, x) == recorded(model, model, x)
                assert sorted(recorded(model, compiled, x)) == [f"rnn.{k}" for k in keys]


def test_copies_of_a_layer_compile_once_and_layers_keep_cells_of_their_own():
    """A deepcopied or unpickled layer is another object whose cell is too: guarded by identity,
    each copy compiled again (the 9th failing under fullgraph). Layers of one cell class keep a
    cell each (a cell keeping something on itself is no other layer's business)."""
    import copy
    import pickle
    from rnnkit.cells.peephole_lstm import PeepholeLSTM
    torch._dynamo.reset()
    x = torch.randn(6, 2, 3)
    first = rnnkit.GRU(3, 4, layer_norm=True)
    copies = [copy.deepcopy(first) for _ in range(5)] + [pickle.loads(pickle.dumps(first))
                                                         for _ in range(5)]
    with torch._dynamo.config.patch(error_on_recompile=True):
        for layer in [first] + copies:
            compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
            torch.testing.assert_close(compiled(x)[0], layer(x)[0], rtol=0, atol=0)
    assert rnnkit.Recurrent(PeepholeLSTM, 3, 4).cell is not rnnkit.Recurrent(PeepholeLSTM, 4, 4).cell


def recorded(model, run, x):
    """{key: the h norms} that record_gradients(model) gives for a backward through ``run``."""
    with rnnkit.record_gradients(model) as rec:
        run(x)[0].float().pow(2).sum().backward()
    return {k: [round(float(n), 4) for n in v["h"]] for k, v in rec.norms.items()}


def test_a_call_made_before_the_layers_tag_tensor_still_has_its_backward():
    """A program saved before the operator took ``who`` passes one argument fewer: its backward
    returned one gradient too many ("the same structure as the inputs")."""
    from rnnkit.bptt.cell_keys import cell_key
    from rnnkit.cells import CELLS
    x = torch.randn(10, 3, requires_grad=True)
    w_ih, w_hh = torch.randn(12, 3, requires_grad=True), torch.randn(12, 4, requires_grad=True)
    res = torch.ops.rnnkit.bptt_forward(x, w_ih, w_hh, None, None, [torch.zeros(2, 4)], [], [],
                                        None, [], 0, None, cell_key(CELLS["GRU"]), 2, "", False,
                                        False, [-1, 0, 0])
    res[0].sum().backward()
    assert x.grad.shape == x.shape and w_hh.grad.abs().sum() > 0


def test_a_layer_made_on_the_meta_device_compiles_to_eagers_numbers():
    """Its tag tensor was made on the default device, meta: the operator then ran its shapes
    alone and gave uninitialised memory."""
    torch._dynamo.reset()
    with torch.device("meta"):
        layer = rnnkit.GRU(3, 4)
    layer.to_empty(device="cpu")
    layer.reset_parameters()
    x = torch.randn(5, 2, 3)
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x)[0], layer(x)[0], rtol=0, atol=0)


def test_compiled_records_name_layers_of_tied_weights_and_half_precision():
    """Found by their weights, layers that share one were filed under one name, and the float32
    copies of a bfloat16 layer's weights matched no layer."""
    torch._dynamo.reset()

    class Two(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = rnnkit.GRU(4, 4), rnnkit.GRU(4, 4)
            self.b.weight_hh_l0 = self.a.weight_hh_l0

        def forward(self, x):
            return self.b(self.a(x)[0])
    x = torch.randn(5, 2, 4)
    for model, inputs in ((Two(), x), (Two().to(torch.bfloat16), x.to(torch.bfloat16))):
        compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
        got = recorded(model, compiled, inputs)
        assert sorted(got) == ["a.l0", "b.l0"] and got == recorded(model, model, inputs)


def test_a_saved_program_loads_in_a_fresh_process_after_import_rnnkit(tmp_path):
    import subprocess
    import sys
    layer = rnnkit.GRU(5, 6)
    x = torch.randn(4, 3, 5)
    torch.export.save(torch.export.export(layer, (x,)), tmp_path / "gru.pt2")
    torch.save({"x": x, "want": layer(x)[0].detach()}, tmp_path / "io.pt")
    code = ("import torch, rnnkit; p = torch.export.load('gru.pt2'); io = torch.load('io.pt'); "
            "assert torch.allclose(p.module()(io['x'])[0], io['want']); print('ok')")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_a_program_returning_every_steps_states_saves_and_loads(tmp_path):
    """torch.export.save refused the Sequences namedtuple of return_sequences='all'."""
    m = rnnkit.LSTM(3, 4, 2, batch_first=True, return_sequences="all").eval()
    x = torch.randn(2, 5, 3)
    torch.export.save(torch.export.export(m, (x,)), tmp_path / "all.pt2")
    got = rnnkit.export.load(tmp_path / "all.pt2").module()(x)
    torch.testing.assert_close(got[2].h, m(x)[2].h)


def test_the_cell_key_is_marked_constant_as_torchs_decorator_marks_it():
    """cell_key sets the attribute torch.compiler.assume_constant_result sets, without the
    import of torch._dynamo the decorator makes (a second of every command's start)."""
    import subprocess
    import sys

    from rnnkit.bptt.ops import cell_key

    def plain():
        return 0
    marked = torch.compiler.assume_constant_result(plain)
    assert vars(marked) == {"_dynamo_marked_constant": True}
    assert cell_key._dynamo_marked_constant is True
    code = "import sys, rnnkit, rnnkit.cli.main; print('torch._dynamo' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "False", done.stderr


def test_lengths_under_fullgraph_compile_say_why_in_one_message():
    """torch.compile(layer, fullgraph=True)(x, lengths=...) raised torch's
    GuardOnDataDependentSymNode from inside the lengths check."""
    layer = torch.compile(rnnkit.GRU(5, 6, batch_first=True), fullgraph=True)
    with pytest.raises(Exception, match=r"GRU: lengths= packs the batch by the lengths' values, "
                                        r"a graph break; compile without fullgraph=True"):
        layer(torch.randn(3, 4, 5), lengths=torch.tensor([4, 2, 1]))
