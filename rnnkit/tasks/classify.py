"""N-to-1 text classification as a trainer task (the trained classifier that ``rnnkit predict``
uses is :mod:`rnnkit.tasks.classify_trained`).

Examples are (label, text) pairs (:mod:`rnnkit.data.labelled`); a fixed seeded split keeps a
held-out test part that model selection never sees (or ``--val-data`` / ``--test-data`` files are
those parts). Texts are read as words or, for scripts written without spaces (Chinese, Japanese,
Thai, ...), as characters with hashed character n-grams; the choice is stored in the checkpoint.
Metrics: accuracy and macro-F1.
"""
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F

from rnnkit.config import (MAX_BATCH, MAX_COUNT, MAX_SEED, MAX_STEPS, ConfigError, check,
                           check_fractions)
from rnnkit.data import DataError, resolve
from rnnkit.data.labelled import own_parts, read_labelled, table_suffix
from rnnkit.data.text_tokens import TOKENIZERS, WORD_FORM, resolve_tokens, word_splitter
from rnnkit.models.bag_fit import BLENDS, blended_state, linear_scorer, linear_weights, start_bag
from rnnkit.models.classifier import BAG_PARAMS, MIN_BAG_BUCKETS, SequenceClassifier, gram_space
from rnnkit.tasks.common import (Batches, build_vocab, drop_tokens, length_chunks, warn,
                                 warn_shared)
from rnnkit.tasks.classify_text import BAG_LEN, MAX_LEN, TextEncoder, batch
from rnnkit.tasks.classify_labels import (check_labels, given_classes, only_classes, read_classes,
                                          warn_unlabelled)
from rnnkit.tasks.classify_prior import balanced_weights, log_prior, prior_shift, shifted_bias
from rnnkit.tasks.metrics import accuracy, f1_report, macro_f1
from rnnkit.train import distributed

EVAL_BATCH = 256
CHAR_GRAMS = 5   # --char-grams -1 (auto) on words: their character 2-5-grams in the bag
EVAL_TOKENS = 1 << 18    # an evaluation batch, padded: at most this many steps (or one text)


@dataclass
class ClassifyData:
    data: str = field(default="mr", metadata={
        "help": "data set name (rnnkit data list) or a TSV/CSV file of label and text"})
    val_data: str = field(default="", metadata={
        "help": "a file like --data: the validation part, not a split of --data"})
    test_data: str = field(default="", metadata={
        "help": "a file like --data: the test part, not a split of --data"})
    classes: str = field(default="", metadata={
        "help": "read only these labels, e.g. neg,pos (a folder: only these class folders)"})
    tokens: str = field(default="auto", metadata={
        "help": "char, word or auto (char for Chinese, Japanese, Thai...: no spaces)",
        "choices": ("auto", *TOKENIZERS)})
    batch: int = field(default=32, metadata={"help": "texts per training batch",
                                              "range": (1, MAX_BATCH)})
    min_count: int = field(default=2, metadata={
        "help": "training words seen fewer times become <unk>", "range": (0, MAX_COUNT)})
    max_len: int = field(default=0, metadata={
        "help": "the RNN reads a text's first N tokens, the bag 100,000; 0: 100 words, 300 chars",
        "range": (0, MAX_STEPS)})
    class_weight: str = field(default="none", metadata={
        "help": "none, or balanced: each class weighs as much in the loss (rare ones more)",
        "choices": ("none", "balanced")})
    word_dropout: float = field(default=0.1, metadata={
        "help": "training only: each token becomes <unk> with this probability (0: off)",
        "range": "[0, 1)"})
    test_fraction: float = field(default=0.1, metadata={
        "help": "fraction of the examples held out as the test part", "range": "(0, 1)"})
    val_fraction: float = field(default=0.1, metadata={
        "help": "fraction of the examples for validation (which picks best.pt)", "range": "(0, 1)"})
    split_seed: int = field(default=0, metadata={
        "help": "seed of the train/validation/test split and of the batch order",
        "range": (0, MAX_SEED)})

    def __post_init__(self):
        check(self)
        check_fractions(self)
        given_classes(self.classes)


