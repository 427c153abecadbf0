"""A cell step autograd does not record runs step.cpp's compiled step (LSTMCell and GRUCell up
to SMALL_BATCH rows on the CPU), with the numbers of torch's cell op, whatever was done to the
weights since the last step."""
import pytest
import torch

import rnnkit
from rnnkit.layers import fast_step

OPS = {"LSTMCell": torch.lstm_cell, "GRUCell": torch.gru_cell}


def reference(cell, x, hx):
    """torch's own cell op on the cell's weights."""
    w = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    if isinstance(cell, rnnkit.LSTMCell):
        return tuple(torch.lstm_cell(x, hx, *w))
    return torch.gru_cell(x, hx, *w)


def states(name, B, H, dtype):
    if name == "LSTMCell":
        return torch.randn(B, H, dtype=dtype), torch.randn(B, H, dtype=dtype)
    return torch.randn(B, H, dtype=dtype)


@pytest.fixture
def compiled_steps(monkeypatch):
    """How many steps ran compiled (step.cpp), counted."""
    count, real = [0], fast_step.cell_step

    def counted(cell, x, hx):
        out = real(cell, x, hx)
        count[0] += out is not None
        return out
    monkeypatch.setattr(fast_step, "cell_step", counted)
    return count


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("bias", [True, False])
def test_the_compiled_step_is_torchs_cell(name, dtype, tol, bias, compiled_steps):
    if rnnkit.kernels.get(torch.zeros(1, dtype=dtype)) is None:
        pytest.skip("kernels not built")
    torch.manual_seed(0)
    cell = getattr(rnnkit, name)(5, 7, bias=bias, dtype=dtype)
    with torch.no_grad():
        for B in (1, 2, 4):
            x, hx = torch.randn(B, 5, dtype=dtype), states(name, B, 7, dtype)
            kept = [h.clone() for h in (hx if isinstance(hx, tuple) else (hx,))]
            torch.testing.assert_close(cell(x, hx), reference(cell, x, hx), atol=tol, rtol=tol)
            for h, k in zip(hx if isinstance(hx, tuple) else (hx,), kept):
                assert torch.equal(h, k)                       # the state passed in is kept
        assert compiled_steps[0] == 3
        zero = states(name, 2, 7, dtype)
        zero = tuple(z.zero_() for z in zero) if isinstance(zero, tuple) else zero.zero_()
        x = torch.randn(2, 5, dtype=dtype)
        torch.testing.assert_close(cell(x), reference(cell, x, zero), atol=tol, rtol=tol)
        one = cell(x[0], tuple(z[0] for z in zero) if isinstance(zero, tuple) else zero[0])
        torch.testing.assert_close(one, cell(x)[0] if name == "GRUCell" else
                                   tuple(o[0] for o in cell(x)), atol=tol, rtol=tol)


@pytest.mark.parametrize("name", list(OPS))
def test_changed_weights_are_read_at_each_step(name):
    torch.manual_seed(1)
    cell = getattr(rnnkit, name)(4, 4, dtype=torch.float64)
    x, hx = torch.randn(1, 4, dtype=torch.float64), states(name, 1, 4, torch.float64)
    with torch.no_grad():
        cell(x, hx)
        cell.weight_hh.mul_(0.5)                                   # in place: the same address
        torch.testing.assert_close(cell(x, hx), reference(cell, x, hx))
        cell.weight_ih.data = cell.weight_ih.data.flip(0).contiguous()   # a new tensor
        torch.testing.assert_close(cell(x, hx), reference(cell, x, hx))
        cell.weight_hh.data = cell.weight_hh.data.t().contiguous().t() * 2   # column-major
        torch.testing.assert_close(cell(x, hx), reference(cell, x, hx))
        cell.weight_hh.data = cell.weight_hh.data.contiguous()
        torch.testing.assert_close(cell(x, hx), reference(cell, x, hx))
        cell.bias_hh = None                                    # one bias of two: torch's op
        cell.bias_ih = None
        torch.testing.assert_close(cell(x, hx), reference(cell, x, hx))


