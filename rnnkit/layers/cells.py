"""Single-step cells with the contract of ``torch.nn.RNNCell/LSTMCell/GRUCell``.

A step autograd records is one node with its derivative written by hand for the step
(:mod:`rnnkit.bptt.cell_step`; compiling, the layers' node with T = 1, whose custom operators
keep a compiled loop in one graph). A step autograd does not record (under ``no_grad``, or with
nothing that requires a gradient) runs without the training machinery: the layers' compiled
step (:func:`rnnkit.layers.fast_step.cell_step`: LSTMCell and GRUCell on the CPU, up to
``SMALL_BATCH`` rows) or torch's fused cell operator, the same maths.
"""
import math
import warnings

import torch
from torch import nn

from rnnkit.bptt import telemetry
from rnnkit.bptt.cell_step import CellStep
from rnnkit.bptt.function import run
from rnnkit.bptt.schedule import Schedule
from rnnkit.cells import CELLS
from rnnkit.layers import fast_step
from rnnkit.layers.traced import autocasting, recording
from rnnkit.layers.errors import InputError, InputTypeError, NotScriptable
from rnnkit.layers.inputs import check_weights


class _CellBase(NotScriptable, nn.Module):
    mode = None

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        G = CELLS[self.mode].N_GATES
        kw = {"device": device, "dtype": dtype}
        self.weight_ih = nn.Parameter(torch.empty(G * hidden_size, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(G * hidden_size, hidden_size, **kw))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(G * hidden_size, **kw))
            self.bias_hh = nn.Parameter(torch.empty(G * hidden_size, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self._param_shapes = {n: tuple(p.shape) for n, p in self.named_parameters()}
        self.reset_parameters()
        telemetry.register_layer(self)        # a compiled backward's records name it

    def __deepcopy__(self, memo):             # also for a parametrized cell's class
        return telemetry.deep_copy(self, memo)

    def __setstate__(self, state):            # a copy (deepcopy, pickle) is a cell of its own
        super().__setstate__(state)
        telemetry.register_layer(self)

    def reset_parameters(self):
        k = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0   # as torch.nn
        for w in self.parameters():
            nn.init.uniform_(w, -k, k)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")
        return s + (", nonlinearity=relu" if self.mode == "RNN_RELU" else "")   # as torch.nn

    def _step(self, input, hx):
        if not torch.jit.is_tracing():
            return self._checked_step(input, hx)
        with warnings.catch_warnings():    # the checks on the example's sizes, not recorded
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            return self._checked_step(input, hx)

    def _checked_step(self, input, hx):
        name = type(self).__name__
        if not isinstance(input, torch.Tensor):
            raise InputTypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
        if autocasting(input):
            return self._without_autocast(input, hx)
        if input.dim() not in (1, 2):
            raise InputError(f"{name}: expected input of 1 (unbatched) or 2 dimensions, got "
                             f"{input.dim()} (shape {tuple(input.shape)})")
        if input.shape[-1] != self.input_size:
            raise InputError(f"{name}: input.size(-1) must be input_size={self.input_size}, "
                             f"got {input.shape[-1]}")
        if input.dtype != self.weight_ih.dtype:
            raise InputTypeError(f"{name}: input dtype {input.dtype} does not match the "
                                 f"weights' {self.weight_ih.dtype}")
        dtype = self.weight_ih.dtype
        if any(p is not None and p.dtype != dtype for p in self._parameters.values()):
            pname, p = next((n, p) for n, p in self.named_parameters() if p.dtype != dtype)
            raise InputTypeError(f"{name}: the parameters' dtypes differ ({pname} is "
                                 f"{p.dtype}, weight_ih {dtype}); convert the cell with "
                                 f".to(dtype)")
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        B, n = x.shape[0], CELLS[self.mode].N_STATES
        if hx is None:
            hx = [x.new_zeros(B, self.hidden_size) for _ in range(n)]
        else:
            if n > 1 and (not isinstance(hx, (tuple, list)) or len(hx) != n):
                got = (f"a {type(hx).__name__} of {len(hx)}" if isinstance(hx, (tuple, list))
                       else type(hx).__name__)
                raise InputTypeError(f"{name}: hx must be a tuple of {n} states (h, c), got "
                                     f"{got}")
            hx = list(hx) if n > 1 else [hx]
            want = (B, self.hidden_size) if batched else (self.hidden_size,)
            for h in hx:
                if not isinstance(h, torch.Tensor) or tuple(h.shape) != want:
                    got = tuple(h.shape) if isinstance(h, torch.Tensor) else type(h).__name__
                    raise InputError(f"{name}: expected hidden state of shape {want}, got {got}")
                if h.dtype != x.dtype:
                    raise InputTypeError(f"{name}: hidden state dtype {h.dtype} does not match "
                                         f"{x.dtype}")
            hx = [h if batched else h.unsqueeze(0) for h in hx]
        if self.hidden_size == 0:          # as torch.nn: states of no units (no GEMM of size 0)
            finals = tuple(x.new_zeros(B, 0) + 0 * x.sum() for _ in range(n))
        elif (how := recording()) or not self._recorded(x, hx):
            finals = self._unrecorded(x, hx, how)
        else:
            self._check_weights()   # one step's node (gradient telemetry's label: the tag)
            if torch.compiler.is_compiling():   # the layers' node: custom operators dynamo
                _, finals = run(CELLS[self.mode], Schedule.full(1, B), x,   # keeps in one graph
                                self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                                tuple(hx), tag=(self, 0, 0))
            else:
                finals = CellStep.apply(self.mode, (self, 0, 0), x, self.weight_ih,
                                        self.weight_hh, self.bias_ih, self.bias_hh, *hx)
        return finals if batched else tuple(f.squeeze(0) for f in finals)

    def _recorded(self, x, hx):
        """Whether autograd records this step (else it needs no backward of rnnkit's)."""
        return torch.is_grad_enabled() and (
            x.requires_grad or any(h.requires_grad for h in hx)
            or any(p.requires_grad for p in self.parameters()))

    def _unrecorded(self, x, hx, how):
        """A step autograd does not record: step.cpp's compiled step (CPU, float32/64, as the
        layers' :func:`rnnkit.layers.fast_step.step`) where it can run, else torch's cell
        operator (:meth:`_traced`; also what tracing, export and ``torch.compile`` record:
        ``how``, :func:`recording`'s answer)."""
        if not (how or torch.compiler.is_compiling()):
            finals = fast_step.cell_step(self, x, hx)   # (its weights checked as it reads them)
            if finals is not None:
                return finals
        self._check_weights()   # torch's op broadcasts a bias of (1,): said as recorded
        return self._traced(x, hx)

    def _check_weights(self):
        check_weights(self, ((n, getattr(self, n)) for n in fast_step.CELL_WEIGHTS))

    def _traced(self, x, hx):
        """The step as ``torch.jit.trace`` and ``torch.onnx.export`` record it, as
        ``torch.func`` transforms it, and where autograd records nothing (generation under
        no_grad): torch's own cell operator on these weights. rnnkit's autograd node is neither
        traceable nor transformable, and without a backward to run its training machinery (the
        schedule, the node, the workspace) cost about 150 µs a step at batch 1, six times the
        arithmetic (``rnnkit.layers.fast_step`` does the same for the layers)."""
        from rnnkit.layers.fast_step import TORCH_CELLS
        step = TORCH_CELLS[self.mode]
        w = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return tuple(step(x, tuple(hx), *w)) if self.mode == "LSTM" else (step(x, hx[0], *w),)

    def _without_autocast(self, input, hx):
        """Under ``torch.autocast`` a cell runs in its weights' dtype, as the layers do: the
        input and state are cast to it, and so is the output."""
        dtype = self.weight_ih.dtype
        cast = lambda t: t.to(dtype) if isinstance(t, torch.Tensor) and t.is_floating_point() \
            else t                                                            # noqa: E731
        with torch.autocast(input.device.type, enabled=False):
            hx = type(hx)(map(cast, hx)) if isinstance(hx, (tuple, list)) else cast(hx)
            return self._step(cast(input), hx)


class RNNCell(_CellBase):
    r""":math:`h' = \tanh(W_{ih} x + b_{ih} + W_{hh} h + b_{hh})` (or ReLU), as ``torch.nn.RNNCell``."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input, hx=None):
        return self._step(input, hx)[0]


class LSTMCell(_CellBase):
    """One LSTM step, as ``torch.nn.LSTMCell``: returns ``(h', c')``."""
    mode = "LSTM"

    def forward(self, input, hx=None):
        return self._step(input, hx)


class GRUCell(_CellBase):
    """One GRU step, as ``torch.nn.GRUCell``: returns ``h'``."""
    mode = "GRU"

    def forward(self, input, hx=None):
        return self._step(input, hx)[0]
