"""Language modelling as a trainer task: corpus -> vocabulary -> streams, carried state, metrics.

Implements the protocol of :mod:`rnnkit.train.trainer` for :class:`rnnkit.models.LanguageModel`.
The hidden state is carried from one truncated-BPTT batch to the next and detached (char-rnn);
it restarts from zeros at the start of each pass over the data. Validation (and test) text is
read as ``min(batch, len/seq_len)`` parallel streams with the state carried, so ``rnnkit eval``
on the validation text gives the validation loss of training.

Data-parallel (``torchrun``): the training text is cut into the global ``batch`` streams as in
one process, and each rank trains its contiguous share of those rows, carrying their state; the
state is saved whole (rows of every rank joined), so a run resumes with any number of processes
that divides the batch.

Tokens (``--tokens``): ``char`` (any Unicode; the default, ``auto``, in every script: an
unsegmented Chinese or Japanese text is read character by character, which is also how a
spaced one is read), ``word`` (whitespace-separated words and an ``<eos>`` at each line's end,
Mikolov's Penn Treebank convention, so a word-level perplexity compares with published ones) or
``word-exact`` (words, punctuation and whitespace as tokens: generated text decodes exactly).
"""
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from rnnkit.config import MAX_BATCH, MAX_COUNT, MAX_STEPS, MAX_VOCAB, check
from rnnkit.data import DataError, StreamBatches, Vocab, read_text, resolve, split_ids
from rnnkit.data.datasets import DATASETS
from rnnkit.data.text import VAL_FRACTION, expanded
from rnnkit.models import LanguageModel, LMConfig
from rnnkit.models.language_model import detach_state, saved_lm_config
from rnnkit.tasks.common import warn
from rnnkit.train import distributed
from rnnkit.train.checkpoint import built_from, load_checkpoint

VOCAB_KINDS = {"auto": "char", "char": "char", "word": "ptb", "word-exact": "word"}
UNITS = {"char": "char", "ptb": "word", "word": "token"}


@dataclass
class LMData:
    """Which text and how it is cut into batches."""
    BY_NAME = ("data", "val_data", "test_data")   # the fields that read a data set by its name
    data: str = field(default="shakespeare", metadata={
        "help": "data set name (rnnkit data list), a UTF-8 text file or a folder of .txt"})
    tokens: str = field(default="auto", metadata={
        "help": "char, word (PTB: split on spaces, <eos> per line), word-exact, auto (char)",
        "choices": tuple(VOCAB_KINDS)})
    max_vocab: int = field(default=0, metadata={
        "help": "keep the N most frequent tokens, <unk> included; the rest become <unk> (0: all)",
        "range": (2, MAX_VOCAB), "or": (0,)})
    seq_len: int = field(default=100, metadata={
        "help": "truncated-BPTT length T: tokens per stream per batch", "range": (1, MAX_STEPS)})
    batch: int = field(default=64, metadata={"help": "parallel token streams B per batch",
                                              "range": (1, MAX_BATCH)})
    val_fraction: float = field(default=VAL_FRACTION, metadata={
        "help": "the last fraction of the text is the validation part", "range": "(0, 1)"})
    eval_tokens: int = field(default=0, metadata={
        "help": "validate on the first N validation tokens only (0: all of them)",
        "range": (0, MAX_COUNT)})
    val_data: str = field(default="", metadata={
        "help": "a text file to validate on instead of the end of --data"})
    test_data: str = field(default="", metadata={
        "help": "a text file to test best.pt on at the end (metrics.json: test_loss)"})

    def __post_init__(self):
        check(self)


def saved_lm_data(d):
    """LMData fields from a checkpoint: before the PTB word mode, ``word`` meant word-exact."""
    if "val_data" not in d and d.get("tokens") == "word":
        return {**d, "tokens": "word-exact"}
    return dict(d)


