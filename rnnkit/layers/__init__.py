"""torch.nn-compatible recurrent layers and cells on rnnkit's hand-written BPTT."""
from rnnkit.layers.base import RNNBase
from rnnkit.layers.recurrent import GRU, LAYERS, LSTM, RNN, Recurrent
from rnnkit.layers.cells import GRUCell, LSTMCell, RNNCell

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "Recurrent", "LAYERS", "RNNCell", "LSTMCell",
           "GRUCell"]
