"""Translation as a trainer task: TSV pairs -> vocabularies -> padded batches -> Seq2Seq loss.

Implements the protocol of :mod:`rnnkit.train.trainer` for :class:`rnnkit.models.seq2seq.Seq2Seq`.
The held-out split is fixed by a hash of the source sentence (:func:`rnnkit.data.pairs.split_of`):
5% test (BLEU, CER, sequence accuracy, token error rate after training), 3% validation (the loss
that picks best.pt), 92% training; ``--val-data`` / ``--test-data`` files replace those parts.
:func:`evaluate_file` scores a trained run on any pair file. Shapes: B batch, S source length,
T target length.
"""
import math
from dataclasses import asdict, dataclass, field

import torch

from rnnkit.config import MAX_BATCH, MAX_BEAM, MAX_COUNT, MAX_VOCAB, check
from rnnkit.data import DataError, Vocab, resolve
from rnnkit.data.pairs import (SPECIALS, PairBatches, build_vocab, encode, own_splits, pad,
                                read_numbered_pairs, read_pairs)
from rnnkit.data.vocab import EXACT_TOKENS
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.tasks.common import warn, warn_shared, warn_unknown
from rnnkit.train.checkpoint import built_from, check_sizes, load_checkpoint


@dataclass
class Seq2SeqData:
    """Which pairs, how they are tokenised and batched, and the loss options."""
    data: str = field(default="de-en", metadata={
        "help": "data set name (rnnkit data list) or a TSV file of source<TAB>target lines"})
    src_tokens: str = field(default="char", metadata={"help": "source tokenizer: char or word",
                                                       "choices": EXACT_TOKENS})
    tgt_tokens: str = field(default="char", metadata={"help": "target tokenizer: char or word",
                                                       "choices": EXACT_TOKENS})
    # the 4 specials (<pad> <s> </s> <unk>) and at least one token
    max_vocab: int = field(default=0, metadata={
        "help": "vocabulary size per side, specials included; the rest become <unk> (0: all)",
        "range": (len(SPECIALS) + 1, MAX_VOCAB), "or": (0,)})
    batch: int = field(default=32, metadata={"help": "sentence pairs per training batch",
                                              "range": (1, MAX_BATCH)})
    label_smoothing: float = field(default=0.0, metadata={
        "help": "label-smoothing epsilon of the training loss (0: off)", "range": "[0, 1)"})
    teacher_forcing: float = field(default=1.0, metadata={
        "help": "training: chance of feeding the reference token, not the prediction, each step",
        "range": (0, 1)})
    val_data: str = field(default="", metadata={
        "help": "a file like --data: the validation part, not a split of --data"})
    test_data: str = field(default="", metadata={
        "help": "a file like --data: the test part, not a split of --data"})
    val_pairs: int = field(default=400, metadata={
        "help": "validation pairs the val_loss is measured on (0: all)", "range": (0, MAX_COUNT)})
    val_decode: int = field(default=100, metadata={
        "help": "validation pairs decoded greedily for val_seq_acc and val_ter (0: none)",
        "range": (0, MAX_COUNT)})
    test_pairs: int = field(default=0, metadata={
        "help": "held-out test pairs scored after training (0: all)", "range": (0, MAX_COUNT)})
    beam_size: int = field(default=5, metadata={
        "help": "beam width of the held-out scoring (greedy decoding is scored too)",
        "range": (1, MAX_BEAM)})
    length_penalty: float = field(default=1.0, metadata={
        "help": "alpha: beam hypotheses score log p / length^alpha", "range": (0, 10)})

    def __post_init__(self):
        check(self)


def collate(examples):
    """[(src ids, tgt ids)] -> src (B, S), lengths (B,), tgt (B, T+1) (<s> ... </s>, padded)."""
    src, lengths = pad([s for s, _ in examples])
    tgt, _ = pad([t for _, t in examples])
    return src, lengths, tgt


