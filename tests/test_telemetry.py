"""Recorded ||dL/dh_t||, ||dL/dc_t|| equal autograd's on the plain-autograd oracle."""
import pytest
import torch

import rnnkit
from rnnkit.bptt.reference import reference_rnn

from helpers import MODES, loss_of


@pytest.mark.parametrize("mode", list(MODES))
def test_recorded_norms_match_autograd_hooks_on_reference(mode):
    cls, _, extra = MODES[mode]
    m = cls(3, 4, num_layers=2, bidirectional=True, **extra).double()
    T, B = 6, 2
    x = torch.randn(T, B, 3, dtype=torch.float64)
    with rnnkit.record_gradients(m) as rec:
        loss_of(*m(x)).backward()

    keep = {}
    out, finals = reference_rnn(m, x, keep=keep)
    for steps in keep.values():
        for state in steps:
            for s in state:
                s.retain_grad()
    loss_of(out, finals if len(finals) > 1 else finals[0]).backward()
    assert set(rec.norms) == set(keep)
    for sfx, steps in keep.items():
        if sfx.endswith("_reverse"):
            steps = steps[::-1]                 # processing order -> time order
        for k, name in enumerate(("h", "c")[: len(steps[0])]):
            want = torch.stack([torch.linalg.vector_norm(s[k].grad) for s in steps])
            torch.testing.assert_close(rec.norms[sfx][name], want)


def test_recorder_off_records_nothing_and_labels_submodules():
    net = torch.nn.Sequential(rnnkit.GRU(3, 4))
    x = torch.randn(5, 2, 3)
    net[0](x)[0].sum().backward()                  # no recorder: nothing to check but no error
    with rnnkit.record_gradients(net) as rec:
        net[0](x)[0].sum().backward()
    assert list(rec.norms) == ["0.l0"] and rec.norms["0.l0"]["h"].shape == (5,)
    with pytest.raises(RuntimeError, match="already active"):
        with rnnkit.record_gradients(), rnnkit.record_gradients():
            pass


def test_norms_are_taken_in_float64_past_float32s_squares():
    """A float32 norm squares each element: below 1e-23 the squares vanish (a gradient of 1e-24
    read as 0, and the lab's decay fit lost the points), from 1.8e19 they overflow (inf where
    the gradient was finite)."""
    from rnnkit.bptt.telemetry import record_gradients
    layer = rnnkit.RNN(2, 3)
    x = torch.randn(4, 2, 2)
    for scale, want in [(1e-30, 1e-30), (1e25, 1e25)]:
        with record_gradients(layer) as rec:
            out, _ = layer(x)
            (out * scale).sum().backward()
        norms = next(iter(rec.norms.values()))["h"]
        assert norms.dtype == torch.float64 and torch.isfinite(norms).all()
        assert (norms > 0).all() and (norms[-1] / want).item() == pytest.approx(6 ** 0.5, rel=1e-6)   # B·H ones


def test_runs_in_the_order_they_ran_and_norms_the_last():
    """runs came in the backward's order, so norms ("the last run") gave the first."""
    layer, x = rnnkit.GRU(3, 4), torch.randn(6, 2, 3)
    with rnnkit.record_gradients(layer) as rec:
        total, h = 0, None
        for a, b in ((0, 1), (1, 3), (3, 6)):
            out, h = layer(x[a:b], h)
            total = total + out.sum()
        total.backward()
    assert [len(r["h"]) for r in rec.runs["l0"]] == [1, 2, 3] and len(rec.norms["l0"]["h"]) == 3
    with rnnkit.record_gradients(layer) as rec:       # a second backward's records come after
        layer(x)[0].sum().backward()
        first = rec.norms["l0"]["h"].clone()
        (100 * layer(x)[0].sum()).backward()
    torch.testing.assert_close(rec.norms["l0"]["h"], 100 * first)


