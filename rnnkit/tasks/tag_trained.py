"""A trained tagger for use (``rnnkit tag``, export, the view): :class:`Tagger` reads a run's
checkpoint (those of older versions through :func:`upgrade`) and tags token lists;
:func:`evaluate_file` scores a run on any tagged file (``rnnkit eval``).
"""
import unicodedata

import torch

from rnnkit.data import DataError
from rnnkit.data.tagged import NO_BREAK, ZWSP, fields, read_tagged
from rnnkit.data.vocab import Vocab, chars_in_form
from rnnkit.models.tagger import SequenceTagger, TaggerConfig
from rnnkit.tasks import api_inputs
from rnnkit.tasks.common import chunks, warn, warn_unknown
from rnnkit.tasks.metrics import (SEGMENT_TAGS, accuracy, chunk_f1, is_chunk_tagging,
                                  segmentation_f1)
from rnnkit.tasks.tag import EVAL_BATCH, as_tokens
from rnnkit.tasks.tag_features import Encoder
from rnnkit.train.checkpoint import built_from, check_sizes, load_checkpoint

# the settings of checkpoints saved before a field existed: no n-gram features, no linear term,
# no affixes, a CRF layer only where asked for, a word's first characters
MODEL_SAVED_BEFORE = {"ngrams": 1, "window": 0, "linear_start": False, "affixes": 0,
                      "crf_tags": 0, "feature_dropout": 0.0}
DATA_SAVED_BEFORE = {"word_chars": "first", "column": 3, "word_dropout": 0.0}


def upgrade(ckpt):
    """A tag checkpoint with the settings of the version that saved it. Runs saved before their
    flags were (``"flags"``) stored column 3, the default of a time when it named CoNLL-U's
    UPOS column and files without columns passed it over; 0 says both now (column 3 of such a
    file is refused)."""
    data = {**DATA_SAVED_BEFORE, **ckpt["data_config"]}
    if "flags" not in ckpt and data["column"] == 3:
        data["column"] = 0
    return {**ckpt, "model_config": {**MODEL_SAVED_BEFORE, **ckpt["model_config"]},
            "data_config": data}


def evaluate_file(run, path):
    """Score a trained run (folder or checkpoint) on a tagged file in the training format: token
    accuracy and size (tokens), word precision/recall/F1 for a B/M/E/S segmentation, chunk
    precision/recall/F1 for B-/I-/O chunk tags (named entities). Tags the
    model never saw count as errors (it cannot predict them); "unseen_tags" counts such tokens."""
    tagger = Tagger.load(run)
    sents = as_tokens(read_tagged(path, tagger.column), tagger.tokens)
    gold = [list(t) for _, t in sents]
    flat_g = [t for s in gold for t in s]
    known = set(load_checkpoint(run).get("trained_tags", tagger.tags))   # a tag of the run's
    # validation or test file alone is in its tag set, never in a training sentence
    unseen = sum(t not in known for t in flat_g)
    if unseen:
        show = lambda tags: ", ".join(tags[:8]) + (", ..." if len(tags) > 8 else "")
        foreign = sorted(set(flat_g) - known)
        if unseen == len(flat_g):
            raise DataError(f"{path}: none of its tags is one the model was trained with (the "
                            f"file's: {show(foreign)}; the model's: {show(tagger.tags)}); "
                            f"expected a file tagged like the training data")
        warn(f"{path}: {unseen:,} of {len(flat_g):,} tokens carry tags the model never saw "
             f"({show(foreign)}); they count as errors")
    warn_unknown(path, tagger.in_form([w for s, _ in sents for w in s]),
                 tagger.encoder.vocab.stoi)
    pred = tagger.tag([w for w, _ in sents], str(path))
    flat_p = [t for s in pred for t in s]
    out = {"file": str(path), "kind": "tag", "size": len(flat_g),
           "accuracy": accuracy(flat_g, flat_p),
           "unseen_tags": unseen}
    if {t.upper() for t in tagger.tags} <= SEGMENT_TAGS:
        seg = segmentation_f1(gold, pred)
        out.update({"word_f1": seg["f1"], "word_precision": seg["precision"],
                    "word_recall": seg["recall"], "words": float(seg["words"])})
    elif is_chunk_tagging(tagger.tags):
        ch = chunk_f1(gold, pred)
        out.update({"chunk_f1": ch["f1"], "chunk_precision": ch["precision"],
                    "chunk_recall": ch["recall"], "chunks": float(ch["chunks"])})
    return out