def test_what_the_compiled_step_does_not_take_runs_torchs_op(compiled_steps):
    torch.manual_seed(2)
    with torch.no_grad():
        rnn = rnnkit.RNNCell(3, 4)                        # one product and a tanh: torch's op
        x, h = torch.randn(2, 3), torch.randn(2, 4)
        torch.testing.assert_close(rnn(x, h), torch.rnn_tanh_cell(
            x, h, rnn.weight_ih, rnn.weight_hh, rnn.bias_ih, rnn.bias_hh))
        gru = rnnkit.GRUCell(3, 4)
        x, h = torch.randn(fast_step.SMALL_BATCH + 1, 3), torch.randn(fast_step.SMALL_BATCH + 1, 4)
        torch.testing.assert_close(gru(x, h), reference(gru, x, h))   # a batch over SMALL_BATCH
        torch.nn.utils.parametrizations.weight_norm(gru, "weight_hh")  # a new tensor each read
        x, h = torch.randn(1, 3), torch.randn(1, 4)
        torch.testing.assert_close(gru(x, h), reference(gru, x, h))
        with fast_step.disabled():
            lstm = rnnkit.LSTMCell(3, 4)
            hx = (torch.randn(1, 4), torch.randn(1, 4))
            torch.testing.assert_close(lstm(x, hx), reference(lstm, x, hx))
    assert compiled_steps[0] == 0


@pytest.mark.filterwarnings("error:Accessing the data pointer of FakeTensor")
def test_fake_tensors_under_no_grad_never_reach_the_kernels():
    """A FakeTensor says "cpu" and holds no data: a cell step under FakeTensorMode and no_grad
    ended in a segmentation fault, and the layers' and the language model's steps read its
    address."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from rnnkit.models.language_model import LanguageModel, LMConfig
    with FakeTensorMode(), torch.no_grad():
        h, c = rnnkit.LSTMCell(3, 4)(torch.randn(2, 3))
        assert h.shape == c.shape == (2, 4)
        out, state = fast_step.step(rnnkit.GRU(3, 4).eval(), torch.randn(2, 3))
        assert out.shape == (2, 4) and state.shape == (1, 2, 4)
        lm = LanguageModel(LMConfig(vocab_size=20, hidden=8, layers=1)).eval()
        assert lm.step(torch.tensor([1, 2]), None)[0].shape == (2, 20)


@pytest.mark.parametrize("name", list(OPS))
def test_a_weight_of_another_shape_is_refused_under_no_grad(name):
    """The compiled step read a weight by the cell's sizes: a weight_hh of 5 columns for a
    hidden size of 13 was read past its end and gave numbers; recorded, the cell refused it."""
    cell = getattr(rnnkit, name)(7, 13)
    G = 4 if name == "LSTMCell" else 3
    cell.weight_hh = torch.nn.Parameter(torch.randn(G * 13, 5))
    x = torch.randn(1, 7)
    with torch.no_grad(), pytest.raises(RuntimeError, match=r"weight_hh must have shape "
                                                            r"\(\d+, 13\) .* got \(\d+, 5\)"):
        cell(x)
    cell = getattr(rnnkit, name)(7, 13)
    cell.bias_hh = torch.nn.Parameter(torch.randn(1))     # broadcast by torch's op (batch 8)
    for B in (2, 8):
        with torch.no_grad(), pytest.raises(RuntimeError, match=r"bias_hh must have shape"):
            cell(torch.randn(B, 7))
    rnn = rnnkit.RNNCell(7, 13)
    rnn.bias_ih = torch.nn.Parameter(torch.randn(1))
    with torch.no_grad(), pytest.raises(RuntimeError, match=r"bias_ih must have shape"):
        rnn(torch.randn(2, 7))
