"""Conditional generation (1→N) as a trainer task: label<TAB>sequence pairs -> ConditionalGenerator.

The first column is a class label (e.g. a country) or, when every line's first column is a list of
numbers (``0.1,0.5,-2``), a feature vector; one whole number a line taking few values (``1`` to
``5``, a year) is a label. The held-out split is fixed by a hash of the sequence
(:func:`rnnkit.data.pairs.split_of`), so a name seen under one country in training is never a
held-out name under another; ``--val-data`` / ``--test-data`` files replace those parts, and
:func:`evaluate_file` scores a trained run on any such file. ``evaluate`` measures the validation loss with the right condition
and with a wrong one (each label shifted to another class): the gap shows the condition matters.
Shapes: B batch, T time, F features.
"""
import math
import re
import zlib
from dataclasses import asdict, dataclass, field

import torch

from rnnkit.config import MAX_BATCH, MAX_COUNT, check
from rnnkit.data import Vocab, resolve
from rnnkit.data.feature_vectors import feature_rows, numbers
from rnnkit.data.pairs import (BOS_ID, EOS_ID, PAD_ID, UNK_ID, PairBatches, build_vocab, decode,
                               encode, own_splits, pad, read_numbered_pairs, read_pairs,
                               unknown_tokens)
from rnnkit.data.text import DataError
from rnnkit.data.vocab import EXACT_TOKENS
from rnnkit.decode import beam_search, sample
from rnnkit.models.conditional import CondConfig, ConditionalGenerator
from rnnkit.tasks import api_inputs
from rnnkit.tasks.common import warn, warn_shared
from rnnkit.train.checkpoint import built_from, check_sizes, load_checkpoint

SIDES = ("label", "sequence")   # a pair's two columns, as the messages name them


@dataclass
class CondData:
    data: str = field(default="names", metadata={
        "help": "data set name (rnnkit data list) or a TSV file of label<TAB>sequence lines"})
    tokens: str = field(default="char", metadata={
        "help": "tokenizer of the sequences: char or word", "choices": EXACT_TOKENS})
    batch: int = field(default=64, metadata={"help": "pairs per training batch",
                                              "range": (1, MAX_BATCH)})
    val_data: str = field(default="", metadata={
        "help": "a file like --data: the validation part, not a split of --data"})
    test_data: str = field(default="", metadata={
        "help": "a file like --data: the test part, not a split of --data"})
    val_pairs: int = field(default=2000, metadata={
        "help": "validation pairs the losses are measured on (0: all)", "range": (0, MAX_COUNT)})

    def __post_init__(self):
        check(self)


_WHOLE = re.compile(r"[-+]?\d+")
MAX_NUMBER_LABELS = 100