class ClassifyTask:
    unit = "sequence"

    def __init__(self, model, encoder, labels, parts, data_config):
        self.model, self.encoder, self.labels, self.data_config = model, encoder, labels, data_config
        self.vocab = encoder.vocab
        self.step_taken = None   # the step train_batch last gave a batch for
        self.train, self.val, self.test = (self.tensorise(p) for p in parts)
        self.weight = (balanced_weights(self.train[1], len(labels))                 # (K,)
                       if data_config.class_weight == "balanced" else None)
        self._start = ({k: v.clone() for k, v in model.state_dict().items()}   # initial weights
                       if self.eval_at_start else None)
        self.linear = None        # the fitted linear start's weights, when mixes are validated
        self.blend = 0.0          # the linear start's share in the model last validated
        self._linear_val = None   # (N_val, K) its validation logits, computed once
        self.shift = 0.0          # τ: the model last validated predicts argmax(z - τ log_prior)
        self.log_prior = log_prior(self.train[1], len(labels))                        # (K,)
        self.batches = Batches(len(self.train[0]), data_config.batch, data_config.split_seed,
                               lengths=[len(ids) for ids, _ in self.train[0]])

    def tensorise(self, examples):
        """(label, text) pairs -> (list of encoded texts, (N,) label ids)."""
        index = {l: i for i, l in enumerate(self.labels)}
        return ([self.encoder(t) for _, t in examples],
                torch.tensor([index[l] for l, _ in examples]))

    def fold_average(self, steps):
        """Fold the weights after ``steps`` optimiser steps into the model's moving average,
        unless they are in it already (average=0: nothing). Called before each step and at
        each evaluation, so the average validated after step n holds the weights of steps
        1..n, and a resumed run (the average is in its checkpoint) folds in each step once."""
        average = self.model.average
        if average is not None and int(average.updates) < steps:
            self.model.update_average()

    @property
    def eval_at_start(self):
        """With a fitted linear start, step 0 (the linear model) is validated: best.pt may keep
        it."""
        return self.model.bag is not None and self.model.config.linear_start

    def before_training(self, log=print, time_left=None):
        """A fresh run's start (not a resumed one's), with ``linear_start``: the model set to
        its bag alone, fitted as a logistic regression (:mod:`rnnkit.models.bag_fit`), which
        step 0 validates; training starts from the initial weights all the same. ``time_left``:
        seconds left of the run's time limit (the fit's penalty path stops before it)."""
        if self.eval_at_start:
            log(start_bag(self.model, *self.train, *self.val, log=log, weight=self.weight,
                          time_left=time_left))
            if self.model.config.blend:
                self.linear = linear_weights(self.model)

    def state_dict(self):
        """The linear start's weights (a resumed run goes on validating mixes with it)."""
        return {} if self.linear is None else {"linear": self.linear}

    def load_state_dict(self, state):
        self.linear = state.get("linear")   # (runs from before the mixes hold none)

    def best_model_state(self):
        """The state best.pt keeps when the last evaluation is the best so far: the mix it
        validated, its output bias less τ log(class share) where a prior shift τ validated
        better (None: the model as it is)."""
        state = blended_state(self.model, self.linear, self.blend) if self.blend else None
        if self.shift:
            state = shifted_bias(state or dict(self.model.state_dict()),
                                 -self.shift * self.log_prior)
        return state

    def train_batch(self, step):
        if self._start is not None:   # the first step trains from the initial weights (a run
            if step == 0:             # resumed at step 0 rebuilt them from the same seed)
                self.model.load_state_dict(self._start)
            self._start = None
        self.step_taken = step
        self.fold_average(step)
        idx = self.batches(step)
        x, lengths, grams = batch([self.train[0][i] for i in idx])            # (B, T), (B,)
        p = self.data_config.word_dropout
        if p > 0:   # seeded by the step, so a resumed run sees the same batch (and by the
            world = distributed.current()   # rank: each rank's share its own draws)
            gen = torch.Generator().manual_seed(step if not world.active else
                                                step * world.size + world.rank)
            x = drop_tokens(x, p, gen, self.vocab.unk)
            if grams is not None:                      # a dropped n-gram embeds as nothing
                grams = grams.masked_fill(torch.rand(grams.shape, generator=gen) < p, 0)
        return x, lengths, grams, self.train[1][idx]

    def loss(self, batch):
        x, lengths, grams, y = batch
        return F.cross_entropy(self.model(x, lengths, grams), y, weight=self.weight), len(y)

    def logits(self, part, model=None):
        """(N, K) logits of ``model`` (the task's) for a part's texts."""
        encoded = part[0]
        out = torch.zeros(len(encoded), len(self.labels))
        for r in length_chunks([len(ids) for ids, _ in encoded], EVAL_BATCH, EVAL_TOKENS):
            out[r] = (model or self.model)(*batch([encoded[i] for i in r]))
        return out

    def scores(self, part, logits=None):
        """(mean loss, gold ids, predicted ids) over a part (of ``logits`` if given, else the
        model's); with class weights, the loss is the weighted mean, as training has it."""
        y = part[1]
        z = self.logits(part) if logits is None else logits                  # (N, K)
        loss = float(F.cross_entropy(z, y, weight=self.weight))
        return loss, y.tolist(), z.argmax(1).tolist()

    def _scorer(self):
        """The linear start's scorer. Its bag's random start (overwritten) draws from the global
        stream, as it always has at a run's first evaluation (step 0); a resumed run builds it
        after steps, where the run never stopped did not: there it draws nothing, so dropout's
        stream goes on as if the run had not stopped."""
        if self.step_taken is None:
            return linear_scorer(self.model.config, self.linear)
        with torch.random.fork_rng(devices=[]):
            return linear_scorer(self.model.config, self.linear)

    @property
    def chance_loss(self):
        """A uniform guess's loss over the classes (the trainer's floor for a blow-up)."""
        return math.log(self.model.config.num_classes)

    def evaluate(self):
        """Validation figures. With the linear start's weights at hand, each evaluation also
        validates mixes of the trained network's logits with the linear model's (its share
        from BLENDS); the best mix, where it validates better than the network alone, is the
        model this evaluation stands for (``val_blend``: the linear share) and the one best.pt
        keeps. Then, with ``prior_shift``, the logits less τ log(class share) (τ from
        classify_prior.PRIOR_SHIFTS; the shares are the training part's): a τ whose predictions have a higher
        validation macro-F1 than the model's own argmax, and do in at least SHIFT_EVIDENCE of
        the bootstrap resamples of the validation part, stands for the evaluation too
        (``val_prior_shift``; the higher macro-F1 of two such τ wins). The shift moves
        decisions towards rare classes, which a model fitted by its mean loss under-predicts;
        ``val_loss`` stays the unshifted model's, so the shift never changes which evaluation
        is best."""
        if self.step_taken is not None:   # the weights after the step just taken
            self.fold_average(self.step_taken + 1)
        z = self.logits(self.val)                                             # (N_val, K)
        loss, gold, pred = self.scores(self.val, z)
        self.blend = 0.0
        if self.linear is not None:
            if self._linear_val is None:
                self._linear_val = self.logits(self.val, self._scorer())
            best = z
            for share in BLENDS if not torch.allclose(z, self._linear_val) else ():
                mix = share * self._linear_val + (1 - share) * z
                mixed = self.scores(self.val, mix)
                if mixed[0] < loss:
                    (loss, gold, pred), self.blend, best = mixed, share, mix
            z = best
        self.shift = 0.0
        if self.model.config.prior_shift:
            self.shift, shifted = prior_shift(z, self.val[1], self.log_prior)
            pred = shifted.tolist()
        metrics = {"val_loss": loss, "val_accuracy": accuracy(gold, pred),
                   "val_macro_f1": macro_f1(gold, pred)}
        if self.model.config.prior_shift:
            metrics["val_prior_shift"] = self.shift
        return metrics if self.linear is None else {**metrics, "val_blend": self.blend}

    def test_metrics(self):
        """The test part's figures; its loss is the plain mean cross-entropy, with or without
        --class-weight (as ``rnnkit eval`` gives it, and comparable between runs)."""
        z = self.logits(self.test)                                             # (N, K)
        loss, gold, pred = float(F.cross_entropy(z, self.test[1])), *self.scores(self.test, z)[1:]
        names = [self.labels[i] for i in gold], [self.labels[i] for i in pred]
        return {"test_loss": loss, "test_accuracy": accuracy(gold, pred),
                "test_macro_f1": macro_f1(gold, pred), "test_size": len(gold),
                "test_per_class": f1_report(*names)}

    def checkpoint_extras(self):
        return {"kind": "classify", "model_config": asdict(self.model.config),
                "vocab": self.vocab.to_dict(), "labels": list(self.labels),
                "data_config": asdict(self.data_config), **self.encoder.to_dict()}


