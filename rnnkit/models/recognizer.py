"""N-to-M recognition with CTC: an image's columns or a spectrogram's frames in, a shorter label
sequence out, with no alignment given (Graves et al. 2006; the CNN + BiRNN + CTC recipe of
Shi et al. 2015, CRNN, for text in images, and of Amodei et al. 2016, Deep Speech 2, for speech).

    x                                  (B, F, T)       image rows or mel bins F, columns or frames T
    u = ConvStack(x)                   (B, C', F', T') 3x3 conv, batch norm, ReLU, max-pool: each
                                                       layer halves F; T shrinks by time_stride
    v_t = flatten(u[:, :, :, t])       (B, T', C'·F')  one vector a frame
    o   = BiRNN(v)                     (B, T', D·H)    rnnkit.LSTM / GRU, L layers
    log p_t(k) = log_softmax(W o_t + b)  (B, T', K+1)  K labels and the blank (class 0)
    loss = CTC(log p, y) = -log Σ_{a: B(a)=y} Π_t p_t(a_t)   torch.nn.functional.ctc_loss

Frames past a sequence's length are zeroed after every conv layer and left out of batch norm's
statistics (which a data-parallel run shares across its processes), so padding in a batch never
changes another sequence's outputs, and the RNN runs with ``lengths=``. Decoding (greedy, prefix
beam search) is in :mod:`rnnkit.decode.ctc`.
Shapes: B batch, F features (height), T frames (width), C' channels, H hidden, D directions,
K labels.
"""
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from rnnkit.config import (MAX_LABELS, MAX_LAYERS, MAX_WIDTH, ConfigError, check, check_size,
                           recurrent_params)
from rnnkit.layers import GRU, LSTM
from rnnkit.layers.errors import InputTypeError
from rnnkit.layers.packing import with_lengths
from rnnkit.layers.recurrent import task_states
from rnnkit.models.batch_norm import MaskedBatchNorm2d

CELLS = {"lstm": LSTM, "gru": GRU}
BLANK = 0
STRIDES = (1, 2, 4, 8, 16, 32)