def eval_streams(ids, batch, seq_len):
    """The evaluation batches of a token sequence: up to ``batch`` streams, state carried."""
    return StreamBatches(ids, min(batch, max(1, (len(ids) - 1) // seq_len)), seq_len)


@torch.no_grad()
def stream_loss(model, batches):
    """Mean loss in nats per token over evaluation batches, the state carried across them."""
    total, count = stream_sums(model, batches)
    return total / count


@torch.no_grad()
def stream_sums(model, batches, rows=lambda t: t, tail=True):
    """(summed loss in nats, tokens) over evaluation batches, of the streams ``rows`` keeps, and
    with ``tail`` the predictions after the rows' end, which continue the last row (its state
    carried): every token of the sequence is scored once."""
    total, count, state = 0.0, 0, None
    for x, y, _ in batches:
        x, y = rows(x), rows(y)
        loss, state = model.loss(x, y, state)
        total += float(loss) * y.numel()
        count += y.numel()
    x, y = batches.tail
    if tail and y.numel():
        last = (lambda s: s[:, -1:].contiguous())                           # (L, 1, H)
        state = tuple(map(last, state)) if isinstance(state, tuple) else last(state)
        loss, _ = model.loss(x, y, state)
        total += float(loss) * y.numel()
        count += y.numel()
    return total, count


def shared_stream_loss(model, batches):
    """stream_loss with the streams shared out over the ranks of a data-parallel run (when their
    number divides the streams; else each rank scores them all) and the sums added up."""
    world = distributed.current()
    if not world.active or batches.batch % world.size:
        return stream_loss(model, batches)
    sums = torch.tensor(stream_sums(model, batches, distributed.shard,   # the last row's rank
                                    tail=world.rank == world.size - 1), dtype=torch.float64)
    total, count = distributed.all_reduce_sum(sums, "the validation").tolist()
    return total / count


def perplexity(nats):
    """exp(nats), inf past float64's range (above about 709 nats), nan for a nan loss."""
    return math.exp(nats) if nats < 709 else math.inf if nats >= 709 else math.nan


def loss_figures(prefix, nats):
    return {f"{prefix}_loss": nats, f"{prefix}_bits": nats / math.log(2),
            f"{prefix}_ppl": perplexity(nats)}


class LMTask:
    unit = "char"

    def __init__(self, model, vocab, train_ids, val_ids, data_config, test_ids=None):
        self.model, self.vocab, self.data_config = model, vocab, data_config
        self.unit = UNITS[vocab.kind]
        d = data_config
        if d.eval_tokens:
            val_ids = val_ids[: d.eval_tokens + 1]
        try:
            self.train = StreamBatches(train_ids, d.batch, d.seq_len)
        except DataError as e:   # the file it came from, and which part
            raise DataError(f"{d.data}: its training part: {e}") from None
        self.val = eval_streams(val_ids, d.batch, d.seq_len)
        self.test = eval_streams(test_ids, d.batch, d.seq_len) if test_ids is not None else None
        self.state = None

    def train_batch(self, step):
        x, y, first = self.train[step]                                       # (B, T) each
        return distributed.shard(x), distributed.shard(y), first         # this rank's rows

    @property
    def chance_loss(self):
        """A uniform guess's loss over the output tokens (the trainer's floor for a blow-up)."""
        return math.log(len(self.vocab))

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
        """Validation loss over the whole validation stream, state carried as in training (in a
        data-parallel run, each rank scores its share of the streams)."""
        return loss_figures("val", shared_stream_loss(self.model, self.val))

    def test_metrics(self):
        """With --test-data: the test file's loss, bits and perplexity per token."""
        if self.test is None:
            return {}
        return {**loss_figures("test", stream_loss(self.model, self.test)),
                "test_tokens": self.test.tokens, "unit": self.unit}

    def state_dict(self):
        s = self.state
        return {"state": list(s) if isinstance(s, tuple) else s}

    def load_state_dict(self, d):
        """The carried state of every stream; a data-parallel rank keeps its own rows."""
        s = d.get("state")
        rows = lambda t: distributed.shard(t, dim=1)   # noqa: E731 (L, B, H) -> (L, B / ranks, H)
        if isinstance(s, list):
            self.state = tuple(rows(t) for t in s)
        else:
            self.state = None if s is None else rows(s)

    @staticmethod
    def join_states(states):
        """The state dicts of the ranks, in rank order -> one for all the streams (rows joined)."""
        parts = [d.get("state") for d in states]
        if any(p is None for p in parts):   # a rank restarted its state: all restart on resume
            return {"state": None}
        if isinstance(parts[0], list):
            return {"state": [torch.cat([p[i] for p in parts], 1) for i in range(len(parts[0]))]}
        return {"state": torch.cat(parts, 1)}

    def checkpoint_extras(self):
        return {"kind": "lm", "model_config": asdict(self.model.config),
                "vocab": self.vocab.to_dict(), "data_config": asdict(self.data_config)}


LARGE_VALIDATION = 1_000_000   # validation tokens past which the log says --eval-tokens


def encode_file(vocab, text, path):
    """Token ids of a file's text, a (N,) long tensor; a token the vocabulary lacks (and no <unk>
    to stand for it) raises DataError naming the file and line where it first occurs."""
    try:
        return vocab.encode_tensor(text)
    except KeyError:
        for line, words in enumerate(text.split("\n"), 1):   # whole tokens, line by line
            missing = next((t for t in vocab.tokenize(words) if t not in vocab.stoi), None)
            if missing is not None:
                break
        else:   # a line end itself
            missing = next(t for t in vocab.tokenize(text) if t not in vocab.stoi)
            line = text[:text.find(missing)].count("\n") + 1 if missing in text else "?"
        flag = next(k for k, v in VOCAB_KINDS.items() if v == vocab.kind and k != "auto")
        raise DataError(f"{place_of(path, line)}: token {missing!r} is not in the model's "
                        f"vocabulary of {len(vocab):,} tokens (--tokens {flag}; it has no "
                        f"<unk>); train with --max-vocab N to map rare and unseen tokens to "
                        f"<unk>") from None


def place_of(path, line):
    """``path:line``; for a folder of .txt files, the file that holds that line of their joined
    text (:func:`read_folder`) and the line within it."""
    if line == "?" or not Path(path).is_dir():
        return f"{path}:{line}"
    for f in txt_files(path):
        text = lf_text(read_text(f))
        lines = text.count("\n") + (not text.endswith("\n"))
        if line <= lines:
            return f"{f}:{line}"
        line -= lines
    return f"{path}:?"


def lf_text(text):
    """``text`` with its line ends (``\\r\\n``, a lone ``\\r``) written as ``\\n``: a file
    saved on Windows reads as the same tokens as its LF copy."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def txt_files(folder):
    """The .txt files (any case of the suffix) under ``folder``, in path order; hidden folders and
    files (``.ipynb_checkpoints/``, ``.git/``, macOS ``._`` resource files) are left out."""
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root, n) for n in names
                  if n.lower().endswith(".txt") and not n.startswith(".")]
    return sorted(f for f in found if f.is_file())


def read_folder(folder, flag=None):
    """(text, number of files) of a folder's .txt files (:func:`txt_files`), joined, each
    ending with a newline; a folder without any raises DataError naming it (and ``flag``)."""
    files = txt_files(folder)
    if not files:
        where = f"{flag} {str(folder)!r}" if flag else str(folder)
        raise DataError(f"{where} is a folder without .txt files (hidden ones not counted); "
                        f"expected a data file, a folder of .txt files"
                        f"{' or a data set name' if flag else ''}")
    texts = (lf_text(read_text(f)) for f in files)
    return "".join(t if t.endswith("\n") else t + "\n" for t in texts), len(files)


def load_corpus(data, flag="--data"):
    """(path, text, files) of --data (or ``flag``): a data set, a UTF-8 file, or a folder of .txt
    files (:func:`read_folder`; ``files`` is their number, else 0); line ends are ``\\n``."""
    folder = expanded(data)
    if data in DATASETS or not folder.is_dir():
        path = resolve(data, flag)
        return path, lf_text(read_text(path)), 0
    return (folder, *read_folder(folder, flag))


def read_corpus(data, flag="--data"):
    """(path, text) of --data (or ``flag``), as :func:`load_corpus` reads it."""
    path, text, _ = load_corpus(data, flag)
    return path, text


def warn_seen(text, extra):
    """Warn where a --val-data or --test-data text is part of the training text, or the test
    text is the validation text: its loss scores what the model trained on, or what chose
    best.pt. ``extra``: {"val" / "test": (path, text)} of the files given."""
    flags = {"val": "--val-data", "test": "--test-data"}
    for name, (path, part) in extra.items():
        if part.strip() and part.strip() in text:
            warn(f"{flags[name]} {path}: its text is part of the training text: its loss "
                 f"scores the model on what it trained on")
    if len(extra) == 2 and extra["val"][1].strip() == extra["test"][1].strip():
        warn(f"--test-data {extra['test'][0]}: the same text as --val-data: the test scores "
             f"the text that chose best.pt, not text the run never weighed")


def build_lm_task(data_config, model_config, log=print, checkpoint=None):
    """Read the corpus (and the --val-data/--test-data files), build the vocabulary and the
    model; model_config.vocab_size is filled in. Resuming (``checkpoint``), the vocabulary is the
    checkpoint's, so token ids keep their meaning even if the corpus has changed.

    The vocabulary is that of all the given text (training, validation and test files): a closed
    vocabulary, as for the Penn Treebank; the model is created under the current torch seed.
    """
    d = data_config
    path, text, files = load_corpus(d.data)
    extra = {name: read_corpus(f, flag) for name, f, flag in
             (("val", d.val_data, "--val-data"), ("test", d.test_data, "--test-data")) if f}
    warn_seen(text, extra)
    kind = VOCAB_KINDS[d.tokens]
    if checkpoint is not None:
        vocab = Vocab.from_dict(checkpoint["vocab"])
    else:
        vocab = Vocab.build([text, *(t for _, t in extra.values())], kind, d.max_vocab or None)
    ids = torch.as_tensor(encode_file(vocab, text, path), dtype=torch.long)
    if "val" in extra:
        train_ids, val_ids = ids, torch.as_tensor(encode_file(vocab, extra["val"][1], extra["val"][0]))
        where = f"validation {extra['val'][0]}"
    else:
        train_ids, val_ids = split_ids(ids, d.val_fraction, path=path)
        where = f"validation the last {d.val_fraction:.0%}"
    if len(val_ids) < 2:
        raise DataError(f"{d.val_data or path}: the validation text has {len(val_ids)} token(s); "
                        f"need at least 2")
    test_ids = None
    if "test" in extra:
        test_ids = torch.as_tensor(encode_file(vocab, extra["test"][1], extra["test"][0]))
        if len(test_ids) < 2:
            raise DataError(f"{d.test_data}: the test text has {len(test_ids)} token(s); need at least 2")
    unit = UNITS[vocab.kind]
    files = f"{files} .txt file{'s' * (files != 1)}, " if files else ""
    test = f", test {d.test_data} ({len(test_ids):,})" if test_ids is not None else ""
    kind = "" if unit == "token" else f"{unit} "
    scored = (f", the first {d.eval_tokens:,} of them scored: --eval-tokens"
              if d.eval_tokens and d.eval_tokens + 1 < len(val_ids) else
              ", all scored at each evaluation: --eval-tokens N scores fewer"
              if not d.eval_tokens and len(val_ids) > LARGE_VALIDATION else "")   # (15M: minutes)
    log(f"{path}: {files}{len(ids):,} {kind}tokens, vocabulary {len(vocab):,}; "
        f"train {len(train_ids):,}, {where} ({len(val_ids):,}{scored}){test}")
    model_config.vocab_size = len(vocab)
    model = LanguageModel(model_config)
    model.init_unigram(torch.bincount(train_ids, minlength=len(vocab)))
    return LMTask(model, vocab, train_ids, val_ids, d, test_ids)


def load_lm(path, checkpoint=None):
    """(model in eval mode, vocab) from a run folder (its best.pt) or a checkpoint file (or the
    checkpoint already loaded from it)."""
    ckpt = checkpoint or load_checkpoint(path, kind="lm")
    with built_from(path):
        model = LanguageModel(LMConfig(**saved_lm_config(ckpt["model_config"])))
        model.load_state_dict(ckpt["model"])
        vocab = Vocab.from_dict(ckpt["vocab"])
        if len(vocab) != model.config.vocab_size:
            raise ValueError(f"its vocabulary has {len(vocab)} tokens, its model predicts "
                             f"{model.config.vocab_size}")
        return model.eval(), vocab


def evaluate_file(run, path):
    """Loss in nats and bits per token and perplexity of a trained LM on a text file (or a folder
    of .txt files, as ``--data`` reads it), read as the validation text is (the run's batch and
    sequence length, the state carried)."""
    ckpt = load_checkpoint(run, kind="lm")
    model, vocab = load_lm(run, ckpt)
    d = LMData(**saved_lm_data(ckpt["data_config"]))
    text = read_folder(path)[0] if Path(path).is_dir() else lf_text(read_text(path))
    ids = torch.as_tensor(encode_file(vocab, text, path), dtype=torch.long)
    if len(ids) < 2:
        raise DataError(f"{path}: {len(ids)} token(s); need at least 2 to score a prediction")
    unknown = int((ids == vocab.unk).sum()) if vocab.unk is not None else 0
    if unknown * 4 > len(ids):   # <unk> is one easy token: such a text scores deceptively well
        warn(f"{path}: {unknown:,} of its {len(ids):,} tokens ({unknown / len(ids):.0%}) are "
             f"<unk>, {'characters' if vocab.kind == 'char' else 'words'} the model's "
             f"vocabulary lacks, each predicted as the one token "
             f"<unk>: the figures flatter the model on this text")
    nats = stream_loss(model, eval_streams(ids, d.batch, d.seq_len))
    return {"kind": "lm", "file": str(path), "size": len(ids) - 1, "unit": UNITS[vocab.kind],
            "loss": nats, "bits": nats / math.log(2), "ppl": perplexity(nats),
            **({"unknown": unknown} if vocab.unk is not None else {})}
