"""N-to-N sequence labelling: word (+ character) features, bidirectional stacked RNN, a tag per step.

    w_t = E_w[x_t]                                   (B, T, C)    word embedding
    c_t = [→g ; ←g](E_c[chars of x_t])               (B, T, 2·G)  char BiGRU over the word (optional)
    o_t = BiRNN([w_t ; c_t])_t                       (B, T, D·H)  rnnkit.LSTM / GRU / RNN, L layers
    s_t = W o_t + b                                  (B, T, K)    per-step tag scores
    p(y_t | x) = softmax(s_t), or a linear-chain CRF over s (``crf=True``; Lample et al. 2016)

The character features (Ling et al. 2015) give unseen words a representation from their
characters: for Chinese, a word's first and last characters say much about its part of speech.
Shapes: B batch, T time, W characters a word, C/E embeddings, G char hidden, H hidden, K tags.
"""
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from rnnkit.config import (MAX_LABELS, MAX_LAYERS, MAX_VOCAB, MAX_WIDTH, check, check_size,
                           recurrent_params)
from rnnkit.layers import GRU, LAYERS
from rnnkit.models.crf import CRF
from rnnkit.models.pooling import length_mask

CELLS = LAYERS       # every registered cell by name: lstm, gru, rnn, indrnn, ... (live)


@dataclass
class TaggerConfig:
    """The model's shape; stored in checkpoints so ``rnnkit tag`` rebuilds the model alone."""
    # filled in from the data: words, tags (K), characters (0: no character features)
    vocab_size: int = field(default=0, metadata={"range": (0, MAX_VOCAB)})
    num_tags: int = field(default=0, metadata={"range": (0, MAX_LABELS)})
    char_vocab_size: int = field(default=0, metadata={"range": (0, MAX_VOCAB)})
    cell: str = field(default="lstm", metadata={
        "help": "recurrent cell: lstm, gru, rnn or a registered one", "choices": CELLS})
    layers: int = field(default=1, metadata={"help": "stacked recurrent layers",
                                              "range": (1, MAX_LAYERS)})
    hidden: int = field(default=128, metadata={"help": "hidden size H per direction",
                                                "range": (1, MAX_WIDTH)})
    embed: int = field(default=100, metadata={"help": "word embedding size",
                                               "range": (1, MAX_WIDTH)})
    char_embed: int = field(default=32, metadata={
        "help": "character embedding size (0: no character features, words only)",
        "range": (0, MAX_WIDTH)})
    char_hidden: int = field(default=32, metadata={
        "help": "hidden size of the character BiGRU, per direction", "range": (1, MAX_WIDTH)})
    bidirectional: bool = field(default=True, metadata={
        "help": "also read each sentence backwards (both directions' outputs concatenated)"})
    dropout: float = field(default=0.3, metadata={
        "help": "dropout on the input features, between layers and on the outputs (0: off)",
        "range": "[0, 1)"})
    crf: bool = field(default=False, metadata={
        "help": "score whole tag sequences with a linear-chain CRF (Viterbi decoding)"})

    def __post_init__(self):
        check(self)
        D, K, G = 1 + self.bidirectional, self.num_tags, self.char_hidden
        chars = (self.char_vocab_size * self.char_embed
                 + recurrent_params("gru", 1, self.char_embed, G, 2)) if self.use_chars else 0
        width = self.embed + (2 * G if self.use_chars else 0)
        crf = K * K if self.crf else 0   # the transition scores
        check_size(self, self.vocab_size * self.embed + chars + D * self.hidden * K + crf
                   + recurrent_params(self.cell, self.layers, width, self.hidden, D),
                   ("vocab_size", "num_tags", "embed", "hidden", "layers"))

    @property
    def use_chars(self):
        return self.char_embed > 0 and self.char_vocab_size > 0


