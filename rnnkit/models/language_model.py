"""A recurrent language model (char-rnn, Karpathy 2015; Graves 2013): embed, RNN stack, softmax.

    e_t = E[x_t]                          (B, T, C)   token embedding
    h_t = RNN(e_t, h_{t-1})               (B, T, H)   rnnkit.LSTM / GRU / RNN, L layers
    p(x_{t+1} | x_{≤t}) = softmax(W h_t + b)   (B, T, V)

Large vocabularies (a Chinese corpus has thousands of characters) need three things a
100-character English corpus does not, each chosen from the vocabulary size (``LMConfig.for_vocab``):
- tied embeddings (Press & Wolf 2017; Inan et al. 2017): W = E (C = H), so every softmax
  gradient also trains the input embedding of every token, rare ones included;
- the adaptive softmax (Grave et al. 2017; torch's ``AdaptiveLogSoftmaxWithLoss``): the frequent
  tokens in a small head, the rare ones in clusters behind it, for a fraction of the cost;
- the output bias starts at the log unigram frequencies (``init_unigram``), so training starts at
  the unigram entropy instead of log V.

Shapes: B batch, T time, C embedding, H hidden, L layers, V vocabulary.
The generative interface shared with every decoder in :mod:`rnnkit.decode` is
``init_state(batch)`` and ``step(x_t, state) -> (logits, state)``.
"""
from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.nn import functional as F

from rnnkit.config import (MAX_LAYERS, MAX_VOCAB, MAX_WIDTH, ConfigError, check, check_size,
                           recurrent_params)
from rnnkit.layers import LAYERS, fast_lm, fast_step
from rnnkit.layers.packing import initial_state
from rnnkit.layers.recurrent import task_states
from rnnkit.models.step_inputs import check_ids, embed_ids

CELLS = LAYERS       # every registered cell by name: lstm, gru, rnn, indrnn, ... (live)


@dataclass
class LMConfig:
    """The model's shape; stored in checkpoints so sampling can rebuild the model alone."""
    vocab_size: int = field(default=0, metadata={"range": (0, MAX_VOCAB)})   # V; 0: not yet known
    cell: str = field(default="lstm", metadata={
        "help": "recurrent cell: lstm, gru, rnn or a registered one", "choices": CELLS})
    layers: int = field(default=2, metadata={"help": "stacked recurrent layers",
                                              "range": (1, MAX_LAYERS)})
    hidden: int = field(default=256, metadata={"help": "hidden size H of each layer",
                                                "range": (1, MAX_WIDTH)})
    embed: int = field(default=0, metadata={
        "help": "token embedding size (0: 64, the hidden size above 2000 tokens)",
        "range": (0, MAX_WIDTH)})
    dropout: float = field(default=0.0, metadata={
        "help": "dropout on the embedding, between layers and before the softmax (0: off)",
        "range": "[0, 1)"})
    tie: str = field(default="auto", metadata={
        "help": "share input and output embeddings (W = E): yes, no, auto (no)",
        "choices": ("yes", "no", "auto")})
    softmax: str = field(default="auto", metadata={
        "help": "full, adaptive (frequent tokens first), auto (adaptive if untied, V > 2000)",
        "choices": ("full", "adaptive", "auto")})

    def __post_init__(self):
        check(self)
        if self.tie == "yes" and self.embed not in (0, self.hidden):
            raise ConfigError(f"tied embeddings need embed == hidden (or 0), got embed "
                              f"{self.embed}, hidden {self.hidden}")
        if self.tie == "yes" and self.softmax == "adaptive":
            raise ConfigError("tied embeddings need the full softmax (softmax full or auto)")
        V, E = self.vocab_size, self.embed or max(64, self.hidden)   # the widest 'auto' embedding
        check_size(self, V * E + recurrent_params(self.cell, self.layers, E, self.hidden)
                   + V * (self.hidden + 1), ("vocab_size", "embed", "hidden", "layers"))

    def for_vocab(self, vocab_size):
        """This config with the vocabulary size and every 'auto' setting decided: what the
        checkpoint stores, so a saved model never changes shape when the rules change."""
        V, H = vocab_size, self.hidden
        tie = "no" if self.tie == "auto" else self.tie
        softmax = self.softmax if self.softmax != "auto" else (
            "adaptive" if V > ADAPTIVE_ABOVE and tie == "no" else "full")
        embed = self.embed or (H if tie == "yes" or V > ADAPTIVE_ABOVE else 64)
        if softmax == "adaptive" and V < 4:
            softmax = "full"
        return replace(self, vocab_size=V, tie=tie, softmax=softmax, embed=embed)


def saved_lm_config(d):
    """LMConfig fields from a checkpoint; models saved before tying and the adaptive softmax
    existed had neither."""
    return {"tie": "no", "softmax": "full", **d}


ADAPTIVE_ABOVE = 2000   # tokens: the adaptive softmax above this (when not tied)


