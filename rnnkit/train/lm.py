"""Language modelling as a trainer task: corpus -> vocabulary -> streams, carried state, metrics.

Implements the protocol of :mod:`rnnkit.train.trainer` for :class:`rnnkit.models.LanguageModel`.
The hidden state is carried from one truncated-BPTT batch to the next and detached (char-rnn);
it restarts from zeros at the start of each pass over the data.
"""
import math
from dataclasses import asdict, dataclass, field

import torch

from rnnkit.data import StreamBatches, Vocab, read_text, resolve, split_ids
from rnnkit.data.text import VAL_FRACTION
from rnnkit.models import LanguageModel, LMConfig
from rnnkit.models.language_model import detach_state
from rnnkit.train.checkpoint import load_checkpoint


@dataclass
class LMData:
    """Which text and how it is cut into batches."""
    data: str = field(default="shakespeare", metadata={
        "help": "data set name (rnnkit data list) or a UTF-8 text file"})
    tokens: str = field(default="char", metadata={"help": "tokenizer: char or word"})
    max_vocab: int = field(default=0, metadata={
        "help": "keep the N most frequent tokens, <unk> included; the rest become <unk> (0: all)"})
    seq_len: int = field(default=100, metadata={
        "help": "truncated-BPTT length T: tokens per stream per batch"})
    batch: int = field(default=64, metadata={"help": "parallel token streams B per batch"})
    val_fraction: float = field(default=VAL_FRACTION, metadata={
        "help": "the last fraction of the text is the validation part"})
    eval_tokens: int = field(default=0, metadata={
        "help": "validate on the first N validation tokens only (0: all of them)"})

    def __post_init__(self):
        if self.tokens not in ("char", "word"):
            raise ValueError(f"tokens must be 'char' or 'word', got {self.tokens!r}")
        if self.seq_len < 1 or self.batch < 1 or not 0 < self.val_fraction < 1:
            raise ValueError(f"need seq_len >= 1, batch >= 1, 0 < val_fraction < 1; got "
                             f"{self.seq_len}, {self.batch}, {self.val_fraction}")


class LMTask:
    unit = "char"

    def __init__(self, model, vocab, train_ids, val_ids, data_config):
        self.model, self.vocab, self.data_config = model, vocab, data_config
        self.unit = vocab.kind
        d = data_config
        if d.eval_tokens:
            val_ids = val_ids[: d.eval_tokens + 1]
        self.train = StreamBatches(train_ids, d.batch, d.seq_len)
        self.val = StreamBatches(val_ids, min(d.batch, max(1, (len(val_ids) - 1) // d.seq_len)),
                                 d.seq_len)
        self.state = None

    def train_batch(self, step):
        return self.train[step]

    def loss(self, batch):
        x, y, first = batch                                                   # (B, T) each
        if first:
            self.state = None
        loss, state = self.model.loss(x, y, self.state)
        self.state = detach_state(state)
        if not torch.isfinite(loss):
            self.state = None   # do not carry a poisoned state into the next batch
        return loss, y.numel()

    def evaluate(self):
        """Validation loss over the whole validation stream, state carried as in training."""
        total, count, state = 0.0, 0, None
        for x, y, _ in self.val:
            loss, state = self.model.loss(x, y, state)
            total += float(loss) * y.numel()
            count += y.numel()
        nats = total / count
        return {"val_loss": nats, "val_bits": nats / math.log(2), "val_ppl": math.exp(min(nats, 50))}

    def state_dict(self):
        s = self.state
        return {"state": list(s) if isinstance(s, tuple) else s}

    def load_state_dict(self, d):
        s = d.get("state")
        self.state = tuple(s) if isinstance(s, list) else s

    def checkpoint_extras(self):
        return {"kind": "lm", "model_config": asdict(self.model.config),
                "vocab": self.vocab.to_dict(), "data_config": asdict(self.data_config)}


def build_lm_task(data_config, model_config, log=print):
    """Read the corpus, build the vocabulary and the model; model_config.vocab_size is filled in.

    The model is created under the current torch seed: seed first for a reproducible init.
    """
    path = resolve(data_config.data)
    text = read_text(path)
    vocab = Vocab.build(text, data_config.tokens, data_config.max_vocab or None)
    ids = vocab.encode(text)
    train_ids, val_ids = split_ids(ids, data_config.val_fraction)
    log(f"{path}: {len(ids):,} {vocab.kind} tokens, vocabulary {len(vocab):,}; "
        f"train {len(train_ids):,}, validation {len(val_ids):,} (last {data_config.val_fraction:.0%})")
    model_config.vocab_size = len(vocab)
    model = LanguageModel(model_config)
    return LMTask(model, vocab, train_ids, val_ids, data_config)


def load_lm(path):
    """(model in eval mode, vocab) from a run folder (its best.pt) or a checkpoint file."""
    ckpt = load_checkpoint(path, kind="lm")
    model = LanguageModel(LMConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.eval(), Vocab.from_dict(ckpt["vocab"])
