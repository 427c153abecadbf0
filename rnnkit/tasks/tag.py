"""N-to-N sequence labelling as a trainer task (the trained tagger in use, and ``rnnkit eval``'s
scores of it on a file: :mod:`rnnkit.tasks.tag_trained`).

Sentences are (words, tags) pairs (:mod:`rnnkit.data.tagged`); a fixed seeded split keeps a
held-out test part (or ``--val-data`` / ``--test-data`` files are those parts). Metrics: token
accuracy, per-tag precision/recall/F1 in the report, and word F1 for a B/M/E/S segmentation.

Tokens: a model trained on single characters (a segmentation) reads a raw line as characters; with
``tokens=char`` a file of words is read as characters tagged ``B-tag`` (a word's first) and
``I-tag`` (the rest), so the model tags raw unsegmented text and words come back from the tags.
Shapes: B batch, T words, W characters a word.
"""
import math
from dataclasses import asdict, dataclass, field

import torch

from rnnkit.config import MAX_BATCH, MAX_COUNT, MAX_SEED, check, check_fractions
from rnnkit.data import DataError, resolve
from rnnkit.data.labelled import own_parts
from rnnkit.data.tagged import TAG_TOKENS, char_sentences, read_tagged, resolve_tag_tokens
from rnnkit.models import crf_fit
from rnnkit.models.bag_fit import BLENDS
from rnnkit.models.tagger import GRAM_BUCKETS, SequenceTagger, fitting_buckets, window_buckets
from rnnkit.tasks.common import (Batches, build_vocab, chunks, drop_tokens, pad, warn,
                                 warn_shared)
from rnnkit.tasks.metrics import (SEGMENT_TAGS, accuracy, chunk_f1, f1_report,
                                  is_chunk_tagging, segmentation_f1)
from rnnkit.tasks.tag_features import Encoder, distinct_features

EVAL_BATCH = 128


@dataclass
class TagData:
    BY_NAME = ("data", "val_data", "test_data")   # the fields that read a data set by its name
    data: str = field(default="pd1998-pos", metadata={
        "help": "data set name (rnnkit data list), a word/tag file or a CoNLL-U file"})
    val_data: str = field(default="", metadata={
        "help": "a file like --data: the validation part, not a split of --data"})
    test_data: str = field(default="", metadata={
        "help": "a file like --data: the test part, not a split of --data"})
    tokens: str = field(default="auto", metadata={
        "help": "word, char (B-/I- tags a character) or auto (char if tokens are 1 char)",
        "choices": TAG_TOKENS})
    batch: int = field(default=64, metadata={"help": "sentences per training batch",
                                              "range": (1, MAX_BATCH)})
    min_count: int = field(default=2, metadata={
        "help": "training words seen fewer times become <unk> (so <unk> gets trained)",
        "range": (0, MAX_COUNT)})
    word_dropout: float = field(default=0.0, metadata={
        "help": "training only: each word becomes <unk> with this probability (0: off)",
        "range": "[0, 1)"})
    max_word_chars: int = field(default=10, metadata={
        "help": "character features see N of each word's characters (--word-chars)",
        "range": (1, 1000)})
    word_chars: str = field(default="ends", metadata={
        "help": "a longer word's N characters: ends (first N - N//2, last N//2) or first",
        "choices": ("ends", "first")})
    # CoNLL-U's ten columns: 0 is the ID and 1 the word itself, 2 to 9 may hold tags; a
    # CoNLL-2003 file's: 0 is the word, the tags follow (POS, chunk, named entity)
    column: int = field(default=0, metadata={
        "help": "the tag column of CoNLL-U / CoNLL-2003 files from 0 (0: UPOS; the last one)",
        "range": (0, 9)})
    test_fraction: float = field(default=0.1, metadata={
        "help": "fraction of the sentences held out as the test part", "range": "(0, 1)"})
    val_fraction: float = field(default=0.05, metadata={
        "help": "fraction of the sentences for validation (which picks best.pt)",
        "range": "(0, 1)"})
    split_seed: int = field(default=0, metadata={
        "help": "seed of the train/validation/test split and of the batch order",
        "range": (0, MAX_SEED)})

    def __post_init__(self):
        check(self)
        check_fractions(self)