class SequenceTagger(nn.Module):
    def __init__(self, config):
        super().__init__()
        c = self.config = config
        if c.vocab_size < 1 or c.num_tags < 1:
            raise ValueError(f"need vocab_size >= 1 and num_tags >= 1, got {c.vocab_size}, "
                             f"{c.num_tags}")
        self.embed = nn.Embedding(c.vocab_size, c.embed, padding_idx=0)
        width = c.embed
        if c.use_chars:
            self.char_embed = nn.Embedding(c.char_vocab_size, c.char_embed, padding_idx=0)
            self.char_rnn = GRU(c.char_embed, c.char_hidden, batch_first=True, bidirectional=True)
            width += 2 * c.char_hidden
        D = 2 if c.bidirectional else 1
        self.rnn = CELLS[c.cell](width, c.hidden, c.layers, batch_first=True,
                                 bidirectional=c.bidirectional,
                                 dropout=c.dropout if c.layers > 1 else 0.0)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(D * c.hidden, c.num_tags)
        self.crf = CRF(c.num_tags) if c.crf else None

    def forward(self, x, lengths, chars=None, char_lengths=None, dense_chars=False):
        """x (B, T) word ids, lengths (B,), chars (B, T, W), char_lengths (B, T) -> scores (B, T, K).
        ``dense_chars``: the char features of every position, padding included (shapes that
        do not depend on the data: for export), the same scores."""
        feats = self.embed(x)                                                 # (B, T, C)
        if self.config.use_chars:
            chars_of = self.char_features_dense if dense_chars else self.char_features
            feats = torch.cat([feats, chars_of(x, lengths, chars, char_lengths)], -1)
        out, _ = self.rnn(self.drop(feats), lengths=lengths)                  # (B, T, D·H)
        return self.head(self.drop(out))                                      # (B, T, K)

    def char_features(self, x, lengths, chars, char_lengths):
        """The final states of a char BiGRU over each valid word, zeros at padding: (B, T, 2·G)."""
        B, T = x.shape
        mask = length_mask(lengths, T)                                        # (B, T)
        e = self.char_embed(chars[mask])                                      # (N, W, E)
        _, h_n = self.char_rnn(e, lengths=char_lengths[mask])                 # (2, N, G)
        out = x.new_zeros(B, T, 2 * self.config.char_hidden, dtype=e.dtype)   # (B, T, 2·G)
        out[mask] = h_n.transpose(0, 1).reshape(-1, 2 * self.config.char_hidden)
        return out

    def char_features_dense(self, x, lengths, chars, char_lengths):
        """:meth:`char_features` by running the char BiGRU over all B·T positions (a padding
        position reads one character) and zeroing the padding after: (B, T, 2·G)."""
        B, T = x.shape
        W = chars.shape[2]
        e = self.char_embed(chars.reshape(B * T, W))                          # (B·T, W, E)
        _, h_n = self.char_rnn(e, lengths=char_lengths.reshape(B * T).clamp(min=1))  # (2, B·T, G)
        out = h_n.transpose(0, 1).reshape(B, T, 2 * self.config.char_hidden)  # (B, T, 2·G)
        return out * length_mask(lengths, T)[..., None].to(out.dtype)

    def loss(self, batch):
        """Mean loss per token of the gold tags y (B, T) (padding ignored): cross-entropy, or the
        CRF's negative log-likelihood divided by the number of tokens."""
        x, lengths, y, chars, char_lengths = batch
        scores = self(x, lengths, chars, char_lengths)                        # (B, T, K)
        mask = length_mask(lengths, x.shape[1])
        if self.crf is not None:
            return self.crf.nll(scores, y, mask) / mask.sum()
        return F.cross_entropy(scores[mask], y[mask])

    @torch.no_grad()
    def decode(self, x, lengths, chars=None, char_lengths=None):
        """The predicted tag ids of each sequence, as B lists of their own lengths."""
        scores = self(x, lengths, chars, char_lengths)                        # (B, T, K)
        if self.crf is not None:
            return self.crf.viterbi(scores, length_mask(lengths, x.shape[1]))
        best = scores.argmax(-1).tolist()
        return [row[:n] for row, n in zip(best, lengths.tolist())]
