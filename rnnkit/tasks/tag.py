"""N-to-N sequence labelling as a trainer task, and the tagger that ``rnnkit tag`` uses.

Sentences are (words, tags) pairs (:mod:`rnnkit.data.tagged`); a fixed seeded split keeps a
held-out test part. Metrics: token accuracy, and per-tag precision/recall/F1 in the report.
Shapes: B batch, T words, W characters a word.
"""
from dataclasses import asdict, dataclass, field

import torch

from rnnkit.data import DataError, resolve
from rnnkit.data.labelled import split_examples
from rnnkit.data.tagged import read_tagged
from rnnkit.data.vocab import Vocab
from rnnkit.models.tagger import SequenceTagger, TaggerConfig
from rnnkit.tasks.common import Batches, build_vocab, chunks, encode, pad
from rnnkit.tasks.metrics import SEGMENT_TAGS, accuracy, f1_report, segmentation_f1
from rnnkit.train.checkpoint import load_checkpoint

EVAL_BATCH = 128


@dataclass
class TagData:
    data: str = field(default="pd1998-pos", metadata={
        "help": "data set name (rnnkit data list), a word/tag file or a CoNLL-U file"})
    batch: int = field(default=64, metadata={"help": "sentences per training batch"})
    min_count: int = field(default=2, metadata={
        "help": "training words seen fewer times become <unk> (so <unk> gets trained)"})
    max_word_chars: int = field(default=4, metadata={
        "help": "character features see each word's first N characters"})
    column: int = field(default=3, metadata={
        "help": "CoNLL-U files: the tag column, counted from 0 (3: UPOS, 4: XPOS)"})
    test_fraction: float = field(default=0.1, metadata={
        "help": "fraction of the sentences held out as the test part"})
    val_fraction: float = field(default=0.05, metadata={
        "help": "fraction of the sentences for validation (which picks best.pt)"})
    split_seed: int = field(default=0, metadata={
        "help": "seed of the train/validation/test split and of the batch order"})


class Encoder:
    """Words -> the model's inputs: word ids, and per word its character ids."""

    def __init__(self, vocab, chars, max_word_chars):
        self.vocab, self.chars, self.W = vocab, chars, max_word_chars
        self._char_ids = {}   # word -> its character ids padded to W, computed once

    def char_ids(self, word):
        ids = self._char_ids.get(word)
        if ids is None:
            ids = encode(self.chars, word[:self.W])
            ids = self._char_ids[word] = ids + [0] * (self.W - len(ids))
        return ids

    def __call__(self, sentences):
        """B word lists -> (x (B, T), lengths (B,), chars (B, T, W), char_lengths (B, T))."""
        x, lengths = pad([encode(self.vocab, s) for s in sentences])
        B, T = x.shape
        chars = torch.zeros(B, T, self.W, dtype=torch.long)                   # (B, T, W)
        if self.chars is not None:
            for b, s in enumerate(sentences):
                chars[b, :len(s)] = torch.tensor([self.char_ids(w) for w in s])
        char_lengths = (chars > 0).sum(-1).clamp_min(1)                       # (B, T)
        return x, lengths, chars, char_lengths


