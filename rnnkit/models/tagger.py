"""N-to-N sequence labelling: word (+ character) features, bidirectional stacked RNN, a tag per step.

    w_t = E_w[x_t] + Σ_g G[g(t)]                     (B, T, C)    word embedding (+ n-grams)
    c_t = [→g ; ←g](E_c[chars of x_t])               (B, T, 2·G)  char BiGRU over the word (optional)
    o_t = BiRNN([w_t ; c_t])_t                       (B, T, D·H)  rnnkit.LSTM / GRU / RNN, L layers
    s_t = W o_t + b + Σ_f U[f(t)]                    (B, T, K)    per-step tag scores
    p(y_t | x) = softmax(s_t), or a linear-chain CRF over s (``crf=True``; Lample et al. 2016)

g(t) runs over the hash buckets of the 2..N tokens ending at t and of those starting at t
(``ngrams`` N; fastText's hashing trick, as in the classifier): for a segmentation over characters
these are the character bigrams c_{t-1}c_t and c_t c_{t+1} that word-segmentation models read
(Pei et al. 2014, Chen et al. 2015), each side its own rows, so an unseen character still has its
neighbours' bigrams. f(t) runs over the hash buckets of the 1..max(N, 2)-grams that lie within
``window`` tokens of t, each keyed by its offset (with ``window`` 2 and N 2: the tokens at t-2 ..
t+2 and the four bigrams between them, the templates of a CRF word segmenter, Zhao et al. 2006):
a linear term of K scores a feature, started at zero and trained with the network, so the tagger
reads what a linear CRF tagger reads. ``linear_start`` (the default where there is a linear
term): before training, the tag task fits that term and a CRF layer alone by L-BFGS, the CRF
tagger a user would write (:mod:`rnnkit.models.crf_fit`), validates it as step 0 and mixes it
with the network at every evaluation (:func:`rnnkit.models.crf_fit.blended_state`); the model then
has a CRF layer, trained with the network. It is on where the fit pays within a time limit
(training tokens x tags² up to ``crf_fit.MAX_COST``: a segmentation's four tags, not a
part-of-speech tag set's). The character features (Ling et al. 2015) give unseen
words a representation from their characters: for Chinese, a word's first and last characters
say much about its part of speech.
Shapes: B batch, T time, W characters a word, C/E embeddings, G char hidden, H hidden, K tags.
"""
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from rnnkit.config import (MAX_LABELS, MAX_LAYERS, MAX_VOCAB, MAX_WIDTH, check, check_size,
                           recurrent_params)
from rnnkit.layers import GRU, LAYERS
from rnnkit.layers.packing import with_lengths
from rnnkit.layers.recurrent import task_states
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
    ngrams: int = field(default=0, metadata={
        "help": "embed the hashed 2..N-grams around each token (0: 2 for chars, 1: off)",
        "range": (0, 8)})
    buckets: int = field(default=0, metadata={
        "help": "hash buckets (embedding rows) of the n-grams (0: 200,000, fewer for small data)",
        "range": (0, MAX_VOCAB)})
    window: int = field(default=2, metadata={
        "help": "a linear term over the hashed n-grams within N tokens of a token (0: off)",
        "range": (0, 8)})
    affixes: int = field(default=-1, metadata={
        "help": "linear term: a word's first 1-2, last 1..N chars, length, shape (-1: 3 on words)",
        "range": (-1, 8)})
    window_buckets: int = field(default=0, metadata={
        "help": "the linear term's hash buckets (0: 2 M, fewer for > 15 tags or small data)",
        "range": (0, MAX_VOCAB)})
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
    feature_dropout: float = field(default=0.0, metadata={
        "help": "training only: drop each hashed n-gram feature with this probability",
        "range": "[0, 1)"})
    crf: bool = field(default=False, metadata={
        "help": "a linear-chain CRF layer; neither flag: up to --crf-tags tags; --no-crf: none"})
    crf_tags: int = field(default=100, metadata={
        "help": "a CRF layer also without --crf where there are at most N tags (0: none)",
        "range": (0, MAX_LABELS)})
    linear_start: bool = field(default=True, metadata={
        "help": "fit the linear term alone as a CRF first; validate mixes with the network"})

    def __post_init__(self):
        check(self)
        D, K, G = 1 + self.bidirectional, self.num_tags, self.char_hidden
        chars = (self.char_vocab_size * self.char_embed
                 + recurrent_params("gru", 1, self.char_embed, G, 2)) if self.use_chars else 0
        width = self.embed + (2 * G if self.use_chars else 0)
        crf = K * K if self.crf else 0   # the transition scores
        grams = (self.buckets + 1) * self.embed if self.ngrams > 1 else 0
        grams += (self.window_buckets + 1) * K if self.window else 0
        check_size(self, self.vocab_size * self.embed + grams + chars + D * self.hidden * K + crf
                   + recurrent_params(self.cell, self.layers, width, self.hidden, D),
                   ("vocab_size", "num_tags", "embed", "hidden", "layers", "buckets",
                    "window_buckets"))

    @property
    def gram_slots(self):
        """n-gram buckets per token the embedding reads: the 2..N-grams ending at it, then those
        starting at it."""
        return 2 * max(self.ngrams - 1, 0)

    @property
    def window_slots(self):
        """n-gram buckets per token the linear term reads (after the gram slots)."""
        if not self.window:
            return 0
        return window_slots(self.window, max(self.ngrams, 2)) + affix_slots(self.affixes)

    @property
    def input_grams(self):
        """Width of the grams input: gram slots, then window slots (0: no grams input)."""
        return self.gram_slots + self.window_slots

    @property
    def use_chars(self):
        return self.char_embed > 0 and self.char_vocab_size > 0