def test_labels_of_layers_outside_the_model_cells_and_layers_added_later():
    x = torch.randn(5, 2, 3)
    a, b = rnnkit.GRU(3, 4), rnnkit.GRU(4, 4)
    with rnnkit.record_gradients() as rec:            # were both "gru.l0": one record lost
        b(a(x)[0])[0].sum().backward()
    assert sorted(rec.runs) == ["gru#2.l0", "gru.l0"]
    with rnnkit.record_gradients() as rec:            # was "nonetype.l0"
        rnnkit.LSTMCell(3, 4)(x[0])[0].sum().backward()
    assert list(rec.runs) == ["lstmcell.l0"]
    net = torch.nn.Module()
    net.first = rnnkit.GRU(3, 4)
    with rnnkit.record_gradients(net) as rec:
        net.extra = rnnkit.RNN(4, 4)                   # was labelled by its class, "rnn.l0"
        net.extra(net.first(x)[0])[0].sum().backward()
    assert sorted(rec.runs) == ["extra.l0", "first.l0"]


def test_an_interrupted_fit_leaves_no_recorder_behind():
    """GradientTelemetry's recorder stayed active after Ctrl-C: every later backward of the
    process was recorded, and the next record_gradients refused to start."""
    from rnnkit.bptt import telemetry
    from rnnkit.diagnostics.callbacks import GradientTelemetry
    from rnnkit.train.settings import TrainConfig
    from rnnkit.train.trainer import Trainer

    class Task:
        model = torch.nn.Sequential(rnnkit.GRU(3, 4))

        def train_batch(self, step):
            if step == 4:
                raise KeyboardInterrupt
            return torch.randn(5, 2, 3)

        def loss(self, batch):
            return self.model[0](batch)[0].pow(2).mean(), 10

        def evaluate(self):
            return {"val_loss": 1.0}
    with pytest.raises(KeyboardInterrupt):
        Trainer(Task(), TrainConfig(max_steps=6, eval_every=100, warmup_steps=0),
                [GradientTelemetry(every=2)]).fit()
    assert telemetry.current() is None
    with rnnkit.record_gradients():
        pass


def test_a_parametrized_layers_copy_is_a_layer_of_its_own_under_compile():
    """torch's parametrize deep-copies a ParametrizedGRU by setting its __dict__: the copy kept
    the original's tag, and a compiled backward's records named the original (none the copy)."""
    import copy

    from torch.nn.utils import parametrize

    from rnnkit.bptt.telemetry import TAG

    class Half(torch.nn.Module):
        def forward(self, w):
            return w * 0.5
    torch._dynamo.reset()
    layer, cell = rnnkit.GRU(3, 4), rnnkit.GRUCell(3, 4)
    parametrize.register_parametrization(layer, "weight_hh_l0", Half())
    parametrize.register_parametrization(cell, "weight_hh", Half())
    twin, cell_twin = copy.deepcopy(layer), copy.deepcopy(cell)
    assert [int(m.__dict__[TAG]) for m in (twin, cell_twin)] == [id(twin), id(cell_twin)]
    x = torch.randn(5, 2, 3)

    def norms(run):
        with rnnkit.record_gradients(twin) as rec:
            run(x)[0].pow(2).sum().backward()
        return {k: [round(float(n), 5) for n in v["h"]] for k, v in rec.norms.items()}
    got = norms(torch.compile(twin, backend="aot_eager", fullgraph=True))
    assert got and got == norms(twin)
    torch.testing.assert_close(twin(x)[0], layer(x)[0], rtol=0, atol=0)


def test_a_layer_subclass_deep_copies_by_its_own_reduce_as_torch_nn_does():
    """The copy through the layers' __deepcopy__ skipped a subclass's __reduce__ (torch.nn.GRU's
    subclasses, and pickle, re-run __init__ with its arguments)."""
    import copy

    class Reduced(rnnkit.GRU):
        def __init__(self, n):
            super().__init__(n, n)
            self.note = "init"

        def __reduce__(self):
            return (type(self), (self.input_size,))
    layer = Reduced(3)
    layer.note = "changed"
    twin = copy.deepcopy(layer)
    assert twin.note == "init" and twin.input_size == 3 and twin is not layer