class TagTask:
    unit = "token"

    def __init__(self, model, encoder, tags, parts, data_config, tokens="word"):
        self.model, self.encoder, self.tags, self.data_config = model, encoder, tags, data_config
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tags)}
        self.train, self.val, self.test = parts
        self.batches = Batches(len(self.train), data_config.batch, data_config.split_seed,
                               lengths=[len(w) for w, _ in self.train])
        self.linear = None        # the fitted linear CRF's weights, when mixes are validated
        self.blend = 0.0          # its share in the model last validated
        self._linear_val = None   # its validation emissions (N_val, K) and sentences, once
        self._start = ({k: v.clone() for k, v in model.state_dict().items()}   # initial weights
                       if self.eval_at_start else None)

    @property
    def eval_at_start(self):
        """With a linear start, step 0 (the fitted linear CRF) is validated: best.pt may keep
        it."""
        c = self.model.config
        return bool(c.linear_start and c.window and self.model.crf is not None)

    def linear_features(self, part):
        """(window buckets (N, S), sentence lengths, tag ids per sentence) of a part, as
        :func:`rnnkit.models.crf_fit.fit` reads them."""
        slots = self.model.config.gram_slots
        feats = torch.cat([self.encoder.sentence_grams(tuple(w))[:, slots:].long()
                           for w, _ in part])
        return feats, [len(w) for w, _ in part], [[self.index[t] for t in ts] for _, ts in part]

    def before_training(self, log=print, time_left=None):
        """A fresh run's start, with ``linear_start``: the model set to its linear term and CRF
        alone, fitted by L-BFGS (:mod:`rnnkit.models.crf_fit`), which step 0 validates; each
        evaluation then validates mixes of it with the network. Training starts from the
        initial weights all the same."""
        if not self.eval_at_start:
            return
        columns, U, trans, start, end, lam, val_loss = crf_fit.fit(
            self.linear_features(self.train), self.linear_features(self.val), len(self.tags), log,
            time_left)
        self.linear = {"columns": columns, "window": U, "trans": trans, "start": start,
                       "end": end}
        self.model.load_state_dict(crf_fit.blended_state(self.model, self.linear, 1.0))
        log(f"step 0 is the linear term alone: a CRF over its {len(columns):,} features seen in "
            f"training (λ {lam:g}, validation loss {val_loss:.4f}); training starts from the "
            f"initial weights")

    def state_dict(self):
        """The linear start's weights (a resumed run goes on validating mixes with it)."""
        return {} if self.linear is None else {"linear": self.linear}

    def load_state_dict(self, state):
        self.linear = state.get("linear")

    def best_model_state(self):
        """The mix of network and linear start the last evaluation validated (None: the
        model as it is)."""
        return (crf_fit.blended_state(self.model, self.linear, self.blend) if self.blend
                else None)

    def make_batch(self, sents):
        x, lengths, chars, char_lengths, *grams = self.encoder([w for w, _ in sents])
        y, _ = pad([[self.index[t] for t in tags] for _, tags in sents])      # (B, T)
        return x, lengths, y, chars, char_lengths, *grams

    def train_batch(self, step):
        if self._start is not None:   # the first step trains from the initial weights (a run
            if step == 0:             # resumed at step 0 rebuilt them from the same seed)
                self.model.load_state_dict(self._start)
            self._start = None
        x, *rest = self.make_batch([self.train[i] for i in self.batches(step)])
        p = self.data_config.word_dropout   # the word's characters and features still read it
        if p > 0:
            x = drop_tokens(x, p, torch.Generator().manual_seed(step), self.encoder.vocab.unk)
        return x, *rest

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

    @torch.no_grad()
    def emissions(self, part):
        """(N, K) float64 the model's tag scores of a part's tokens, sentences in order."""
        out = [None] * len(part)
        order = sorted(range(len(part)), key=lambda i: len(part[i][0]))
        for r in chunks(len(part), EVAL_BATCH):
            idx = [order[i] for i in r]
            batch = self.make_batch([part[i] for i in idx])
            z = self.model(batch[0], batch[1], *batch[3:]).double()         # (B, T, K)
            for b, (i, n) in enumerate(zip(idx, batch[1].tolist())):
                out[i] = z[b, :n]
        return torch.cat(out)

    @property
    def chance_loss(self):
        """A uniform guess's loss over the tags, a token (the trainer's floor for a blow-up)."""
        return math.log(len(self.tags))

    def evaluate(self):
        """Validation figures. With the linear start's weights at hand, each evaluation also
        validates mixes of the network with the linear CRF (emissions and transitions
        share·linear + (1 - share)·network, the share from BLENDS); the best mix, where it
        validates better than the network alone, is the model this evaluation stands for
        (``val_blend``) and the one best.pt keeps."""
        self.blend = 0.0
        if self.linear is None:
            loss, gold, pred = self.scores(self.val)
            return {"val_loss": loss, "val_accuracy": accuracy(gold, pred)}
        if self._linear_val is None:
            feats, lengths, tags = self.linear_features(self.val)
            self._linear_val = (crf_fit.linear_emissions(self.linear, feats),
                                crf_fit.Sentences(lengths, tags, len(self.tags)))
        lin, sentences = self._linear_val
        z = self.emissions(self.val)                                          # (N_val, K)
        net = [p.detach().double() for p in (self.model.crf.trans, self.model.crf.start,
                                             self.model.crf.end)]
        linear = [self.linear[k] for k in ("trans", "start", "end")]
        mix = lambda share: (share * lin + (1 - share) * z,
                             *(share * a + (1 - share) * b for a, b in zip(linear, net)))
        best = (crf_fit.objective(z, sentences, *net)[0], 0.0)
        # step 0: the model is the linear start (float32 sums of its rows: to 1e-4)
        same = all(torch.allclose(a, b, rtol=1e-4, atol=1e-4)
                   for a, b in zip((lin, *linear), (z, *net)))
        for share in BLENDS if not same else ():
            E, *crf = mix(share)
            loss = crf_fit.objective(E, sentences, *crf)[0]
            if loss < best[0]:
                best = (loss, share)
        self.blend = best[1]
        E, *crf = mix(self.blend)
        gold, pred = crf_fit.decode(E, sentences, *crf)
        return {"val_loss": best[0], "val_accuracy": accuracy(gold, pred),
                "val_blend": self.blend}

    def test_metrics(self):
        loss, gold_s, pred_s = self.scores(self.test, per_sentence=True)
        gold, pred = [t for s in gold_s for t in s], [t for s in pred_s for t in s]
        out = {"test_loss": loss, "test_accuracy": accuracy(gold, pred), "test_tokens": len(gold),
               "test_per_tag": f1_report(gold, pred)}
        if {t.upper() for t in self.tags} <= SEGMENT_TAGS:   # a word segmentation: its word F1 too
            seg = segmentation_f1(gold_s, pred_s)
            out.update({"test_word_f1": seg["f1"], "test_word_precision": seg["precision"],
                        "test_word_recall": seg["recall"], "test_words": seg["words"]})
        elif is_chunk_tagging(self.tags):   # named entities (or words and tags): chunk F1 too
            ch = chunk_f1(gold_s, pred_s)
            out.update({"test_chunk_f1": ch["f1"], "test_chunk_precision": ch["precision"],
                        "test_chunk_recall": ch["recall"], "test_chunks": ch["chunks"]})
        return out

    def checkpoint_extras(self):
        e = self.encoder
        trained = sorted({t for _, ts in self.train for t in ts})   # (tags adds held-out ones)
        return {"kind": "tag", "model_config": asdict(self.model.config), "tags": list(self.tags),
                "trained_tags": trained,
                "vocab": e.vocab.to_dict(), "chars": e.chars.to_dict() if e.chars else None,
                "data_config": asdict(self.data_config), "tokens": self.tokens,
                "char_tokens": self.tokens == "char"}   # the field before "tokens"


