"""A malformed user's cell is refused at construction with one error naming cell, method,
expected and got; so are the layer options a cell cannot take."""
import pytest
import torch

import rnnkit
from rnnkit.cells import CellError
from rnnkit.config import ConfigError


# ---------------------------------------------------------------- malformed cells
class NoBackward(rnnkit.Cell):
    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        torch.addmm(gi, hrec, w_hh_t, out=out[0]).tanh_()

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        return (torch.tanh(gi + state[0] @ w_hh.t() + (0 if b_hh is None else b_hh)),)


class Tanh(NoBackward):
    def prepare_backward(self, cache, states, prev, params):
        return (1 - states[0] ** 2,)

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        torch.mul(dstate[0], pre[0], out=dgi)
        dhrec.addmm_(dgi, w_hh)


class WrongSignature(Tanh):
    def backward_step(self, dstate, pre, w_hh, dgi):
        pass


class WrongWeightShape(Tanh):
    def param_shapes(self, input_size, hidden_size):
        return {**super().param_shapes(input_size, hidden_size), "weight_ih": (hidden_size, 1)}


class MissingParamShape(Tanh):
    PARAMS = ("gain",)

    def param_grads(self, cache, pre, dG, dGh, dS, params):
        return ()


class ParamsWithoutGrads(Tanh):
    PARAMS = ("gain",)

    def param_shapes(self, input_size, hidden_size):
        return {**super().param_shapes(input_size, hidden_size), "gain": (hidden_size,)}


class BackwardShapeError(Tanh):
    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        torch.mul(dstate[0].repeat(1, 2), pre[0], out=dgi)


class BackwardLeavesGap(Tanh):
    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        H = dgi.shape[1] // 2
        torch.mul(dstate[0][:, :H], pre[0][:, :H], out=dgi[:, :H])      # half of δa only
        dhrec.addmm_(dgi, w_hh)


class WrongWeightGrad(Tanh):
    def weight_grad_hh(self, dgh, hrec, cache, pre):
        return (dgh.t() @ hrec).t()[:, :1]


class ForwardDisagrees(Tanh):
    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        return (torch.sigmoid(gi + state[0] @ w_hh.t() + (0 if b_hh is None else b_hh)),)


class ReferenceNotATuple(Tanh):
    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        return torch.tanh(gi + state[0] @ w_hh.t() + (0 if b_hh is None else b_hh))


class PrepareNotPerToken(Tanh):
    def prepare_backward(self, cache, states, prev, params):
        return (1 - states[0][:2] ** 2,)             # the first rows only


class BadStates(Tanh):
    STATES = ("h", "h")


class NeedsArguments(Tanh):
    def __init__(self, alpha):
        self.alpha = alpha


BAD = [
    (NoBackward, r"NoBackward does not define backward_step\(dstate, pre, w_hh, dgi, dgh, "
                 r"dprev, dhrec, params\)"),
    (WrongSignature, r"WrongSignature.backward_step must take the arguments \(dstate, pre, "
                     r"w_hh, dgi, dgh, dprev, dhrec, params\), its signature is "
                     r"backward_step\(dstate, pre, w_hh, dgi\)"),
    (WrongWeightShape, r"WrongWeightShape.param_shapes\(3, 4\): weight_ih must have shape "
                       r"\(4, 3\) \(N_GATES=1 x hidden\), got \(4, 1\)"),
    (MissingParamShape, r"MissingParamShape.param_shapes\(3, 4\) must name weight_ih, "
                        r"weight_hh, gain .*missing gain"),
    (ParamsWithoutGrads, r"ParamsWithoutGrads declares PARAMS \('gain',\) but does not define "
                         r"param_grads"),
    (BackwardShapeError, r"BackwardShapeError.backward_step failed on a trial step .*: "
                         r"RuntimeError"),
    (BackwardLeavesGap, r"BackwardLeavesGap.backward_step must write every element of dgi"),
    (WrongWeightGrad, r"WrongWeightGrad.weight_grad_hh must return the gradient\(s\) of W_hh, "
                      r"shape\(s\) \[\(4, 4\)\].*got \[\(4, 1\)\]"),
    (ForwardDisagrees, r"ForwardDisagrees.forward_step and reference_step disagree on h .* or "
                       r"draws random numbers \(a cell.s own dropout"),
    (ReferenceNotATuple, r"ReferenceNotATuple.reference_step must return a tuple of 1 "
                         r"state\(s\) of shapes \[\(2, 4\)\]"),
    (PrepareNotPerToken, r"PrepareNotPerToken.prepare_backward must return a tuple of "
                         r"per-token tensors \(N=4, ...\).*got \[\(2, 4\)\]"),
    (BadStates, r"BadStates.STATES must be a tuple of distinct state names"),
    (NeedsArguments, r"could not make NeedsArguments\(\) without arguments"),
    (torch.nn.LSTM, r"a cell is a subclass of rnnkit.Cell .* got LSTM"),
]


@pytest.mark.parametrize("cell,message", BAD, ids=lambda c: getattr(c, "__name__", ""))
def test_a_malformed_cell_is_named_at_construction(cell, message):
    with pytest.raises(CellError, match=message):
        rnnkit.Recurrent(cell, 3, 4, num_layers=2, bidirectional=True)


def test_a_good_cell_in_the_same_file_builds_and_trains():
    m = rnnkit.Recurrent(Tanh, 3, 4, num_layers=2)
    out, h = m(torch.randn(5, 2, 3))
    out.sum().backward()
    assert m.weight_hh_l1.grad is not None


def test_options_a_cell_cannot_take_are_refused():
    with pytest.raises(CellError, match=r"layer_norm=True needs the cell's layer-normalised "
                                        r"variant, and IndRNN.layer_norm\(\) gives none"):
        rnnkit.Recurrent("indrnn", 3, 4, layer_norm=True)
    with pytest.raises(TypeError, match="unknown option.* proj_size"):
        rnnkit.Recurrent("lstm", 3, 4, proj_size=2)
    with pytest.raises(ConfigError, match="zoneout takes one probability per state"):
        rnnkit.Recurrent("mgu", 3, 4, zoneout=(0.1, 0.2))
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, c_0\)"):
        rnnkit.Recurrent("peephole-lstm", 3, 4)(torch.randn(5, 2, 3), torch.zeros(1, 2, 4))