class Tagger:
    """A trained tagger for use: token lists in, tag lists out."""

    def __init__(self, model, encoder, tags, tokens="word", column=0):
        self.model, self.encoder, self.tags = model.eval(), encoder, tags
        self.tokens = tokens   # "char": reads a raw line as characters
        self.column = column   # tag column of the training data (CoNLL-U, column files)

    @property
    def char_tokens(self):
        return self.tokens == "char"

    @property
    def segmenter(self):
        """Whether the tags are a B/M/E/S word segmentation."""
        return {t.upper() for t in self.tags} <= SEGMENT_TAGS

    @classmethod
    def from_task(cls, task):
        return cls(task.model, task.encoder, task.tags, task.tokens, task.data_config.column)

    @classmethod
    def load(cls, path):
        """The tagger of a run folder (best.pt) or checkpoint file; checkpoints from before the
        ``tokens`` field say ``char_tokens``."""
        ckpt = load_checkpoint(path, kind="tag")
        with built_from(path):
            ckpt = upgrade(ckpt)
            config = ckpt["model_config"]
            model = SequenceTagger(TaggerConfig(**config))
            model.load_state_dict(ckpt["model"])
            check_sizes(("tag set", ckpt["tags"], model.config.num_tags, "tags"),
                        ("vocabulary", ckpt["vocab"].get("tokens"), model.config.vocab_size,
                         "tokens"))
            chars = Vocab.from_dict(ckpt["chars"]) if ckpt["chars"] else None
            d = ckpt["data_config"]
            c = model.config
            encoder = Encoder(Vocab.from_dict(ckpt["vocab"]), chars, d["max_word_chars"],
                              c.ngrams, c.buckets, c.window, c.window_buckets,
                              d["word_chars"], c.affixes)
            tokens = ckpt.get("tokens", "char" if ckpt.get("char_tokens") else "word")
            return cls(model, encoder, ckpt["tags"], tokens, d["column"])

    def split(self, text):
        """A line of input -> tokens: whitespace-separated words (a no-break space joins, as in
        the training file: :func:`rnnkit.data.tagged.fields`), or characters for a model that
        reads characters (white space and a zero-width space separate, but a no-break space
        that training read inside a word, "New York", is its character; the other invisible
        characters, a joiner inside a Persian word or an emoji, are characters as in training)."""
        if self.char_tokens:   # in the Unicode form the vocabulary holds its characters in
            stoi = self.encoder.vocab.stoi
            text = chars_in_form(text, stoi)
            return [c for c in text if not (c.isspace() and not (c in NO_BREAK and c in stoi)
                                            or c == ZWSP)]
        return fields(text)

    def in_form(self, tokens):
        """``tokens``, each in the Unicode form (NFC or NFD) the vocabulary holds where it holds
        that form only (a word typed in NFD before a model trained in NFC was unknown: 26 of 90
        of a Korean tagger's tags changed)."""
        stoi = self.encoder.vocab.stoi
        return [t if t in stoi else next((o for o in (unicodedata.normalize("NFC", t),
                                                      unicodedata.normalize("NFD", t))
                                          if o in stoi), t) for t in tokens]

    def words(self, tokens, tags):
        """(word, tag) pairs: B-/I- character tags joined back into words; other tags as given."""
        if len(tokens) != len(tags):   # zip would drop the tokens past the shorter
            raise ValueError(f"{len(tokens)} tokens and {len(tags)} tags: one tag a token")
        if not (self.char_tokens and tags and all(t[:2] in ("B-", "I-") for t in self.tags)):
            return list(zip(tokens, tags))
        out = []
        for c, t in zip(tokens, tags):
            if t.startswith("I-") and out and out[-1][1] == t[2:]:
                out[-1] = (out[-1][0] + c, out[-1][1])
            else:
                out.append((c, t[2:]))
        return out

    @torch.no_grad()
    def tag(self, sentences, where="input"):
        """B token lists -> B tag lists; an empty sentence raises DataError naming its line."""
        sentences = api_inputs.token_lists(sentences)
        for i, s in enumerate(sentences, 1):
            if not s:
                raise DataError(f"{where}:{i}: empty sentence (nothing to tag)")
        out, sentences = [], [self.in_form(s) for s in sentences]
        for r in chunks(len(sentences), EVAL_BATCH):
            ids = self.model.decode(*self.encoder([sentences[i] for i in r]))
            out += [[self.tags[i] for i in s] for s in ids]
        return out
