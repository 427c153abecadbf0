"""A conditional generator (1→N): one input — a class label or a feature vector — steers a
recurrent language model, as in image captioning (Vinyals et al. 2015; Karpathy & Fei-Fei 2015)
and conditional char-rnn name generators.

    z    = E_c[label]  or  W_f f + b_f                      (B, C)   the condition
    h_0  = tanh(W_init z + b_init)                          (L, B, H) when condition ∈ {init, both}
    h_t  = RNN([E[x_t]; z], h_{t-1})                        z fed at every step when ∈ {input, both}
    p(x_{t+1} | x_≤t, z) = softmax(W h_t + b)               (B, V)

Shapes: B batch, T time, C condition size, E embedding, H hidden, L layers, V vocabulary.
Decoding goes through :mod:`rnnkit.decode`: ``state = model.condition(cond)``, then
``step(x_t, state) -> (logits, state)``; the state is a dict that carries z along.
"""
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from rnnkit.config import (MAX_LABELS, MAX_LAYERS, MAX_STEPS, MAX_VOCAB, MAX_WIDTH, check,
                           check_size, recurrent_params)
from rnnkit.layers import fast_step
from rnnkit.layers.packing import initial_state
from rnnkit.layers.recurrent import task_states
from rnnkit.models.step_inputs import check_ids, embed_ids, state_parts
from rnnkit.models.language_model import CELLS

PAD = 0
CONDITIONING = ("init", "input", "both")


@dataclass
class CondConfig:
    """The model's shape; stored in checkpoints so ``sample`` rebuilds the model alone."""
    # filled in from the data: V; the labels, or the size of the feature vector (n_classes 0)
    vocab_size: int = field(default=0, metadata={"range": (0, MAX_VOCAB)})
    n_classes: int = field(default=0, metadata={"range": (0, MAX_LABELS)})
    features: int = field(default=0, metadata={"range": (0, MAX_LABELS)})
    cell: str = field(default="lstm", metadata={
        "help": "recurrent cell: lstm, gru, rnn or a registered one", "choices": CELLS})
    layers: int = field(default=1, metadata={"help": "stacked recurrent layers",
                                              "range": (1, MAX_LAYERS)})
    hidden: int = field(default=128, metadata={"help": "hidden size H of each layer",
                                                "range": (1, MAX_WIDTH)})
    embed: int = field(default=32, metadata={"help": "token embedding size",
                                              "range": (1, MAX_WIDTH)})
    cond_size: int = field(default=32, metadata={"help": "size C of the condition's embedding",
                                                  "range": (1, MAX_WIDTH)})
    conditioning: str = field(default="both", metadata={
        "help": "where the condition enters: init (initial state), input (every step) or both",
        "choices": CONDITIONING})
    dropout: float = field(default=0.0, metadata={
        "help": "dropout on the embedding, between layers and before the softmax (0: off)",
        "range": "[0, 1)"})
    max_len: int = field(default=40, metadata={
        "help": "longest sequence generated, </s> included; longer data sequences are dropped",
        "range": (1, MAX_STEPS)})

    def __post_init__(self):
        check(self)
        V, C, H, L = self.vocab_size, self.cond_size, self.hidden, self.layers
        check_size(self, (self.n_classes + self.features + 1) * C + (C + 1) * L * H
                   + V * self.embed + (H + 1) * V
                   + recurrent_params(self.cell, L, self.embed + C, H),
                   ("vocab_size", "n_classes", "features", "embed", "cond_size", "hidden",
                    "layers"))


