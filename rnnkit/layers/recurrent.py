"""The recurrent layers: a cell choice on top of :class:`rnnkit.layers.base.RNNBase`.

RNN, LSTM and GRU are torch.nn's, drop-in; :class:`Recurrent` makes the layer of any cell.
Every layer also takes rnnkit's options beyond torch.nn as keyword arguments (all off by
default): ``layer_norm, recurrent_dropout, input_dropout, zoneout, weight_dropout, learn_init,
return_sequences`` (see :mod:`rnnkit.layers.options`).
"""
import functools
import math
import numbers
from collections.abc import Mapping

import numpy as np
import torch

from rnnkit.cells import CELLS, registry
from rnnkit.cells.lstm_proj import ProjectedLSTMMath
from rnnkit.cells.validate import as_cell
from rnnkit.config import ConfigError
from rnnkit.layers.base import RNNBase
from rnnkit.layers.errors import ArgumentError
from rnnkit.layers.options import _flag


class RNN(RNNBase):
    r"""Multi-layer Elman RNN, :math:`h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})`
    (or ReLU). Arguments, parameters and shapes as ``torch.nn.RNN``.

    Args:
        input_size (I), hidden_size (H), num_layers=1, nonlinearity='tanh' ('tanh' or 'relu'),
        bias=True, batch_first=False, dropout=0.0 (between layers, training only),
        bidirectional=False, device=None, dtype=None, then rnnkit's options.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None,
                 **options):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype, **options)


class LSTM(RNNBase):
    r"""Multi-layer LSTM (gate order i, f, g, o). Arguments, parameters and shapes as
    ``torch.nn.LSTM``; ``hx`` and the returned state are tuples ``(h, c)``.

    .. math::
        c_t = f_t \odot c_{t-1} + i_t \odot g_t, \quad h_t = o_t \odot \tanh(c_t)

    See :mod:`rnnkit.cells.lstm` for every gate's equation and its derivative; ``proj_size``
    P > 0 adds torch's projection h_t = W_hr (o_t ⊙ tanh c_t) (:mod:`rnnkit.cells.lstm_proj`).

    forget_bias (rnnkit only): initial value of the forget gate's bias (b_ih^f = forget_bias,
    b_hh^f = 0), e.g. 1.0 as Gers et al. (2000) and Jozefowicz et al. (2015) advise.
    """
    mode = "LSTM"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None,
                 forget_bias=None, **options):
        if forget_bias is not None and (isinstance(forget_bias, (bool, np.bool_)) or not
                                        isinstance(forget_bias, numbers.Real) or
                                        not math.isfinite(forget_bias)):
            raise ArgumentError(f"forget_bias must be a finite number (the forget gate's initial "
                                f"bias, e.g. 1.0) or None, got {forget_bias!r}")
        if forget_bias is not None and not bias:
            raise ValueError("forget_bias needs bias=True")
        self.forget_bias = None if forget_bias is None else float(forget_bias)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype, proj_size=proj_size, **options)

    def _make_cell(self):
        return ProjectedLSTMMath(self.proj_size) if self.proj_size else CELLS["LSTM"]

    def reset_parameters(self):
        super().reset_parameters()
        if getattr(self, "forget_bias", None) is not None:
            H = self.hidden_size
            with torch.no_grad():
                for name in self._flat_weights_names:
                    if name.startswith("bias_ih"):
                        getattr(self, name)[H:2 * H] = self.forget_bias
                    elif name.startswith("bias_hh"):
                        getattr(self, name)[H:2 * H] = 0.0


class GRU(RNNBase):
    r"""Multi-layer GRU (gate order r, z, n; the reset gate applied after the recurrent matmul).
    Arguments, parameters and shapes as ``torch.nn.GRU``.

    .. math::
        h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    See :mod:`rnnkit.cells.gru` for every gate's equation and its derivative.

    reset_after (rnnkit only): False gives the original GRU of Cho et al. (2014), with the reset
    gate applied to h_{t-1} before the recurrent matmul (:mod:`rnnkit.cells.gru_reset_before`);
    same parameters and shapes.
    """
    mode = "GRU"

    def __init__(self, *args, reset_after=True, **kwargs):
        self.reset_after = _flag("reset_after", reset_after)   # "no" is refused, not true
        if not self.reset_after and kwargs.get("layer_norm"):
            raise ValueError("layer_norm is implemented for the reset_after=True GRU only")
        super().__init__(*args, **kwargs)

    def _make_cell(self):
        return CELLS["GRU"] if self.reset_after else CELLS["GRU_RESET_BEFORE"]

    def extra_repr(self):
        return super().extra_repr() + ("" if self.reset_after else ", reset_after=False")


class Recurrent(RNNBase):
    r"""The layer of any cell: ``Recurrent(cell, input_size, hidden_size, num_layers=1, ...)``.

    cell: a :class:`rnnkit.Cell` subclass (made without arguments), an instance, or a
    registered name (``"lstm"``, ``"indrnn"``, ...; :func:`rnnkit.cells.register`). The layer
    makes each layer-direction's parameters as the cell declares them (``weight_ih_l0``, ...,
    ``_reverse``), checks the cell against the contract (a user's cell also runs two trial
    steps forward and back, so a malformed cell is named here, not in the time loop), and gives
    what every rnnkit layer gives: stacking, bidirectional, packed and padded lengths (``lengths=``),
    resets (``reset=``), and the options (``recurrent_dropout, input_dropout, zoneout,
    weight_dropout, learn_init, return_sequences``; ``layer_norm`` where the cell has a
    normalised variant). ``hx`` and the returned state are a tensor for a cell of one state, a
    tuple in the cell's ``STATES`` order otherwise.

    Args:
        cell, input_size (I), hidden_size (H), num_layers=1, then by name: bias=True (the
        cell's biases, if it declares any), batch_first=False, dropout=0.0 (between layers,
        training only), bidirectional=False, device=None, dtype=None, rnnkit's options.
    """

    def __init__(self, cell, input_size, hidden_size, num_layers=1, *, bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None,
                 **options):
        if "proj_size" in options:
            raise TypeError("Recurrent: unknown option proj_size (it is torch.nn.LSTM's: "
                            "rnnkit.LSTM(..., proj_size=P); a cell declares its own shapes)")
        self.cell_name = cell if isinstance(cell, str) else None
        self._given = registry.get(cell) if isinstance(cell, str) else as_cell(cell)
        self._users_cell = cell if self._given is cell else None   # an instance, kept as given
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype, **options)

    def _make_cell(self):
        return self._given

    def extra_repr(self):
        return f"{self.cell_name or self._given.name}, " + super().extra_repr()


# torch's cells by their registered names: their drop-in layers (the same maths as
# Recurrent(name), plus torch.nn's class, repr and extras such as forget_bias)
DROP_IN = {"rnn": RNN, "rnn-tanh": RNN, "rnn-relu": functools.partial(RNN, nonlinearity="relu"),
           "lstm": LSTM, "gru": GRU}


class _Layers(Mapping):
    """Registered cell name -> the layer class that builds it, called as
    ``LAYERS[name](input_size, hidden_size, num_layers, batch_first=..., ...)``. Live: a cell
    registered later is in it (so a config's ``choices`` can be this mapping)."""

    def __getitem__(self, name):
        if not registry.is_registered(name):
            raise KeyError(name)
        return DROP_IN.get(name) or functools.partial(Recurrent, name)

    def __contains__(self, name):
        return isinstance(name, str) and registry.is_registered(name)

    def __iter__(self):
        return iter(registry.names())

    def __len__(self):
        return len(registry.names())


LAYERS = _Layers()


def task_states(layer, cell, model, most=None):
    """The layer of ``--cell cell`` in a task model, which reads every state as the layer's
    hidden size wide and carries at most ``most`` of them: a ConfigError naming the cell's
    states where it does not fit (a cell of one's own may declare narrower or more states)."""
    sizes, names = layer.state_sizes, layer.cell.STATES
    if any(s != layer.hidden_size for s in sizes):
        widths = ", ".join(f"{n} {s}" for n, s in zip(names, sizes))
        raise ConfigError(f"--cell {cell}: the {model} reads each state as the hidden size "
                          f"({layer.hidden_size}) wide; the cell's states are {widths} wide")
    if most is not None and len(sizes) > most:
        raise ConfigError(f"--cell {cell}: the {model} carries at most {most} states (h, c); "
                          f"the cell has {len(sizes)} ({', '.join(names)})")
    return layer
