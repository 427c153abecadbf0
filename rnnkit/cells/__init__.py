"""One recurrent cell per file: equations, fused forward step, hand-derived backward step.

The contract every cell follows is :class:`rnnkit.cells.base.Cell`; ``register`` makes a cell
known by name (:mod:`rnnkit.cells.registry`).
"""
from rnnkit.cells.base import Cell, CellError
from rnnkit.cells.registry import get, names, register
from rnnkit.cells.gru import GRUMath
from rnnkit.cells.gru_ln import LayerNormGRUMath, LayerNormVanillaMath
from rnnkit.cells.gru_reset_before import GRUResetBeforeMath
from rnnkit.cells.lstm import LSTMMath
from rnnkit.cells.lstm_ln import LayerNormLSTMMath
from rnnkit.cells.lstm_proj import ProjectedLSTMMath
from rnnkit.cells.rnn import RNN_RELU, RNN_TANH

# mode name (as torch.nn.RNNBase.mode) -> the cell's step functions
CELLS = {"RNN_TANH": RNN_TANH, "RNN_RELU": RNN_RELU, "LSTM": LSTMMath(), "GRU": GRUMath(),
         "GRU_RESET_BEFORE": GRUResetBeforeMath(), "LSTM_PROJ": ProjectedLSTMMath()}

# the layer-normalised variants (layer_norm=True)
LN_CELLS = {"RNN_TANH": LayerNormVanillaMath("tanh"), "RNN_RELU": LayerNormVanillaMath("relu"),
            "LSTM": LayerNormLSTMMath(), "GRU": LayerNormGRUMath()}


def _safe_to_load():
    """rnnkit's own cells as ``torch.load(weights_only=True)`` may rebuild them: a whole module
    saved with ``torch.save(model)`` then loads under ``torch.serialization.safe_globals`` that
    name the user's classes and rnnkit's layers, as with torch.nn's. (Plain data: rebuilding
    one runs no code; a cell of one's own is added with ``torch.serialization.add_safe_globals``.)"""
    import torch
    from rnnkit.cells import registry
    own = {type(c) for c in (*CELLS.values(), *LN_CELLS.values())}
    own |= {type(registry.get(name)) for name in registry.BUILTIN}
    torch.serialization.add_safe_globals(sorted(own, key=lambda c: c.__qualname__))


_safe_to_load()
