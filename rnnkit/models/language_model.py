"""A recurrent language model (char-rnn, Karpathy 2015; Graves 2013): embed, RNN stack, softmax.

    e_t = E[x_t]                          (B, T, C)   token embedding
    h_t = RNN(e_t, h_{t-1})               (B, T, H)   rnnkit.LSTM / GRU / RNN, L layers
    p(x_{t+1} | x_{≤t}) = softmax(W h_t + b)   (B, T, V)

Shapes: B batch, T time, C embedding, H hidden, L layers, V vocabulary.
The generative interface shared with every decoder in :mod:`rnnkit.decode` is
``init_state(batch)`` and ``step(x_t, state) -> (logits, state)``.
"""
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from rnnkit.layers import GRU, LSTM, RNN

CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


@dataclass
class LMConfig:
    """The model's shape; stored in checkpoints so sampling can rebuild the model alone."""
    vocab_size: int = 0     # V; 0 until a vocabulary fills it in
    cell: str = field(default="lstm", metadata={"help": "recurrent cell: lstm, gru or rnn"})
    layers: int = field(default=2, metadata={"help": "stacked recurrent layers"})
    hidden: int = field(default=256, metadata={"help": "hidden size H of each layer"})
    embed: int = field(default=64, metadata={"help": "token embedding size"})
    dropout: float = field(default=0.0, metadata={
        "help": "dropout on the embedding, between layers and before the softmax (0: off)"})

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        for name in ("layers", "hidden", "embed"):
            if getattr(self, name) < 1:
                raise ValueError(f"LMConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"LMConfig.dropout must be in [0, 1), got {self.dropout}")


class LanguageModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        if config.vocab_size < 1:
            raise ValueError(f"LMConfig.vocab_size must be >= 1, got {config.vocab_size}")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed)
        self.rnn = CELLS[config.cell](config.embed, config.hidden, config.layers,
                                      dropout=config.dropout if config.layers > 1 else 0.0,
                                      batch_first=True)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.vocab_size)

    def init_state(self, batch):
        """Zero state for ``batch`` sequences: (L, B, H), or a tuple (h, c) for the LSTM."""
        w = self.head.weight
        h = w.new_zeros(self.config.layers, batch, self.config.hidden)       # (L, B, H)
        return (h, torch.zeros_like(h)) if self.config.cell == "lstm" else h

    def forward(self, x, state=None):
        """x (B, T) token ids -> logits (B, T, V) and the final state."""
        e = self.drop(self.embed(x))                                         # (B, T, C)
        h, state = self.rnn(e, state)                                        # (B, T, H)
        return self.head(self.drop(h)), state                                # (B, T, V)

    def step(self, x_t, state):
        """One token per sequence: x_t (B,) -> logits (B, V) and the next state."""
        logits, state = self(x_t[:, None], state)                           # (B, 1, V)
        return logits[:, 0], state

    def loss(self, x, y, state=None):
        """Mean cross-entropy in nats per token of predicting y (B, T) from x (B, T)."""
        logits, state = self(x, state)                                       # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1), y.flatten()), state


def detach_state(state):
    """Cut the graph at a batch boundary (truncated BPTT) while keeping the values."""
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return None if state is None else state.detach()