def build_tag_task(data_config, model_config, log=print, checkpoint=None):
    """Read and split the sentences (or take the validation / test files), read them as words or
    characters, build word/char vocabularies and the tag set, and the model. Resuming
    ``checkpoint``, the tokens are its run's (an ``auto`` choice made again may differ)."""
    d = data_config
    path = resolve(d.data)
    sents = read_tagged(path, d.column)
    tokens = resolve_tag_tokens(d.tokens, sents) if checkpoint is None else checkpoint.get(
        "tokens", "char" if checkpoint.get("char_tokens") else "word")
    flag = {d.val_data: "--val-data", d.test_data: "--test-data"}   # files or data set names
    read = lambda p: as_tokens(read_tagged(resolve(p, flag[p]), d.column), tokens)
    parts = own_parts(as_tokens(sents, tokens), d, read)
    warn_shared(parts[0], (("--val-data", d.val_data, parts[1]),
                           ("--test-data", d.test_data, parts[2])),
                key=lambda e: " ".join(e[0]) if tokens != "char" else "".join(e[0]),
                what="sentences")
    tags = sorted({t for _, ts in parts[0] for t in ts})
    if len(tags) < 2:   # every token the same tag: accuracy 1.0 of a model that learns nothing
        raise DataError(f"{path}: need at least 2 distinct tags in the training sentences, got "
                        f"{tags}" + (f" (--column {d.column})" if d.column else ""))
    show = lambda ts: ", ".join(ts[:8]) + (", ..." if len(ts) > 8 else "")   # noqa: E731
    for flag_name, file, part in (("--val-data", d.val_data, parts[1]),
                                  ("--test-data", d.test_data, parts[2])):
        held = sorted({t for _, ts in part for t in ts})
        if file and held and not set(held) & set(tags):   # another column, another tag set
            raise DataError(f"{file} ({flag_name}): none of its tags occurs in training (its: "
                            f"{show(held)}; training's: {show(tags)}); expected a file tagged "
                            f"like --data (the same --column)")
    unseen = sorted({t for p in parts[1:] for _, ts in p for t in ts} - set(tags))
    if unseen:   # rare tags only in held-out sentences: still part of the tag set
        tags += unseen
        if d.val_data or d.test_data:
            warn(f"{len(unseen)} tag(s) of the validation/test data never occur in "
                 f"training: {unseen[:10]}")
    vocab = build_vocab((w for w, _ in parts[0]), d.min_count)
    # a token of one character has no characters to read apart from itself
    chars = build_vocab(([c for c in word] for w, _ in parts[0] for word in w)) \
        if model_config.char_embed > 0 and tokens != "char" else None
    if not model_config.ngrams:   # character bigrams tell a segmenter much; word bigrams overfit
        model_config.ngrams = 2 if tokens == "char" else 1
    if model_config.affixes < 0:   # a character has no affixes
        model_config.affixes = 0 if tokens == "char" else 3
    log(f"{path}: {len(sents):,} sentences, {sum(len(w) for w, _ in parts[0]):,} training "
        f"{tokens} tokens, {len(tags)} tags; train {len(parts[0]):,}, validation "
        f"{len(parts[1]):,}, test {len(parts[2]):,} sentences; vocabulary {len(vocab):,} "
        f"{'characters' if tokens == 'char' else 'words'}"
        + (f", {len(chars):,} characters" if chars else ""))
    model_config.vocab_size, model_config.num_tags = len(vocab), len(tags)
    m = model_config
    most = (0 if m.buckets else GRAM_BUCKETS,                   # 0: set by the user, kept
            0 if m.window_buckets else window_buckets(len(tags)))
    grams, features = distinct_features([w for w, _ in parts[0]], m.ngrams, m.window, m.affixes,
                                        most)
    m.buckets = m.buckets or fitting_buckets(GRAM_BUCKETS, grams)
    m.window_buckets = m.window_buckets or window_buckets(len(tags), features)
    model_config.char_vocab_size = len(chars) if chars else 0
    # K² transition scores a token: next to the network's own work for a part-of-speech tag set
    # (People's Daily's 44: validation 96.45% against 96.37% without), far more for Brown's 472
    model_config.crf = model_config.crf or len(tags) <= model_config.crf_tags
    if model_config.linear_start and model_config.window:   # the fitted linear start is a CRF
        n = sum(len(w) for w, _ in parts[0])
        if crf_fit.affordable(n, len(tags)):
            model_config.crf = True
        else:   # too costly to fit (a part-of-speech tag set): the network alone, as without it
            model_config.linear_start = False
            log(f"linear start: off (training tokens x tags² = {n * len(tags) ** 2:,}, over "
                f"{crf_fit.MAX_COST:,})")
    m = model_config
    encoder = Encoder(vocab, chars, d.max_word_chars, m.ngrams, m.buckets, m.window,
                      m.window_buckets, d.word_chars, m.affixes)
    return TagTask(SequenceTagger(model_config), encoder, tags, parts, d, tokens)


def as_tokens(sents, tokens):
    """Sentences as the model reads them: as they are, or (char) as characters with B-/I- tags."""
    return char_sentences(sents) if tokens == "char" else sents