class TagTask:
    unit = "token"

    def __init__(self, model, encoder, tags, parts, data_config):
        self.model, self.encoder, self.tags, self.data_config = model, encoder, tags, data_config
        self.index = {t: i for i, t in enumerate(tags)}
        self.train, self.val, self.test = parts
        self.batches = Batches(len(self.train), data_config.batch, data_config.split_seed,
                               lengths=[len(w) for w, _ in self.train])

    def make_batch(self, sents):
        x, lengths, chars, char_lengths = self.encoder([w for w, _ in sents])
        y, _ = pad([[self.index[t] for t in tags] for _, tags in sents])      # (B, T)
        return x, lengths, y, chars, char_lengths

    def train_batch(self, step):
        return self.make_batch([self.train[i] for i in self.batches(step)])

    def loss(self, batch):
        return self.model.loss(batch), int(batch[1].sum())

    @torch.no_grad()
    def scores(self, part, per_sentence=False):
        """(mean loss per token, gold tags, predicted tags) over a part, tokens flattened (or,
        with per_sentence, one list of tags per sentence)."""
        total, gold, pred = 0.0, [], []
        order = sorted(range(len(part)), key=lambda i: len(part[i][0]))   # less padding
        for r in chunks(len(part), EVAL_BATCH):
            sents = [part[order[i]] for i in r]
            batch = self.make_batch(sents)
            total += float(self.model.loss(batch)) * int(batch[1].sum())
            pred += [[self.tags[i] for i in s]
                     for s in self.model.decode(batch[0], batch[1], *batch[3:])]
            gold += [list(tags) for _, tags in sents]
        n = sum(len(g) for g in gold)
        if not per_sentence:
            gold, pred = [t for s in gold for t in s], [t for s in pred for t in s]
        return total / n, gold, pred

    def evaluate(self):
        loss, gold, pred = self.scores(self.val)
        return {"val_loss": loss, "val_accuracy": accuracy(gold, pred)}

    def test_metrics(self):
        loss, gold_s, pred_s = self.scores(self.test, per_sentence=True)
        gold, pred = [t for s in gold_s for t in s], [t for s in pred_s for t in s]
        out = {"test_loss": loss, "test_accuracy": accuracy(gold, pred), "test_tokens": len(gold),
               "test_per_tag": f1_report(gold, pred)}
        if {t.upper() for t in self.tags} <= SEGMENT_TAGS:   # a word segmentation: its word F1 too
            seg = segmentation_f1(gold_s, pred_s)
            out.update({"test_word_f1": seg["f1"], "test_word_precision": seg["precision"],
                        "test_word_recall": seg["recall"], "test_words": seg["words"]})
        return out

    def checkpoint_extras(self):
        e = self.encoder
        return {"kind": "tag", "model_config": asdict(self.model.config), "tags": list(self.tags),
                "vocab": e.vocab.to_dict(), "chars": e.chars.to_dict() if e.chars else None,
                "data_config": asdict(self.data_config),
                "char_tokens": all(len(w) == 1 for s, _ in self.train[:1000] for w in s)}


def build_tag_task(data_config, model_config, log=print):
    """Read and split the sentences, build word/char vocabularies and the tag set, and the model."""
    path = resolve(data_config.data)
    sents = read_tagged(path, data_config.column)
    parts = split_examples(sents, data_config.test_fraction, data_config.val_fraction,
                           data_config.split_seed)
    tags = sorted({t for _, ts in parts[0] for t in ts})
    unseen = sorted({t for p in parts[1:] for _, ts in p for t in ts} - set(tags))
    if unseen:   # rare tags only in held-out sentences: still part of the tag set
        tags += unseen
    vocab = build_vocab((w for w, _ in parts[0]), data_config.min_count)
    chars = build_vocab(([c for c in word] for w, _ in parts[0] for word in w)) \
        if model_config.char_embed > 0 else None
    log(f"{path}: {len(sents):,} sentences, {sum(len(w) for w, _ in sents):,} tokens, "
        f"{len(tags)} tags; train {len(parts[0]):,}, validation {len(parts[1]):,}, test "
        f"{len(parts[2]):,} sentences; vocabulary {len(vocab):,} words"
        + (f", {len(chars):,} characters" if chars else ""))
    model_config.vocab_size, model_config.num_tags = len(vocab), len(tags)
    model_config.char_vocab_size = len(chars) if chars else 0
    encoder = Encoder(vocab, chars, data_config.max_word_chars)
    return TagTask(SequenceTagger(model_config), encoder, tags, parts, data_config)


class Tagger:
    """A trained tagger for use: token lists in, tag lists out."""

    def __init__(self, model, encoder, tags, char_tokens=False):
        self.model, self.encoder, self.tags = model.eval(), encoder, tags
        self.char_tokens = char_tokens   # trained on single characters (segmentation)

    @classmethod
    def from_task(cls, task):
        return cls(task.model, task.encoder, task.tags, task.checkpoint_extras()["char_tokens"])

    @classmethod
    def load(cls, path):
        ckpt = load_checkpoint(path, kind="tag")
        model = SequenceTagger(TaggerConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
        chars = Vocab.from_dict(ckpt["chars"]) if ckpt["chars"] else None
        encoder = Encoder(Vocab.from_dict(ckpt["vocab"]), chars, ckpt["data_config"]["max_word_chars"])
        return cls(model, encoder, ckpt["tags"], ckpt["char_tokens"])

    def split(self, text):
        """A line of input -> tokens: whitespace-separated words, or characters for a model
        trained on single characters."""
        return [c for c in text if not c.isspace()] if self.char_tokens else text.split()

    @torch.no_grad()
    def tag(self, sentences, where="input"):
        """B token lists -> B tag lists; an empty sentence raises DataError naming its line."""
        for i, s in enumerate(sentences, 1):
            if not s:
                raise DataError(f"{where}:{i}: empty sentence (nothing to tag)")
        out = []
        for r in chunks(len(sentences), EVAL_BATCH):
            ids = self.model.decode(*self.encoder([sentences[i] for i in r]))
            out += [[self.tags[i] for i in s] for s in ids]
        return out
