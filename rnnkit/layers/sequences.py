"""The per-step values a layer returns with ``return_sequences="all"``
(:class:`rnnkit.layers.base.RNNBase`)."""
from typing import NamedTuple

import torch


class Sequences(NamedTuple):
    """Every layer-direction's per-step values (``return_sequences="all"``), shaped (L·D, T, B, ·)
    ((L·D, B, T, ·) if batch_first; (L·D, N, ·) in packed order for a PackedSequence input).

    h and c are differentiable (a loss on them back-propagates through the BPTT); gates holds the
    gate activations (LSTM i, f, g, o; GRU r, z, n; RNN h) and is detached. h and c are the
    cell's first two states (c None for a cell of one state); a cell of one's own with more
    states has its third and later ones in the final state alone, not here.
    """
    h: torch.Tensor
    c: torch.Tensor
    gates: torch.Tensor


# a program that returns them (torch.export of return_sequences="all") can be saved
torch.utils._pytree._register_namedtuple(Sequences,
                                         serialized_type_name="rnnkit.layers.base.Sequences")