class ConditionalGenerator(nn.Module):
    def __init__(self, config):
        super().__init__()
        c = self.config = config
        if c.vocab_size < 1 or (c.n_classes > 0) == (c.features > 0):
            raise ValueError(f"need vocab_size >= 1 and exactly one of n_classes, features > 0; got "
                             f"{c.vocab_size}, {c.n_classes}, {c.features}")
        self.cond = (nn.Embedding(c.n_classes, c.cond_size) if c.n_classes
                     else nn.Linear(c.features, c.cond_size))
        self.init = (nn.Linear(c.cond_size, c.layers * c.hidden)
                     if c.conditioning in ("init", "both") else None)
        feed = c.conditioning in ("input", "both")
        self.embed = nn.Embedding(c.vocab_size, c.embed, padding_idx=PAD)
        self.rnn = CELLS[c.cell](c.embed + (c.cond_size if feed else 0), c.hidden, c.layers,
                                 batch_first=True, dropout=c.dropout if c.layers > 1 else 0.0)
        task_states(self.rnn, c.cell, "conditional generator")
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden, c.vocab_size)

    def condition(self, cond):
        """cond: labels (B,) long or features (B, F) -> the initial decoding state (a dict)."""
        c = self.config
        cond = torch.as_tensor(cond)
        if c.n_classes:
            if cond.dim() != 1 or cond.dtype != torch.long:
                raise ValueError(f"expected class labels (B,) long, got {tuple(cond.shape)} {cond.dtype}")
            if len(cond) and (cond.min() < 0 or cond.max() >= c.n_classes):
                raise ValueError(f"class labels must lie in [0, {c.n_classes}), got "
                                 f"{int(cond.min())}..{int(cond.max())}")
        elif cond.dim() != 2 or cond.shape[1] != c.features:
            raise ValueError(f"expected features (B, {c.features}), got {tuple(cond.shape)}")
        z, h = self.condition_tensors(cond)
        return {"rnn": initial_state(self.rnn, h), "z": z}       # rnn: (h, c) for the LSTM

    def condition_tensors(self, cond):
        """What :meth:`condition` computes, without its checks on the values (so that
        torch.export can trace it): cond -> z (B, C) and the top of the initial state h
        (L, B, H), zeros without ``init``."""
        c = self.config
        dtype = next(self.parameters()).dtype                  # float32, or a .double() model's
        z = self.cond(cond if c.n_classes else cond.to(dtype))                      # (B, C)
        B = z.shape[0]
        # a copy by clone: .contiguous() would make a traced program guard on B != 1
        h = (torch.tanh(self.init(z)).view(B, c.layers, c.hidden).transpose(0, 1)
             .clone(memory_format=torch.contiguous_format)
             if self.init is not None else z.new_zeros(c.layers, B, c.hidden))     # (L, B, H)
        return z, h

    def init_state(self, batch):
        raise TypeError("a ConditionalGenerator starts from a condition: use state = "
                        "model.condition(labels_or_features) and pass it as state=")

    def _inputs(self, x, z):
        e = self.drop(embed_ids(self, self.embed, x))                               # (B, T, E)
        if self.config.conditioning in ("input", "both"):
            e = torch.cat([e, z[:, None].expand(-1, x.shape[1], -1)], dim=-1)      # (B, T, E+C)
        return e

    def forward(self, x, state):
        """x (B, T) ids -> logits (B, T, V) and the next state."""
        h, rnn = self.rnn(self._inputs(x, state["z"]), state["rnn"])               # (B, T, H)
        return self.head(self.drop(h)), dict(state, rnn=rnn)                        # (B, T, V)

    def step(self, x_t, state):
        """x_t (B,) -> logits (B, V) and the next state (the stack through
        :func:`rnnkit.layers.fast_step.step`: the forward's results, faster in eval mode)."""
        z, rnn = state_parts(self, state, "z", "rnn")
        check_ids(self, x_t, z.shape[0])
        e = self._inputs(x_t[:, None], z)[:, 0]                                     # (B, E(+C))
        h, rnn = fast_step.step(self.rnn, e, rnn)                                   # (B, H)
        return self.head(self.drop(h)), dict(state, rnn=rnn)                        # (B, V)

    def expand_beams(self, state, G):
        """The state of N conditions with G rows each (rows n·G .. n·G+G-1 continue condition
        n): for :func:`rnnkit.decode.beam_search_batch`."""
        rnn = state["rnn"]
        rnn = (tuple(s.repeat_interleave(G, 1) for s in rnn) if isinstance(rnn, tuple)
               else rnn.repeat_interleave(G, 1))
        return {"rnn": rnn, "z": state["z"].repeat_interleave(G, 0)}

    def reorder_state(self, state, index):
        """Batch rows ``index`` of the state (beam search)."""
        rnn = state["rnn"]
        rnn = (tuple(s.index_select(1, index) for s in rnn) if isinstance(rnn, tuple)
               else rnn.index_select(1, index))
        return {"rnn": rnn, "z": state["z"].index_select(0, index)}

    def loss(self, cond, seq, reduction="mean"):
        """Cross-entropy of seq (B, T+1) = <s> x_1 .. x_n </s> (padded with 0) given cond:
        the mean per token and the token count; reduction="none" gives (B,) sums per sequence."""
        logits, _ = self(seq[:, :-1], self.condition(cond))                         # (B, T, V)
        gold = seq[:, 1:]                                                           # (B, T)
        nll = F.cross_entropy(logits.transpose(1, 2), gold, ignore_index=PAD, reduction="none")
        count = (gold != PAD).sum()
        if reduction == "none":
            return nll.sum(1), (gold != PAD).sum(1)                                 # (B,), (B,)
        return nll.sum() / count.clamp(min=1), int(count)
