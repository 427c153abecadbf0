"""rnnkit: recurrent neural networks for PyTorch with hand-derived backpropagation through time."""
from rnnkit import kernels
from rnnkit.bptt.telemetry import GradientRecorder, record_gradients
from rnnkit.cells import Cell, CellError
from rnnkit.layers import GRU, GRUCell, LSTM, LSTMCell, RNN, RNNBase, RNNCell, Recurrent
from rnnkit.export import to_torch
# rnnkit's custom operators, registered: torch.export.load of a saved program needs them
from rnnkit.bptt import ops as _ops  # noqa: F401

__version__ = "0.1.0"
__all__ = ["RNN", "LSTM", "GRU", "Recurrent", "Cell", "CellError", "RNNCell", "LSTMCell",
           "GRUCell", "RNNBase", "GradientRecorder", "record_gradients", "kernels", "to_torch"]