class Seq2SeqTask:
    def __init__(self, model, src_vocab, tgt_vocab, splits, data_config, seed=0, log=print):
        self.model, self.src_vocab, self.tgt_vocab = model, src_vocab, tgt_vocab
        self.data_config, self.splits, self.log = data_config, splits, log
        self.unit = "char" if tgt_vocab.kind == "char" else "token"   # (spaces are tokens)
        self.train = PairBatches(self._encode(splits["train"], "train"), data_config.batch, seed)
        val = splits["val"][:data_config.val_pairs or None]
        self.val = self._encode(val, "val")
        limit = model.config.max_len
        test = splits["test"][:data_config.test_pairs or None]
        if test and not any(len(encode(src_vocab, s)) <= limit for s, _ in test):
            where = f"{data_config.test_data} (--test-data)" if data_config.test_data else "test"
            raise DataError(f"{where}: every one of its {len(test):,} sources is longer than "
                            f"max_len={limit} tokens: nothing to score after training; raise "
                            f"--max-len")

    def _encode(self, pairs, name):
        """Pairs as ids; pairs whose source or target (without <s> and </s>: the output the
        decoder may write, as translate and eval allow it) exceeds the model's max_len are
        dropped; a part left empty is a DataError."""
        limit = self.model.config.max_len
        out = []
        for s, t in pairs:
            src, tgt = encode(self.src_vocab, s), encode(self.tgt_vocab, t, bos=True, eos=True)
            if 0 < len(src) <= limit and len(tgt) - 2 <= limit:
                out.append((src, tgt))
        if pairs and not out:
            given = {"val": self.data_config.val_data, "test": self.data_config.test_data}
            where = f"{given[name]} (--{name}-data)" if given.get(name) else name
            raise DataError(f"{where}: every one of its {len(pairs):,} pairs is longer than "
                            f"max_len={limit} tokens on a side: nothing to "
                            f"{'train' if name == 'train' else 'validate'} on; raise --max-len")
        if len(out) < len(pairs):
            self.log(f"{name}: dropped {len(pairs) - len(out)} of {len(pairs)} pairs longer "
                     f"than max_len={limit} tokens")
        return out

    def train_batch(self, step):
        return collate(self.train[step])

    @property
    def chance_loss(self):
        """A uniform guess's loss over the output tokens (the trainer's floor for a blow-up)."""
        return math.log(len(self.tgt_vocab))

    def loss(self, batch):
        src, lengths, tgt = batch
        d = self.data_config
        return self.model.loss(src, lengths, tgt, d.label_smoothing, d.teacher_forcing)

    @torch.no_grad()
    def evaluate(self):
        """Validation cross-entropy per target token (no smoothing, full teacher forcing), and
        the sequence accuracy and token error rate of greedy decoding on ``val_decode`` pairs."""
        total, count = 0.0, 0
        order = sorted(range(len(self.val)), key=lambda i: len(self.val[i][1]))
        B = self.data_config.batch
        for k in range(0, len(order), B):
            src, lengths, tgt = collate([self.val[i] for i in order[k:k + B]])
            loss, n = self.model.loss(src, lengths, tgt)
            total += float(loss) * n
            count += n
        return {"val_loss": total / max(count, 1), **self.decode_scores()}

    def decode_scores(self):
        from rnnkit.tasks.translation import Translator, score_translations
        n = self.data_config.val_decode
        if not n:
            return {}
        translator = Translator(self.model, self.src_vocab, self.tgt_vocab)
        m = score_translations(translator, self.splits["val"][:n], beam_size=0)
        return {"val_seq_acc": m["seq_acc_greedy"], "val_ter": m["ter_greedy"]}

    @torch.no_grad()
    def test_metrics(self):
        """BLEU (sacrebleu), CER, sequence accuracy and token error rate of greedy and beam
        decoding on the held-out test pairs; the task's ``log`` is shown the first few."""
        from rnnkit.tasks.translation import Translator, score_translations
        d = self.data_config
        test = self.splits["test"][:d.test_pairs or None]
        self.log(f"scoring best.pt on the {len(test):,} held-out test pairs (greedy and beam "
                 f"{d.beam_size}" + ("; --test-pairs N scores fewer)" if len(test) > 2000 and
                                     not d.test_pairs else ")"))   # (25,000: minutes)
        translator = Translator(self.model.eval(), self.src_vocab, self.tgt_vocab)
        return score_translations(translator, test, d.beam_size, d.length_penalty, log=self.log)

    def checkpoint_extras(self):
        return {"kind": "seq2seq", "model_config": asdict(self.model.config),
                "src_vocab": self.src_vocab.to_dict(), "tgt_vocab": self.tgt_vocab.to_dict(),
                "data_config": asdict(self.data_config)}


