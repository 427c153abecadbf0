"""Text from one image (1→N): a small CNN encodes the whole image into one vector, which
conditions rnnkit's :class:`~rnnkit.models.conditional.ConditionalGenerator` (its initial state
and/or every step), as in image captioning (Vinyals et al. 2015). On captchas it reads the same
images as the CTC recogniser (N→M), so the two structures can be compared on one task.

    u = ConvStack(x)                  (B, C', F', W')   3x3 conv, batch norm, ReLU, 2x2 max-pool
    v = W_v flatten(u) + b_v          (B, Z)            the image's vector: where each stroke is
                                                        survives the flatten (no global pooling);
                                                        linear (Show and Tell's image embedding):
                                                        a ReLU here left most units at 0 for every
                                                        image (``--vector-act relu``, older runs)
    p(y_{t+1} | y_≤t, v) = ConditionalGenerator(v)      <s> y_1 .. y_n </s>, teacher-forced

Images have one fixed size (height F, width W); narrower ones are padded with zeros (the
standardised background), wider ones cut. Shapes: B batch, F rows, W columns, Z vector size.
"""
from dataclasses import dataclass, field

import torch
from torch import nn

from rnnkit.config import MAX_STEPS, MAX_VOCAB, MAX_WIDTH, ConfigError, check, check_size
from rnnkit.models.conditional import CONDITIONING, CondConfig, ConditionalGenerator
from rnnkit.models.recognizer import ConvBlock, check_dtype


@dataclass
class ImageToTextConfig:
    """The model's shape; stored in checkpoints so ``rnnkit recognize`` rebuilds the model alone."""
    # filled in from the data: V (the alphabet and <pad>, <s>, </s>), the images' size
    vocab_size: int = field(default=0, metadata={"range": (0, MAX_VOCAB)})
    height: int = field(default=0, metadata={"range": (0, MAX_WIDTH)})
    width: int = field(default=0, metadata={"range": (0, MAX_WIDTH)})
    conv_layers: int = field(default=3, metadata={
        "help": "convolution layers of the encoder (each halves height and width)",
        "range": (1, 8)})
    channels: int = field(default=32, metadata={
        "help": "channels of the first convolution (doubled by each later one)",
        "range": (1, 1024)})
    vector: int = field(default=256, metadata={"help": "size Z of the image's vector",
                                                "range": (1, MAX_WIDTH)})
    vector_act: str = field(default="none", metadata={
        "help": "activation of the image's vector: none (linear), tanh or relu",
        "choices": ("none", "tanh", "relu")})
    cell: str = field(default="lstm", metadata={"help": "recurrent cell: lstm or gru",
                                                 "choices": ("lstm", "gru")})
    layers: int = field(default=1, metadata={"help": "stacked recurrent layers", "range": (1, 8)})
    hidden: int = field(default=256, metadata={"help": "hidden size H of the generator",
                                                "range": (1, MAX_WIDTH)})
    embed: int = field(default=32, metadata={"help": "character embedding size",
                                              "range": (1, MAX_WIDTH)})
    conditioning: str = field(default="both", metadata={
        "help": "where the image enters: init (initial state), input (every step) or both",
        "choices": CONDITIONING})
    dropout: float = field(default=0.1, metadata={
        "help": "dropout on the image's vector and in the generator (0: off)", "range": "[0, 1)"})
    max_len: int = field(default=16, metadata={
        "help": "longest text generated, in characters (</s> not counted)",
        "range": (1, MAX_STEPS)})

    def __post_init__(self):
        check(self)
        side = 2 ** self.conv_layers
        if (self.height and self.height < side) or (self.width and self.width < side):
            raise ConfigError(f"ImageToTextConfig: {self.conv_layers} conv layers halve the image "
                              f"{self.conv_layers} times, so it must be at least {side}x{side}, "
                              f"got {self.height}x{self.width} (--conv-layers)")
        check_size(self, self.flat_size() * self.vector, ("height", "width", "channels",
                                                          "conv_layers", "vector"))
        if self.vocab_size:
            self.generator_config()   # checks the generator's sizes too

    def flat_size(self):
        side = 2 ** self.conv_layers
        channels = self.channels * 2 ** (self.conv_layers - 1)
        return channels * (self.height // side) * (self.width // side)

    def generator_config(self):
        return CondConfig(vocab_size=self.vocab_size, features=self.vector, cell=self.cell,
                          layers=self.layers, hidden=self.hidden, embed=self.embed,
                          cond_size=self.vector, conditioning=self.conditioning,
                          dropout=self.dropout, max_len=self.max_len)


class ImageToText(nn.Module):
    def __init__(self, config):
        super().__init__()
        c = self.config = config
        if c.vocab_size < 4 or c.height < 1 or c.width < 1:
            raise ValueError(f"need vocab_size >= 4 and an image size, got {c.vocab_size}, "
                             f"{c.height}x{c.width}")
        widths = [c.channels * 2 ** i for i in range(c.conv_layers)]
        self.convs = nn.ModuleList(ConvBlock(i, o, 2) for i, o in zip([1] + widths[:-1], widths))
        self.drop = nn.Dropout(c.dropout)
        self.vector = nn.Linear(c.flat_size(), c.vector)
        self.generator = ConditionalGenerator(c.generator_config())

    def fit(self, x):
        """Images (B, F, W') -> (B, F, W): zero-padded or cut to the model's width."""
        W = self.config.width
        if x.shape[-1] >= W:
            return x[..., :W]
        return torch.nn.functional.pad(x, (0, W - x.shape[-1]))

    def encode(self, x):
        """Images (B, F, W') -> their vectors (B, Z)."""
        if x.dim() != 3 or x.shape[1] != self.config.height:
            raise ValueError(f"expected images (B, {self.config.height}, W), got {tuple(x.shape)}")
        check_dtype(x, self.vector.weight.dtype, "images")
        u = self.fit(x)[:, None]                                              # (B, 1, F, W)
        full = torch.full(u.shape[:1], u.shape[-1], dtype=torch.long, device=u.device)  # (B,)
        for conv in self.convs:
            u, full = conv(u, full)                                           # (B, C', F', W')
        v = self.vector(self.drop(u.flatten(1)))                              # (B, Z)
        act = self.config.vector_act
        return torch.relu(v) if act == "relu" else torch.tanh(v) if act == "tanh" else v

    def condition(self, x):
        """Images (B, F, W') -> the generator's initial decoding state."""
        return self.generator.condition(self.encode(x))

    def step(self, x_t, state):
        return self.generator.step(x_t, state)

    def reorder_state(self, state, index):
        return self.generator.reorder_state(state, index)

    def expand_beams(self, state, G):
        return self.generator.expand_beams(state, G)

    def loss(self, x, seq):
        """Cross-entropy per token of seq (B, T+1) = <s> y_1 .. y_n </s> (0-padded) given the
        images x (B, F, W'): (mean, token count)."""
        return self.generator.loss(self.encode(x), seq)