def adaptive_cutoffs(V):
    """Cluster boundaries of the adaptive softmax over a frequency-sorted vocabulary of V: a head
    of the most frequent ~V/8 tokens (at least 2), then clusters 4x larger, as Grave et al."""
    cuts, c = [], max(2, V // 8)
    while c < V:
        cuts.append(c)
        c *= 4
    return cuts


class LanguageModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        if config.vocab_size < 1:
            raise ValueError(f"LMConfig.vocab_size must be >= 1, got {config.vocab_size}")
        config = config.for_vocab(config.vocab_size)
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.embed)
        self.rnn = CELLS[c.cell](c.embed, c.hidden, c.layers,
                                 dropout=c.dropout if c.layers > 1 else 0.0, batch_first=True)
        task_states(self.rnn, c.cell, "language model")
        self.drop = nn.Dropout(c.dropout)
        if c.softmax == "adaptive":
            self.head = nn.AdaptiveLogSoftmaxWithLoss(c.hidden, c.vocab_size,
                                                      adaptive_cutoffs(c.vocab_size), div_value=4.0,
                                                      head_bias=True)
        else:
            self.head = nn.Linear(c.hidden, c.vocab_size)
            if c.tie == "yes":
                nn.init.normal_(self.embed.weight, std=c.hidden ** -0.5)   # logits start O(1)
                self.head.weight = self.embed.weight                       # W = E  (V, H)

    def init_state(self, batch):
        """Zero state for ``batch`` sequences: (L, B, H), or a tuple (h, c) for the LSTM."""
        w = self.embed.weight
        h = w.new_zeros(self.config.layers, batch, self.config.hidden)       # (L, B, H)
        return initial_state(self.rnn, h)                                    # (h, c, ...) as the cell

    @torch.no_grad()
    def init_unigram(self, counts):
        """Start the output bias at the log unigram frequencies of the training tokens, counts
        (V,): the untrained model predicts the unigram distribution. Under the adaptive softmax
        the head's bias gets the frequent tokens' and each cluster's log probability (within a
        cluster the start is uniform)."""
        p = (counts.double() + 0.5) / (counts.sum() + 0.5 * len(counts))       # (V,) add-½
        if isinstance(self.head, nn.Linear):
            self.head.bias.copy_(p.log())
            return
        cuts = self.head.cutoffs                                             # [c0, c1, ..., V]
        clusters = [p[a:b].sum() for a, b in zip(cuts[:-1], cuts[1:])]
        self.head.head.bias.copy_(torch.cat([p[:cuts[0]], torch.stack(clusters)]).log())

    def hidden_states(self, x, state=None):
        """x (B, T) token ids -> the top layer's states (B, T, H), dropped out, and the state."""
        h, state = self.rnn(self.drop(self.embed(x)), state)                 # (B, T, H)
        return self.drop(h), state

    def logits(self, h):
        """Top-layer states (..., H) -> logits (..., V); log-probabilities under the adaptive
        softmax (equally good logits for sampling and beam search)."""
        if isinstance(self.head, nn.AdaptiveLogSoftmaxWithLoss):
            return self.head.log_prob(h.reshape(-1, h.shape[-1])).view(*h.shape[:-1], -1)
        return self.head(h)

    def forward(self, x, state=None):
        """x (B, T) token ids -> logits (B, T, V) and the final state."""
        h, state = self.hidden_states(x, state)                              # (B, T, H)
        return self.logits(h), state                                         # (B, T, V)

    def step(self, x_t, state):
        """One token per sequence: x_t (B,) -> logits (B, V) and the next state. In eval mode
        the stack runs :func:`rnnkit.layers.fast_step.step` (one compiled call for torch's
        cells on CPU), with the forward's results."""
        if self.training:
            check_ids(self, x_t)
            logits, state = self(x_t[:, None], state)                       # (B, 1, V)
            return logits[:, 0], state
        m = self._modules                  # (not nn.Module's __getattr__: this is the hot path)
        fused = fast_lm.lm_step(m["rnn"], m["embed"], m["head"], x_t, state)
        if fused is not None:                                               # embed, stack, head
            return fused
        check_ids(self, x_t)
        h, state = fast_step.step(self.rnn, embed_ids(self, self.embed, x_t), state)   # (B, H)
        return self.logits(h), state                                        # (B, V)

    def refresh_steps(self):
        """Before sampling: the compiled step's caches see weights written through ``.data``
        (:func:`rnnkit.layers.fast_lm.refresh`); writes under ``torch.no_grad()`` are seen at
        every step by their version counters."""
        fast_lm.refresh(self.rnn, self.embed, self.head)

    def sample_steps(self, logits, state, u, temperature, top_k, top_p, stop_id, done):
        """Sampling's inner loop as one compiled call where the model can run so (eval mode,
        torch's cells on CPU, a plain head): see :func:`rnnkit.layers.fast_lm.lm_sample`;
        None otherwise (:func:`rnnkit.decode.sample` then picks and steps in Python, with the
        same draws)."""
        if self.training or isinstance(self.head, nn.AdaptiveLogSoftmaxWithLoss):
            return None
        return fast_lm.lm_sample(self.rnn, self.embed, self.head, logits, state, u,
                                   temperature, top_k, top_p, stop_id, done)

    def loss(self, x, y, state=None):
        """Mean cross-entropy in nats per token of predicting y (B, T) from x (B, T)."""
        h, state = self.hidden_states(x, state)                              # (B, T, H)
        if isinstance(self.head, nn.AdaptiveLogSoftmaxWithLoss):   # never forms the (B, T, V) logits
            return self.head(h.flatten(0, 1), y.flatten()).loss, state
        return F.cross_entropy(self.head(h).flatten(0, 1), y.flatten()), state


def detach_state(state):
    """Cut the graph at a batch boundary (truncated BPTT) while keeping the values."""
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return None if state is None else state.detach()