def build_seq2seq_task(data_config, model_config, seed=0, log=print, checkpoint=None):
    """Read and split the pairs (or take the validation / test files), build both vocabularies
    (from the training part; resuming ``checkpoint``, split as its run split them) and the model;
    the model is created under the current torch seed."""
    path = resolve(data_config.data)
    d = data_config
    pairs = read_pairs(path)
    splits = own_splits(pairs, d.val_data, d.test_data, path=path)
    src_vocab, tgt_vocab = (build_vocab([pair[i] for pair in splits["train"]], tokens, d.max_vocab,
                                        checkpoint and checkpoint[key])
                            for i, tokens, key in ((0, d.src_tokens, "src_vocab"),
                                                   (1, d.tgt_tokens, "tgt_vocab")))
    log(f"{path}: {len(pairs):,} pairs; train {len(splits['train']):,}, "
        f"validation {len(splits['val']):,}, test {len(splits['test']):,}; vocabulary "
        f"{len(src_vocab):,} {d.src_tokens} -> {len(tgt_vocab):,} {d.tgt_tokens} tokens")
    warn_shared(splits["train"], (("--val-data", d.val_data, splits["val"]),
                                  ("--test-data", d.test_data, splits["test"])),
                key=lambda p: p[0], what="source sentences")
    for name, given in (("validation", d.val_data), ("test", d.test_data)):
        part = splits["val" if name == "validation" else "test"]
        if given:   # as rnnkit eval warns: a file for another model, or its columns swapped
            warn_unknown(given, [t for src, _ in part for t in src_vocab.tokenize(src)],
                         src_vocab.stoi, "source tokens",
                         "a file for another model, or target and source swapped?")
    model_config.src_vocab, model_config.tgt_vocab = len(src_vocab), len(tgt_vocab)
    return Seq2SeqTask(Seq2Seq(model_config), src_vocab, tgt_vocab, splits, d, seed, log)


def load_seq2seq(path):
    """(model in eval mode, source vocab, target vocab, checkpoint) from a run folder or file."""
    ckpt = load_checkpoint(path, kind="seq2seq")
    with built_from(path):
        model = Seq2Seq(Seq2SeqConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
        check_sizes(("source vocabulary", ckpt["src_vocab"].get("tokens"),
                     model.config.src_vocab, "tokens"),
                    ("target vocabulary", ckpt["tgt_vocab"].get("tokens"),
                     model.config.tgt_vocab, "tokens"))
        return (model.eval(), Vocab.from_dict(ckpt["src_vocab"]), Vocab.from_dict(ckpt["tgt_vocab"]),
                ckpt)



def evaluate_file(run, path, beam=None, length_penalty=None):
    """Score a trained run on a file of source<TAB>reference pairs: BLEU, CER, sequence accuracy
    and token error rate (over the target vocabulary's tokens) of greedy and, when ``beam`` > 1,
    beam decoding. ``beam`` and ``length_penalty`` default to the run's own (its test part's
    figures: ``--beam-size`` and ``--length-penalty``; 5 and 1.0 for a run that stored none).
    Unknown source tokens are read as <unk>; sources longer than the model's max_len are
    skipped and counted ("skipped")."""
    from rnnkit.tasks.translation import Translator, score_translations
    numbered = read_numbered_pairs(path)
    pairs = [(s, t) for _, s, t in numbered]
    model, src_vocab, tgt_vocab, ckpt = load_seq2seq(run)
    stored = ckpt.get("data_config") or {}
    beam = stored.get("beam_size", 5) if beam is None else beam
    length_penalty = stored.get("length_penalty", 1.0) if length_penalty is None \
        else length_penalty
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    warn_unknown(path, [t for src, _ in pairs for t in src_vocab.tokenize(src)],
                 src_vocab.stoi, "source tokens",
                 "a file for another model, or target and source swapped?")
    m = score_translations(Translator(model, src_vocab, tgt_vocab), pairs,
                           beam if beam > 1 else 0, length_penalty)
    if not m["test_pairs"]:
        raise DataError(f"{path}: every source is longer than the model's "
                        f"max_len={model.config.max_len} tokens: nothing to score")
    if m["test_pairs_skipped"]:   # said with their lines (a count in the figures said none)
        long = [n for n, src, _ in numbered if len(encode(src_vocab, src)) > model.config.max_len]
        warn(f"{path}: {len(long):,} pair(s) skipped, their sources longer than the model's "
             f"max_len={model.config.max_len} tokens (line {', '.join(map(str, long[:5]))}"
             f"{', ...' if len(long) > 5 else ''})")
    scores = {k: float(v) for k, v in m.items() if k.startswith(("bleu_", "cer_", "seq_acc_", "ter_"))}
    return {"file": str(path), "kind": "seq2seq", "size": m["test_pairs"],
            "skipped": m["test_pairs_skipped"], "beam": beam,
            **({"length_penalty": float(length_penalty)} if beam > 1 else {}), **scores}