@dataclass
class RecognizerConfig:
    """The model's shape; stored in checkpoints so ``rnnkit recognize`` rebuilds the model alone."""
    # filled in from the data: K labels + 1 blank, and the input's height (image rows or mel bins)
    num_classes: int = field(default=0, metadata={"range": (0, MAX_LABELS)})
    features: int = field(default=0, metadata={"range": (0, MAX_WIDTH)})
    conv_layers: int = field(default=2, metadata={
        "help": "convolution layers of the front-end (each halves the height; 0: none)",
        "range": (0, 8)})
    channels: int = field(default=32, metadata={
        "help": "channels of the first convolution (doubled by each later one)",
        "range": (1, 1024)})
    time_stride: int = field(default=4, metadata={
        "help": "frames or columns per output frame (a power of 2, at most 2^conv-layers)",
        "choices": STRIDES})
    cell: str = field(default="gru", metadata={"help": "recurrent cell: lstm or gru",
                                                "choices": tuple(CELLS)})
    layers: int = field(default=2, metadata={"help": "stacked bidirectional recurrent layers",
                                              "range": (1, MAX_LAYERS)})
    hidden: int = field(default=128, metadata={"help": "hidden size H per direction",
                                                "range": (1, MAX_WIDTH)})
    dropout: float = field(default=0.2, metadata={
        "help": "dropout on the frame vectors and between recurrent layers (0: off)",
        "range": "[0, 1)"})

    def __post_init__(self):
        check(self)
        if self.time_stride > 2 ** self.conv_layers:
            raise ConfigError(f"RecognizerConfig.time_stride must be at most 2^conv_layers = "
                              f"{2 ** self.conv_layers} (each conv layer pools time by 1 or 2), "
                              f"got {self.time_stride} (--time-stride, --conv-layers)")
        if self.features and self.features < 2 ** self.conv_layers:
            raise ConfigError(f"RecognizerConfig: {self.conv_layers} conv layers halve the height "
                              f"{self.conv_layers} times, so it must be at least "
                              f"{2 ** self.conv_layers}, got {self.features} (--conv-layers)")
        check_size(self, self.conv_params() + recurrent_params(
            self.cell, self.layers, self.frame_size(), self.hidden, 2)
            + 2 * self.hidden * max(self.num_classes, 1), ("channels", "conv_layers", "hidden",
                                                          "layers", "features"))

    def widths(self):
        """Output channels of each conv layer."""
        return [self.channels * 2 ** i for i in range(self.conv_layers)]

    def frame_size(self):
        """The length C'·F' of one frame's vector, the RNN's input."""
        if not self.conv_layers:
            return self.features
        return self.widths()[-1] * (self.features // 2 ** self.conv_layers)

    def conv_params(self):
        ins = [1] + self.widths()[:-1]
        return sum(9 * i * o + 3 * o for i, o in zip(ins, self.widths()))


def check_dtype(x, dtype, what):
    """InputTypeError where ``x`` is not of the model's ``dtype`` (torch's convolution says
    only that input and bias types differ)."""
    if x.dtype != dtype and not torch.is_autocast_enabled(x.device.type) \
            and not torch.compiler.is_compiling():
        raise InputTypeError(f"expected {what} of the model's dtype {dtype}, got {x.dtype} "
                             f"(x.to({dtype}), or model.to({x.dtype}))")


class ConvBlock(nn.Module):
    """3x3 convolution, batch norm (its statistics over the valid columns of the whole batch,
    :mod:`rnnkit.models.batch_norm`), ReLU, then max-pooling by 2 in height and by 1 or 2 in
    time."""

    def __init__(self, c_in, c_out, time_pool):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.norm = MaskedBatchNorm2d(c_out)
        self.pool = nn.MaxPool2d((2, time_pool))
        self.time_pool = time_pool

    def forward(self, x, lengths):
        """x (B, C, F, T), lengths (B,) -> (B, C', F/2, T/p) with frames past each length zero,
        and the new lengths (B,)."""
        x = self.pool(F.relu(self.norm(self.conv(x), lengths)))
        lengths = lengths // self.time_pool
        mask = torch.arange(x.shape[-1], device=x.device) < lengths[:, None]  # (B, T')
        return x * mask[:, None, None, :].to(x.dtype), lengths


class SequenceRecognizer(nn.Module):
    def __init__(self, config):
        super().__init__()
        c = self.config = config
        if c.num_classes < 2 or c.features < 1:
            raise ValueError(f"need num_classes >= 2 (labels and the blank) and features >= 1, "
                             f"got {c.num_classes} and {c.features}")
        pools = [2 if 2 ** i < c.time_stride else 1 for i in range(c.conv_layers)]
        ins = [1] + c.widths()[:-1]
        self.convs = nn.ModuleList(ConvBlock(i, o, p) for i, o, p in zip(ins, c.widths(), pools))
        self.drop = nn.Dropout(c.dropout)
        self.rnn = CELLS[c.cell](c.frame_size(), c.hidden, c.layers, batch_first=True,
                                 bidirectional=True, dropout=c.dropout if c.layers > 1 else 0.0)
        task_states(self.rnn, c.cell, "recogniser")
        self.head = nn.Linear(2 * c.hidden, c.num_classes)

    def frames(self, lengths):
        """Output frames of inputs ``lengths`` (B,) columns or frames long."""
        for conv in self.convs:
            lengths = lengths // conv.time_pool
        return lengths

    def forward(self, x, lengths):
        """x (B, F, T) features, lengths (B,) -> log-probabilities (B, T', K+1) and output
        lengths (B,). Whatever lies past a sequence's length is ignored."""
        if x.dim() != 3 or x.shape[1] != self.config.features:
            raise ValueError(f"expected input (B, {self.config.features}, T), got "
                             f"{tuple(x.shape)}")
        check_dtype(x, self.head.weight.dtype, "input")
        if not torch.compiler.is_compiling() and x.shape[-1] < self.config.time_stride:
            raise ValueError(f"expected input at least {self.config.time_stride} columns wide "
                             f"(the time stride: one output frame), got {x.shape[-1]}")
        mask = torch.arange(x.shape[-1], device=x.device) < lengths[:, None]  # (B, T)
        u = (x * mask[:, None].to(x.dtype))[:, None]                          # (B, 1, F, T)
        for conv in self.convs:
            u, lengths = conv(u, lengths)                                     # (B, C', F', T')
        B, C, Fh, T = u.shape
        v = self.drop(u.permute(0, 3, 1, 2).reshape(B, T, C * Fh))            # (B, T', C'·F')
        o, _ = with_lengths(self.rnn, v, lengths.clamp_min(1))                 # (B, T', D·H)
        return torch.log_softmax(self.head(self.drop(o)), -1), lengths        # (B, T', K+1)

    def loss(self, x, lengths, targets, target_lengths):
        """Mean over the batch of the CTC loss per label (torch's ``reduction="mean"``).
        targets (B, S) label ids 1..K padded, target_lengths (B,)."""
        log_probs, frames = self(x, lengths)                                  # (B, T', K+1)
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, frames, target_lengths,
                          blank=BLANK, reduction="mean")
        if not torch.compiler.is_compiling() and bool(torch.isposinf(loss)):   # no alignment
            from rnnkit.decode.ctc import min_frames
            need = [min_frames(t[:n].tolist()) for t, n in zip(targets, target_lengths)]
            short = [b for b, (f, m) in enumerate(zip(frames.tolist(), need)) if f < m]
            if short:
                b = short[0]
                raise ValueError(f"batch row(s) {short[:5]} too short for their transcripts "
                                 f"under CTC: row {b} has {int(frames[b])} output frames for a "
                                 f"transcript that needs {need[b]} (its labels, and a blank "
                                 f"between repeats); leave such examples out (rnnkit's "
                                 f"training does) or lower the time stride")
        return loss