def parse_features(numbered, path):
    """Feature vectors (N, F) float32 if every source of ``numbered`` pairs (line, source,
    target) read from ``path`` is a list of numbers of one length, else None; vectors of
    another length or numbers not finite in float32 raise DataError naming file and line.
    One whole number a line that takes few values (a rating, a year, a class number: at most
    100, each on two lines on average) is a label, so None."""
    sources = [s for _, s, _ in numbered]
    if (all(_WHOLE.fullmatch(s) for s in sources)
            and len(set(sources)) <= min(MAX_NUMBER_LABELS, len(sources) // 2)):
        return None
    values = feature_rows([s for _, s, _ in numbered], path, [n for n, _, _ in numbered])
    return None if values is None else torch.from_numpy(values)


class Conditions:
    """Maps the first column onto model input: a label list, or feature vectors."""

    def __init__(self, labels=None, features=0):
        self.labels, self.features = labels, features
        self.index = {l: i for i, l in enumerate(labels or [])}

    def encode(self, source):
        """One source string -> a label id (int) or a feature list; unknown labels raise."""
        if self.features:
            values = numbers(source)
            if values is None or len(values) != self.features or not all(
                    math.isfinite(v) and abs(v) <= 3.4e38 for v in values):
                raise DataError(f"condition {source!r}: expected {self.features} finite numbers "
                                f"(the model's features), separated by commas, semicolons or "
                                f"spaces")
            return values
        i = self.index.get(source)
        if i is None:
            near = [l for l in self.labels if l.lower() == source.lower()]
            if near:
                return self.index[near[0]]
            raise DataError(f"unknown condition {source!r}; known: {', '.join(self.labels[:60])}")
        return i

    def tensor(self, encoded):
        return torch.tensor(encoded, dtype=torch.float if self.features else torch.long)

    def to_dict(self):
        return {"labels": self.labels, "features": self.features}


class CondTask:
    def __init__(self, model, vocab, conditions, splits, data_config, seed=0):
        self.model, self.vocab, self.conditions = model, vocab, conditions
        # word tokens hold the spaces between words too: the loss is per token, not per word
        self.data_config, self.unit = data_config, "char" if vocab.kind == "char" else "token"
        limit = model.config.max_len

        def enc(pairs, part):
            kept = [(conditions.encode(s), encode(vocab, t, bos=True, eos=True))
                    for s, t in pairs if len(encode(vocab, t)) < limit]
            if pairs and not kept:
                raise DataError(f"every one of the {len(pairs):,} {part} sequences is longer "
                                f"than {limit - 1} tokens (--max-len {limit} counts </s>): "
                                f"nothing to {'train' if part == 'training' else 'score'} on; "
                                f"raise --max-len")
            if len(kept) < len(pairs):
                warn(f"{len(pairs) - len(kept):,} {part} sequence(s) of {len(pairs):,} left "
                     f"out: longer than {limit - 1} tokens (--max-len {limit} counts </s>; "
                     f"raise it to keep them)")
            return kept
        self.train = PairBatches(enc(splits["train"], "training"), data_config.batch, seed)
        self.val = enc(splits["val"][:data_config.val_pairs or None], "validation")
        self.test = enc(splits["test"], "test")

    def train_batch(self, step):
        return self._collate(self.train[step])

    def _collate(self, examples):
        seq, _ = pad([t for _, t in examples])                                  # (B, T+1)
        return self.conditions.tensor([c for c, _ in examples]), seq

    @property
    def chance_loss(self):
        """A uniform guess's loss over the output tokens (the trainer's floor for a blow-up)."""
        return math.log(len(self.vocab))

    def loss(self, batch):
        return self.model.loss(*batch)

    @torch.no_grad()
    def evaluate(self):
        """Per-token validation loss with the right condition, and with a wrong one."""
        right, wrong = self.losses(self.val)
        return {"val_loss": right, "val_loss_wrong_cond": wrong}

    @torch.no_grad()
    def test_metrics(self):
        """The same on the held-out test names: the gap says how much the condition matters."""
        right, wrong = self.losses(self.test)
        return {"test_loss": right, "test_loss_wrong_cond": wrong,
                "cond_gain_nats": None if wrong is None else wrong - right,
                "test_size": len(self.test)}

    def losses(self, examples):
        """(right, wrong) mean cross-entropy per token over ``examples``."""
        return condition_losses(self.model, self.conditions, examples, self.data_config.batch)

    def checkpoint_extras(self):
        return {"kind": "cond", "model_config": asdict(self.model.config),
                "vocab": self.vocab.to_dict(), "conditions": self.conditions.to_dict(),
                "data_config": asdict(self.data_config)}


@torch.no_grad()
def condition_losses(model, conditions, examples, batch=64):
    """(right, wrong) mean cross-entropy per token over encoded ``examples`` [(condition, ids)]:
    with each example's own condition, and with a wrong one (:func:`wrong_conditions`). Where
    no other condition exists to compare with (one class; feature vectors all alike in these
    examples) wrong is None: a gap of 0 would be a figure never measured."""
    every = conditions.tensor([c for c, _ in examples])                         # (N,) or (N, F)
    others = wrong_conditions(model, every, [content_key(t) for _, t in examples])
    right = wrong = count = 0.0
    for k in range(0, len(examples), batch):
        part = examples[k:k + batch]
        cond, (seq, _) = every[k:k + batch], pad([t for _, t in part])
        loss, n = model.loss(cond, seq)                                         # seq (B, T+1)
        right, count = right + float(loss) * n, count + n
        if others is not None:
            wrong += float(model.loss(others[k:k + batch], seq)[0]) * n
    return right / max(count, 1), None if others is None else wrong / max(count, 1)


def content_key(ids):
    """A number that a sequence of token ids gives wherever it stands in a file."""
    return zlib.crc32(b",".join(str(int(i)).encode() for i in ids))


def wrong_conditions(model, cond, keys):
    """Another condition for each row of ``cond``: a label moved to a different class, by a
    shift that its example's ``keys`` entry (:func:`content_key`) picks, so the same example
    gets the same wrong label in any order of a file (the row's position picked it: a file's
    lines reordered scored another gain); a feature vector replaced by the next distinct
    vector of ``cond``. None where there is no other (one class, or one distinct vector)."""
    if model.config.features:
        rows, which = torch.unique(cond, dim=0, return_inverse=True)            # (U, F), (N,)
        return rows[(which + 1) % len(rows)] if len(rows) > 1 else None
    n = model.config.n_classes
    if n < 2:
        return None
    shift = 1 + torch.tensor(keys, dtype=torch.long) % (n - 1)                  # (N,) in [1, n-1]
    return (cond + shift) % n


def check_conditions(conditions, path):
    """Every first column of the pair file ``path`` is a known label (or a feature vector of the
    right length); else DataError naming the file and line."""
    for n, source, _ in read_numbered_pairs(path, SIDES):
        if conditions.features:
            values = feature_rows([source], path, [n], ambiguous=False)
            if values is None or values.shape[1] != conditions.features:
                raise DataError(f"{path}:{n}: expected {conditions.features} numbers as the "
                                f"condition, got {source[:80]!r}")
            continue
        try:
            conditions.encode(source)
        except DataError as e:
            raise DataError(f"{path}:{n}: {e}") from None


def build_cond_task(data_config, model_config, seed=0, log=print, checkpoint=None):
    """Read and split the pairs (or take the validation / test files), build the vocabulary
    (resuming ``checkpoint``, split as its run split it), the conditions and the model."""
    path = resolve(data_config.data)
    numbered = read_numbered_pairs(path, SIDES)
    pairs = [(s, t) for _, s, t in numbered]
    feats = parse_features(numbered, path)
    splits = own_splits(pairs, data_config.val_data, data_config.test_data, key=lambda p: p[1],
                        path=path, sides=SIDES)
    if feats is not None:
        conditions = Conditions(features=feats.shape[1])
        model_config.features, model_config.n_classes = feats.shape[1], 0
    else:
        conditions = Conditions(sorted({s for s, _ in pairs}))
        model_config.n_classes, model_config.features = len(conditions.labels), 0
    for given in (data_config.val_data, data_config.test_data):
        if given:
            check_conditions(conditions, given)
    warn_shared(splits["train"], (("--val-data", data_config.val_data, splits["val"]),
                                  ("--test-data", data_config.test_data, splits["test"])),
                key=lambda p: p, what="pairs", show=lambda p: repr(f"{p[0]}\t{p[1]}"[:60]))
    if feats is None:   # a label no training pair has: its embedding is never trained
        trained = {s for s, _ in splits["train"]}
        unseen = [s for part in ("val", "test") for s, _ in splits[part] if s not in trained]
        if unseen:
            warn(f"{path}: {len(unseen):,} validation or test pair(s) have a label no training "
                 f"pair has (e.g. {unseen[0]!r}): the model never learned those conditions, so "
                 f"their scores say little")
    vocab = build_vocab([t for _, t in splits["train"]], data_config.tokens,
                        stored=checkpoint and checkpoint["vocab"])
    model_config.vocab_size = len(vocab)
    log(f"{path}: {len(pairs):,} pairs, "
        + (f"{feats.shape[1]} features" if feats is not None else f"{model_config.n_classes} labels")
        + f"; train {len(splits['train']):,}, validation {len(splits['val']):,}; "
        f"vocabulary {len(vocab)} {vocab.kind} tokens")
    return CondTask(ConditionalGenerator(model_config), vocab, conditions, splits, data_config, seed)


def load_cond(path):
    """(model in eval mode, vocab, conditions) from a run folder or a checkpoint file."""
    ckpt = load_checkpoint(path, kind="cond")
    with built_from(path):
        model = ConditionalGenerator(CondConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
        c = ckpt["conditions"]
        check_sizes(("vocabulary", ckpt["vocab"].get("tokens"), model.config.vocab_size,
                     "tokens"),
                    *([("labels", c["labels"], model.config.n_classes, "labels")]
                      if model.config.n_classes else []))
        if c["features"] != model.config.features:
            raise ValueError(f"its conditions have {c['features']!r} features, its model "
                             f"{model.config.features}")
        return model.eval(), Vocab.from_dict(ckpt["vocab"]), Conditions(c["labels"], c["features"])


class _Speaking:
    """The generator as sampling and beam search see it: its steps never offer <pad>, <s> or
    <unk> (no sequence holds them: the vocabulary is every token of the training sequences), so a
    barely trained model, or a high temperature, cannot print ``<unk>`` in a name."""
    sample_steps = None    # no compiled loop: each step goes through ``step`` below

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        return getattr(self.model, name)

    def step(self, x_t, state):
        logits, state = self.model.step(x_t, state)                           # (B, V)
        return logits.index_fill(-1, _NEVER.to(logits.device), float("-inf")), state


_NEVER = torch.tensor([PAD_ID, BOS_ID, UNK_ID])


def _start(model, vocab, prime, length):
    """(the ids a sequence starts from: <s> and the prime's tokens, how many tokens may follow):
    the model's max_len in all, or ``length`` more where that is fewer."""
    missing = unknown_tokens(vocab, prime)
    if missing:
        raise DataError(f"--prime {prime!r}: {len(missing)} token(s) no training sequence holds: "
                        f"{missing[:10]!r}")
    ids = encode(vocab, prime, bos=True)
    room = model.config.max_len - len(ids)      # max_len counts </s>, as training's does
    if room < 1:
        raise DataError(f"--prime {prime!r} is {len(ids) - 1} tokens; the model writes "
                        f"sequences of at most {model.config.max_len - 1} (its "
                        f"max_len={model.config.max_len} counts </s>), so a prime of at most "
                        f"{model.config.max_len - 2} leaves it a token to write")
    return ids, room if length is None else min(length, room)


def check_request(source, n, prime, length):
    """A condition (a label or numbers, as text), ``n`` >= 1, a str prime, ``length`` >= 1."""
    api_inputs.text(source, "the condition")
    api_inputs.text(prime, "prime")
    api_inputs.count(n, "n")
    if length is not None:
        api_inputs.count(length, "length")


def generate(model, vocab, conditions, source, n=10, temperature=0.8, top_k=None, top_p=None,
             seed=None, prime="", length=None):
    """``n`` sequences sampled for the condition ``source`` (a label, or numbers for features),
    each starting with ``prime`` and going on for at most ``length`` tokens."""
    check_request(source, n, prime, length)
    cond = conditions.tensor([conditions.encode(source)] * n)                   # (n,) or (n, F)
    state = model.condition(cond)
    ids, room = _start(model, vocab, prime, length)
    start = torch.tensor([ids] * n, dtype=torch.long)                           # (n, 1 + P)
    steps = list(sample(_Speaking(model), start, room, temperature, top_k, top_p,
                        seed, stop_id=EOS_ID, state=state))                     # T x (n,)
    rows = torch.cat([start[:, 1:], torch.stack(steps, 1)], 1)                  # (n, P + T)
    return [decode(vocab, row) for row in rows]


def most_likely(model, vocab, conditions, source, n=10, beam_size=10, length_penalty=1.0,
                prime="", length=None):
    """The ``n`` most likely sequences for the condition under beam search (``beam_size`` >= n)
    that start with ``prime`` and go on for at most ``length`` tokens."""
    check_request(source, n, prime, length)
    api_inputs.count(beam_size, "beam_size")
    if n > beam_size:   # a beam of K holds K hypotheses (it was widened without a word)
        raise ValueError(f"the {n} most likely sequences need beam_size {n} or more, got "
                         f"{beam_size}")
    api_inputs.number(length_penalty, "length_penalty", 0, 10)
    state = model.condition(conditions.tensor([conditions.encode(source)]))
    ids, room = _start(model, vocab, prime, length)
    hyps = beam_search(_Speaking(model), ids, beam_size, room, EOS_ID, length_penalty,
                       state=state, n_best=n)
    return [decode(vocab, ids[1:] + best) for best, _ in hyps]


def evaluate_file(run, path):
    """Score a trained run on a file of condition<TAB>sequence pairs: the mean loss per token
    with the right condition and with a wrong one, and their gap. Unknown tokens of a sequence
    are scored as <unk>; sequences longer than the model's max_len are skipped and counted."""
    model, vocab, conditions = load_cond(run)
    check_conditions(conditions, path)
    limit, examples = model.config.max_len, []
    pairs = read_pairs(path, SIDES)
    for s, t in pairs:
        if len(encode(vocab, t)) < limit:
            examples.append((conditions.encode(s), encode(vocab, t, bos=True, eos=True)))
    if not examples:
        raise DataError(f"{path}: every sequence is longer than {limit - 1} tokens (the "
                        f"model's max_len={limit} counts </s>): nothing to score")
    with torch.no_grad():
        right, wrong = condition_losses(model, conditions, examples)
    return {"file": str(path), "kind": "cond", "size": len(examples),
            "skipped": len(pairs) - len(examples), "loss": right, "loss_wrong_cond": wrong,
            "cond_gain_nats": None if wrong is None else wrong - right}
