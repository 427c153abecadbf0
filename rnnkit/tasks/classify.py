"""N-to-1 text classification as a trainer task, and the predictor that ``rnnkit predict`` uses.

Examples are (label, text) pairs (:mod:`rnnkit.data.labelled`); a fixed seeded split keeps a
held-out test part that model selection never sees. Metrics: accuracy and macro-F1.
"""
from dataclasses import asdict, dataclass, field

import torch
from torch.nn import functional as F

from rnnkit.data import DataError, resolve
from rnnkit.data.labelled import read_labelled, split_examples, words
from rnnkit.data.vocab import Vocab
from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
from rnnkit.tasks.common import Batches, build_vocab, chunks, encode, pad
from rnnkit.tasks.metrics import accuracy, f1_report, macro_f1
from rnnkit.train.checkpoint import load_checkpoint

EVAL_BATCH = 256


@dataclass
class ClassifyData:
    data: str = field(default="mr", metadata={
        "help": "data set name (rnnkit data list) or a TSV/CSV file of label and text"})
    batch: int = field(default=32, metadata={"help": "texts per training batch"})
    min_count: int = field(default=2, metadata={
        "help": "training words seen fewer times become <unk>"})
    max_len: int = field(default=100, metadata={
        "help": "texts are cut to their first N tokens (training and prediction)"})
    word_dropout: float = field(default=0.1, metadata={
        "help": "training only: each word becomes <unk> with this probability (0: off)"})
    test_fraction: float = field(default=0.1, metadata={
        "help": "fraction of the examples held out as the test part"})
    val_fraction: float = field(default=0.1, metadata={
        "help": "fraction of the examples for validation (which picks best.pt)"})
    split_seed: int = field(default=0, metadata={
        "help": "seed of the train/validation/test split and of the batch order"})


class ClassifyTask:
    unit = "sequence"

    def __init__(self, model, vocab, labels, parts, data_config):
        self.model, self.vocab, self.labels, self.data_config = model, vocab, labels, data_config
        self.train, self.val, self.test = (self.tensorise(p) for p in parts)
        self.batches = Batches(len(self.train[0]), data_config.batch, data_config.split_seed,
                               lengths=[len(s) for s in self.train[0]])

    def tensorise(self, examples):
        """(label, text) pairs -> (list of id lists, (N,) label ids)."""
        index = {l: i for i, l in enumerate(self.labels)}
        ids = [encode(self.vocab, words(t)[:self.data_config.max_len]) for _, t in examples]
        return ids, torch.tensor([index[l] for l, _ in examples])

    def train_batch(self, step):
        idx = self.batches(step)
        x, lengths = pad([self.train[0][i] for i in idx])                     # (B, T), (B,)
        p = self.data_config.word_dropout
        if p > 0:   # seeded by the step, so a resumed run sees the same batch
            drop = torch.rand(x.shape, generator=torch.Generator().manual_seed(step)) < p
            x = x.masked_fill(drop & (x > 0), self.vocab.unk)
        return x, lengths, self.train[1][idx]

    def loss(self, batch):
        x, lengths, y = batch
        return F.cross_entropy(self.model(x, lengths), y), len(y)

    def scores(self, part):
        """(mean loss, gold ids, predicted ids) over a part."""
        ids, y = part
        total, pred = 0.0, []
        for r in chunks(len(ids), EVAL_BATCH):
            logits = self.model(*pad([ids[i] for i in r]))                    # (B, K)
            total += float(F.cross_entropy(logits, y[r.start:r.stop], reduction="sum"))
            pred += logits.argmax(1).tolist()
        return total / len(ids), y.tolist(), pred

    def evaluate(self):
        loss, gold, pred = self.scores(self.val)
        return {"val_loss": loss, "val_accuracy": accuracy(gold, pred),
                "val_macro_f1": macro_f1(gold, pred)}

    def test_metrics(self):
        loss, gold, pred = self.scores(self.test)
        names = [self.labels[i] for i in gold], [self.labels[i] for i in pred]
        return {"test_loss": loss, "test_accuracy": accuracy(gold, pred),
                "test_macro_f1": macro_f1(gold, pred), "test_size": len(gold),
                "test_per_class": f1_report(*names)}

    def checkpoint_extras(self):
        return {"kind": "classify", "model_config": asdict(self.model.config),
                "vocab": self.vocab.to_dict(), "labels": list(self.labels),
                "data_config": asdict(self.data_config)}


def build_classify_task(data_config, model_config, log=print):
    """Read and split the examples, build the vocabulary from the training part and the model."""
    path = resolve(data_config.data)
    examples = read_labelled(path)
    labels = sorted({l for l, _ in examples})
    if len(labels) < 2:
        raise DataError(f"{path}: need at least 2 distinct labels, got {labels}")
    parts = split_examples(examples, data_config.test_fraction, data_config.val_fraction,
                           data_config.split_seed)
    vocab = build_vocab((words(t) for _, t in parts[0]), data_config.min_count)
    log(f"{path}: {len(examples):,} examples, labels {labels}; train {len(parts[0]):,}, "
        f"validation {len(parts[1]):,}, test {len(parts[2]):,}; vocabulary {len(vocab):,}")
    model_config.vocab_size, model_config.num_classes = len(vocab), len(labels)
    return ClassifyTask(SequenceClassifier(model_config), vocab, labels, parts, data_config)


class Classifier:
    """A trained classifier for prediction: text in, label and class probabilities out."""

    def __init__(self, model, vocab, labels, max_len):
        self.model, self.vocab, self.labels, self.max_len = model.eval(), vocab, labels, max_len

    @classmethod
    def from_task(cls, task):
        return cls(task.model, task.vocab, task.labels, task.data_config.max_len)

    @classmethod
    def load(cls, path):
        ckpt = load_checkpoint(path, kind="classify")
        model = SequenceClassifier(ClassifierConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
        return cls(model, Vocab.from_dict(ckpt["vocab"]), ckpt["labels"],
                   ckpt["data_config"]["max_len"])

    @torch.no_grad()
    def predict(self, texts, where="input"):
        """[(label, {label: probability}), ...] for each text; an empty text raises DataError
        naming ``where`` and the text's position (1-based)."""
        ids = []
        for i, text in enumerate(texts, 1):
            toks = words(text)[:self.max_len]
            if not toks:
                raise DataError(f"{where}:{i}: empty text (nothing to classify)")
            ids.append(encode(self.vocab, toks))
        out = []
        for r in chunks(len(ids), EVAL_BATCH):
            probs = torch.softmax(self.model(*pad([ids[i] for i in r])), dim=1)  # (B, K)
            for p in probs.tolist():
                out.append((self.labels[max(range(len(p)), key=p.__getitem__)],
                            dict(zip(self.labels, p))))
        return out

    def check_label(self, label, where):
        if label not in self.labels:
            raise DataError(f"{where}: unknown label {label!r}; the model knows {self.labels}")