WINDOW_SCORES = 30_000_000   # the linear term's size when window_buckets is 0: K scores a bucket
GRAM_BUCKETS = 200_000       # the n-gram embedding's rows when buckets is 0
ROWS_A_FEATURE = 4           # rows a distinct feature of small training data gets (at most)


def window_buckets(num_tags, features=None):
    """The linear term's buckets for K tags: 2,000,000, or as many as 30 M scores hold (People's
    Daily's 44 tags: 681,818; Brown's 472: 63,559). Fewer buckets collide more n-grams: on People's
    Daily 300,000 validated worse (segmentation 0.127 against 0.116, tags 0.126 against 0.120).
    ``features``: the distinct features of the training data, where counted; small data get
    :func:`fitting_buckets` of them when that is fewer."""
    return fitting_buckets(min(2_000_000, WINDOW_SCORES // max(num_tags, 1)), features)


def fitting_buckets(most, features=None):
    """``most`` hash buckets, or 4 a distinct feature (at least 1,024) where that is fewer: a
    table far larger than the features it can hold only adds rows that never train (300 People's
    Daily sentences had 30 M parameters, a 365 MB checkpoint, for about 60,000 features)."""
    if features is None:
        return most
    return min(most, max(1024, ROWS_A_FEATURE * features))


def window_slots(window, n):
    """How many n-grams (1..n tokens) lie within ``window`` tokens either side of a token."""
    return sum(2 * window + 2 - k for k in range(1, n + 1) if k <= 2 * window + 1)


def affix_slots(n):
    """Buckets a word's affixes take (:func:`rnnkit.tasks.tag_features.affix_features`): its
    first 1..min(n, 2) and last 1..n characters, length and shape; none for n <= 0."""
    return n + min(n, 2) + 2 if n > 0 else 0


class SequenceTagger(nn.Module):
    def __init__(self, config):
        super().__init__()
        c = self.config = config
        if c.vocab_size < 1 or c.num_tags < 1:
            raise ValueError(f"need vocab_size >= 1 and num_tags >= 1, got {c.vocab_size}, "
                             f"{c.num_tags}")
        self.embed = nn.Embedding(c.vocab_size, c.embed, padding_idx=0)
        c.buckets = c.buckets or GRAM_BUCKETS                                  # 0: saved resolved
        self.grams = nn.Embedding(c.buckets + 1, c.embed, padding_idx=0) if c.ngrams > 1 else None
        width = c.embed
        if c.use_chars:
            self.char_embed = nn.Embedding(c.char_vocab_size, c.char_embed, padding_idx=0)
            self.char_rnn = GRU(c.char_embed, c.char_hidden, batch_first=True, bidirectional=True)
            width += 2 * c.char_hidden
        D = 2 if c.bidirectional else 1
        self.rnn = CELLS[c.cell](width, c.hidden, c.layers, batch_first=True,
                                 bidirectional=c.bidirectional,
                                 dropout=c.dropout if c.layers > 1 else 0.0)
        task_states(self.rnn, c.cell, "tagger")
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(D * c.hidden, c.num_tags)
        self.crf = CRF(c.num_tags) if c.crf else None
        c.window_buckets = c.window_buckets or window_buckets(c.num_tags)   # 0: from K, saved
        self.window = nn.Embedding(c.window_buckets + 1, c.num_tags, padding_idx=0) \
            if c.window else None
        if self.window is not None:
            nn.init.zeros_(self.window.weight)   # starts as the network alone

    def forward(self, x, lengths, chars=None, char_lengths=None, grams=None, dense_chars=False):
        """x (B, T) word ids, lengths (B,), chars (B, T, W), char_lengths (B, T), grams (B, T, G)
        n-gram buckets (0: none; needed when ngrams > 1) -> scores (B, T, K). ``dense_chars``:
        the char features of every position, padding included (shapes that do not depend on the
        data: for export), the same scores."""
        c = self.config
        feats = self.embed(x)                                                 # (B, T, C)
        if c.input_grams and (grams is None or grams.shape[-1] != c.input_grams):
            raise ValueError(f"this tagger reads {c.input_grams} n-gram buckets a token "
                             f"(B, T, {c.input_grams}), got "
                             f"{None if grams is None else tuple(grams.shape)}")
        if self.grams is not None:
            feats = feats + self.feature_sum(self.grams, grams[..., :c.gram_slots])  # (B, T, C)
        if self.config.use_chars:
            chars_of = self.char_features_dense if dense_chars else self.char_features
            feats = torch.cat([feats, chars_of(x, lengths, chars, char_lengths)], -1)
        out, _ = with_lengths(self.rnn, self.drop(feats), lengths)            # (B, T, D·H)
        scores = self.head(self.drop(out))                                    # (B, T, K)
        if self.window is not None:
            scores = scores + self.feature_sum(self.window, grams[..., c.gram_slots:])  # (B, T, K)
        return scores

    def feature_sum(self, table, buckets):
        """Σ over a token's S hashed features of their rows: (B, T, S) -> (B, T, width). In
        training, ``feature_dropout`` drops each feature with probability p and scales the rest
        by 1/(1 - p) (dropout over the features, so a rare n-gram's row cannot carry a token
        alone)."""
        rows = table(buckets)                                                 # (B, T, S, width)
        p = self.config.feature_dropout
        if self.training and p > 0:
            keep = torch.rand(buckets.shape, device=rows.device) >= p         # (B, T, S)
            rows = rows * (keep.to(rows.dtype) / (1 - p))[..., None]
        return rows.sum(2)

    def char_features(self, x, lengths, chars, char_lengths):
        """The final states of a char BiGRU over each valid word, zeros at padding: (B, T, 2·G)."""
        B, T = x.shape
        mask = length_mask(lengths, T)                                        # (B, T)
        e = self.char_embed(chars[mask])                                      # (N, W, E)
        _, h_n = with_lengths(self.char_rnn, e, char_lengths[mask])           # (2, N, G)
        out = x.new_zeros(B, T, 2 * self.config.char_hidden, dtype=e.dtype)   # (B, T, 2·G)
        out[mask] = h_n.transpose(0, 1).reshape(-1, 2 * self.config.char_hidden)
        return out

    def char_features_dense(self, x, lengths, chars, char_lengths):
        """:meth:`char_features` by running the char BiGRU over all B·T positions (a padding
        position reads one character) and zeroing the padding after: (B, T, 2·G)."""
        B, T = x.shape
        W = chars.shape[2]
        # one padding position more: B·(T+1) words are never B (a program traced at T > 1
        # would otherwise guard on B·T != B and refuse sentences of one word)
        chars = torch.cat([chars, chars.new_zeros(B, 1, W)], 1)                # (B, T+1, W)
        char_lengths = torch.cat([char_lengths, char_lengths.new_ones(B, 1)], 1)
        e = self.char_embed(chars.reshape(B * (T + 1), W))                    # (B·(T+1), W, E)
        _, h_n = with_lengths(self.char_rnn, e, char_lengths.reshape(B * (T + 1)).clamp(min=1))
        out = h_n.transpose(0, 1).reshape(B, T + 1, 2 * self.config.char_hidden)[:, :T]
        return out * length_mask(lengths, T)[..., None].to(out.dtype)         # (B, T, 2·G)

    def loss(self, batch):
        """Mean loss per token of the gold tags y (B, T) (padding ignored): cross-entropy, or the
        CRF's negative log-likelihood divided by the number of tokens."""
        x, lengths, y, chars, char_lengths, *grams = batch
        scores = self(x, lengths, chars, char_lengths, *grams)                # (B, T, K)
        mask = length_mask(lengths, x.shape[1])
        if self.crf is not None:
            return self.crf.nll(scores, y, mask) / mask.sum()
        return F.cross_entropy(scores[mask], y[mask])

    @torch.no_grad()
    def decode(self, x, lengths, chars=None, char_lengths=None, grams=None):
        """The predicted tag ids of each sequence, as B lists of their own lengths."""
        scores = self(x, lengths, chars, char_lengths, grams)                 # (B, T, K)
        if self.crf is not None:
            return self.crf.viterbi(scores, length_mask(lengths, x.shape[1]))
        best = scores.argmax(-1).tolist()
        return [row[:n] for row, n in zip(best, lengths.tolist())]