def build_classify_task(data_config, model_config, log=print, checkpoint=None):
    """Read and split the examples (or take the validation / test files), choose word or
    character tokens, build the vocabulary from the training part and the model. Resuming
    ``checkpoint``, the run's tokens stand, read as its run read them (``word_form``)."""
    d = data_config
    path = resolve(d.data, folders=True)
    classes = given_classes(d.classes)
    examples = read_classes(path, classes, d.classes, log)
    labels = sorted({l for l, _ in examples})
    if len(labels) < 2:
        raise DataError(f"{path}: need at least 2 distinct labels, got {labels}")
    if not classes:          # (a label --classes names is meant)
        warn_unlabelled(path, examples, labels)
    alike = {}
    for label in labels:
        alike.setdefault(label.casefold(), []).append(label)
    alike = [group for group in alike.values() if len(group) > 1]
    if alike:
        warn(f"{path}: labels that differ only in case are different classes: "
             + "; ".join(" and ".join(repr(g) for g in group) for group in alike[:3])
             + (f" (and {len(alike) - 3} more)" if len(alike) > 3 else ""))
    counts = Counter(label for label, _ in examples)
    once = sum(c == 1 for c in counts.values())
    if len(labels) > max(20, len(examples) // 2) or (len(examples) >= 8
                                                     and once > len(examples) // 2):
        # most labels once: the columns swapped? (a small file too: 16 rows, 16 labels)
        sep = "," if table_suffix(path) == ".csv" else "<TAB>"
        raise DataError(f"{path}: {len(labels):,} distinct labels among {len(examples):,} "
                        f"examples, most of them once; expected the label first, then the text "
                        f"(a first line 'text{sep}label' says the text comes first)")

    def read_checked(given):   # a validation or test file: only labels of the training data
        folder = Path(given).is_dir()
        rows = read_labelled(given, with_lines=True, least=1, classes=folder and classes)
        if classes and not folder:
            rows = only_classes(rows, classes, d.classes, given, log)
            if not rows:
                raise DataError(f"{given}: no example of the classes {d.classes} (--classes)")
        return [(label, text) for label, text, _ in check_labels(rows, labels, given)]

    parts = own_parts(examples, d, read_checked)
    warn_shared(parts[0], (("--val-data", d.val_data, parts[1]),
                           ("--test-data", d.test_data, parts[2])), key=lambda e: e[1],
                what="texts")
    unseen = sorted(set(labels) - {l for l, _ in parts[0]})
    if unseen:   # a tiny or skewed file: the model can never predict these
        warn(f"{path}: the training part holds no example of label(s) {', '.join(unseen)} "
             f"({len(parts[0])} training examples); they will not be predicted")
    tokens = resolve_tokens(d.tokens, (t for _, t in parts[0]))
    form = WORD_FORM
    if checkpoint is not None:   # (a run of word_form 1 is read as it was trained)
        tokens, form = checkpoint.get("tokens", "word"), checkpoint.get("word_form", 1)
    split = word_splitter(tokens, form)
    vocab = build_vocab((split(t) for _, t in parts[0]), d.min_count)
    if model_config.ngrams == 0:
        model_config.ngrams = 3 if tokens == "char" else 2
    if model_config.bag == "auto":
        model_config.bag = "on"
    if model_config.bag_ngrams > max(model_config.ngrams, 1):
        raise ConfigError(f"--bag-ngrams {model_config.bag_ngrams}: the bag reads the encoder's "
                          f"n-grams, so at most --ngrams ({model_config.ngrams}); 0 chooses")
    if model_config.char_grams == -1:   # auto: words' character n-grams, in the bag
        model_config.char_grams = CHAR_GRAMS if tokens == "word" and model_config.bag == "on" else 0
    if model_config.char_grams and (tokens != "word" or model_config.bag != "on"):
        raise ConfigError(f"--char-grams {model_config.char_grams} reads the characters of "
                          f"words into the bag: it needs word tokens and --bag on, got "
                          f"{tokens} tokens and --bag {model_config.bag}")
    model_config.vocab_size, model_config.num_classes = len(vocab), len(labels)
    cap = max(MIN_BAG_BUCKETS, BAG_PARAMS // len(labels))
    if model_config.bag == "on" and model_config.bag_buckets > cap:   # 200 classes: 200M scores
        log(f"the bag: {cap:,} buckets, not {model_config.bag_buckets:,} (× {len(labels)} "
            f"classes, at most {BAG_PARAMS:,} scores)")
        model_config.bag_buckets = cap
    keep = d.max_len or MAX_LEN[tokens]
    if model_config.bag == "on":   # the bag reads the whole text, the recurrent part its start
        model_config.rnn_len, keep = keep, max(keep, BAG_LEN)
    encoder = TextEncoder(vocab, tokens, keep, model_config.ngrams, gram_space(model_config),
                          model_config.char_grams, form)
    log(f"{path}: {len(examples):,} examples, labels {labels}; train {len(parts[0]):,}, "
        f"validation {len(parts[1]):,}{f' ({d.val_data})' if d.val_data else ''}, test "
        f"{len(parts[2]):,}{f' ({d.test_data})' if d.test_data else ''}; {tokens} tokens"
        f"{' (auto)' if d.tokens == 'auto' else ''}, vocabulary {len(vocab):,}"
        + (f", {model_config.ngrams}-grams in {model_config.buckets:,} buckets"
           if model_config.ngrams > 1 else "")
        + (f", a linear bag of them ({model_config.bag_buckets:,} buckets)"
           if model_config.bag == "on" else "")
        + (f" and of the words' character 2-{model_config.char_grams}-grams"
           if model_config.char_grams else ""))
    return ClassifyTask(SequenceClassifier(model_config), encoder, labels, parts, d)
