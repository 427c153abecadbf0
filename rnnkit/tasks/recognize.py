"""N-to-M recognition with CTC as a trainer task, and the recogniser ``rnnkit recognize`` uses.

The data (:mod:`rnnkit.tasks.recognize_data`) are captchas rendered from fixed seeds, spoken
digit strings with a held-out voice, or files listed in a TSV or folder; the model is
:class:`rnnkit.models.recognizer.SequenceRecognizer`. Metrics over a part, decoded greedily (and,
on the test part, by prefix beam search too): sequence accuracy (the whole transcript right),
character error rate (character edit distance over reference characters) and word error rate
(the same over whitespace-separated words; a captcha is one word, so its WER is 1 - sequence
accuracy; for spoken digits each digit is a word), computed with rnnkit's own edit distance
(:mod:`rnnkit.tasks.metrics`), which the seq2seq task uses as well. A data set's extra test
parts (spoken digits: new utterances of the training voices) are scored greedily beside the test
part, under their own names.
Shapes: B batch, F features, T columns or frames, T' output frames, K labels.
"""
import math
from dataclasses import asdict

import torch

from rnnkit.data import DataError
from rnnkit.data.media import IMAGE_SUFFIXES, kind_of, log_mel, read_image, read_wav
from rnnkit.decode.ctc import beam_decode, greedy_decode, label_logprob, min_frames
from rnnkit.models.recognizer import RecognizerConfig, SequenceRecognizer
from rnnkit.tasks import api_inputs
from rnnkit.tasks.common import Batches, chunks
from rnnkit.tasks.metrics import sequence_accuracy, token_error_rate
from rnnkit.tasks.recognize_data import (RecognizeData, augment, batch_of, eval_examples,
                                         features_of, read_parts)
from rnnkit.train.checkpoint import built_from, check_sizes, load_checkpoint

EVAL_BATCH = 128
TEST_BEAM = 8
PRUNE = math.log(1e-4)   # a class below this probability at a frame extends no prefix there


def error_rates(hyps, refs, prefix, words="space"):
    """Sequence accuracy, CER and WER of decoded texts against their transcripts; words are
    separated by spaces, or (``words="char"``: digit strings) each character is one."""
    split = list if words == "char" else str.split
    return {f"{prefix}_sequence_accuracy": sequence_accuracy(hyps, refs),
            f"{prefix}_cer": token_error_rate([list(h) for h in hyps], [list(r) for r in refs]),
            f"{prefix}_wer": token_error_rate([split(h) for h in hyps], [split(r) for r in refs])}


@torch.no_grad()
def decode_part(model, alphabet, part, beam=0):
    """(mean CTC loss per label, decoded texts, reference texts) of ``model`` over ``part``
    [(x, label ids, where)], read greedily or with a prefix beam search of ``beam``."""
    text = lambda labels: "".join(alphabet[i - 1] for i in labels)
    stride = model.config.time_stride   # a file narrower gives no frame: nothing is read (a
    narrow = [i for i, (x, _, _) in enumerate(part) if x.shape[-1] < stride]   # batch of such
    if narrow:                                                  # files alone was a conv error)
        wide = [e for e in part if e[0].shape[-1] >= stride]
        loss, hyps, _ = decode_part(model, alphabet, wide, beam) if wide else (math.nan, [], [])
        read, narrow = iter(hyps), set(narrow)
        return loss, ["" if i in narrow else next(read) for i in range(len(part))], \
            [text(y) for _, y, _ in part]
    total, counted, hyps = 0.0, 0, []
    for r in chunks(len(part), EVAL_BATCH):
        x, lengths, targets, target_lengths = batch_of(part[r.start:r.stop])
        log_probs, frames = model(x.to(next(model.parameters()).dtype), lengths)  # (B, T', K+1)
        loss = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), targets, frames,
                                            target_lengths, reduction="none")       # (B,)
        # per label, as reduction="mean"; a transcript too long for its frames (a scored part
        # keeps them: keep_fitting) has no finite loss and is left out of it
        fits = frames >= torch.tensor([min_frames(y) for _, y, _ in part[r.start:r.stop]],
                                      device=frames.device)
        total += float((loss / target_lengths.clamp_min(1))[fits].sum())
        counted += int(fits.sum())
        if beam:
            hyps += [text(y) for y, _ in beam_decode(log_probs, frames, beam, prune=PRUNE)]
        else:
            hyps += [text(y) for y in greedy_decode(log_probs, frames)]
    return total / counted if counted else math.nan, hyps, [text(y) for _, y, _ in part]


@torch.no_grad()
def uniform_loss(model, part):
    """The mean CTC loss per label over ``part`` of an output that is a uniform guess over the
    model's classes at every frame (the examples :func:`decode_part` scores alone)."""
    fits = []
    for x, y, _ in part:
        frames = int(model.frames(torch.tensor([x.shape[-1]])))
        if frames >= max(1, min_frames(y)):
            fits.append((frames, y))
    if not fits:
        return math.nan
    guess_logp, total = -math.log(model.config.num_classes), 0.0
    for r in chunks(len(fits), EVAL_BATCH):
        frames = torch.tensor([f for f, _ in fits[r.start:r.stop]])
        # each transcript's labels renumbered 1.. in order of first use: under an even guess the
        # loss counts the alignments, which depend on which labels repeat, not on the alphabet
        # (a guess over a large one would be frames x batch x classes)
        labels = [[order.setdefault(c, len(order) + 1) for c in y]
                  for y, order in ((y, {}) for _, y in fits[r.start:r.stop])]
        lengths = torch.tensor([len(y) for y in labels])
        targets = torch.zeros(len(labels), max(1, int(lengths.max())), dtype=torch.long)
        for i, y in enumerate(labels):
            targets[i, :len(y)] = torch.tensor(y, dtype=torch.long)
        used = 1 + max(len(set(y)) for y in labels)                 # the blank and the labels
        guess = torch.full((int(frames.max()), len(labels), used), guess_logp,
                           dtype=torch.float64)
        loss = torch.nn.functional.ctc_loss(guess, targets, frames, lengths, reduction="none")
        total += float((loss / lengths.clamp_min(1)).sum())
    return total / len(fits)


def evaluate_file(run, path, beam=TEST_BEAM):
    """Score a trained recogniser on a TSV or folder of files in its training format: the mean
    CTC loss per label, sequence accuracy, CER and WER read greedily and, when ``beam`` > 1,
    with a prefix beam search of that width. A transcript holding a character outside the
    model's alphabet is a DataError naming its file; files too short for their transcripts
    under CTC are scored as the model reads them (it cannot write them: errors) and left out
    of the loss, with a warning."""
    rec = Recognizer.load(run)
    part = eval_examples(path, rec.data_config, rec.kind, rec.alphabet,
                         rec.model.config.time_stride)
    return scored_file(path, "recognize", part, beam, rec.data_config,
                       lambda b: decode_part(rec.model, rec.alphabet, part, b))


def scored_file(path, kind, part, beam, d, decode):
    """``rnnkit eval``'s figures of a recogniser (``decode(beam)``: loss, hypotheses,
    references): greedy, and with a beam of ``beam`` when it is over 1."""
    beam = api_inputs.count(beam, "beam", least=1)
    words = "char" if d.data == "spoken-digits" else "space"   # digits: each one a word
    loss, hyps, refs = decode(0)
    out = {"file": str(path), "kind": kind, "size": len(refs), "beam": beam, "loss": loss,
           **error_rates(hyps, refs, "greedy", words)}
    if beam > 1:
        out.update(error_rates(decode(beam)[1], refs, f"beam{beam}", words))
    return out


class RecognizeTask:
    unit = "sequence"
    loss_label = "CTC loss per label"

    def __init__(self, model, parts, data_config, seed=0):
        self.model, self.parts, self.data_config, self.seed = model, parts, data_config, seed
        self.alphabet = parts.alphabet
        widths = [x.shape[1] for x, _, _ in parts.train]      # batches bucketed by width
        self.batches = Batches(len(parts.train), data_config.batch, seed, lengths=widths)

    def train_batch(self, step):
        examples = [self.parts.train[i] for i in self.batches(step)]
        d = self.data_config
        if d.tempo > 1 or d.freq_mask or d.time_mask:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
            stride = self.model.config.time_stride
            examples = [(augment(features_of(x), y, d, stride, gen), y, w)
                        for x, y, w in examples]
        return batch_of(examples)

    def loss(self, batch):
        x, lengths, targets, target_lengths = batch
        return self.model.loss(x, lengths, targets, target_lengths), len(lengths)

    @property
    def chance_loss(self):
        """A uniform guess's CTC loss per label over the validation part (the trainer's floor
        for a blow-up): every frame's output spread evenly over the blank and the labels."""
        if not hasattr(self, "_chance"):
            self._chance = uniform_loss(self.model, self.parts.val)
        return self._chance

    def decode(self, part, beam=0):
        """(mean CTC loss per label, decoded texts, reference texts) over a part."""
        return decode_part(self.model, self.alphabet, part, beam)

    def evaluate(self):
        loss, hyps, refs = self.decode(self.parts.val)
        return {"val_loss": loss, **error_rates(hyps, refs, "val", self.parts.words)}

    def test_metrics(self):
        loss, hyps, refs = self.decode(self.parts.test)
        _, beam_hyps, _ = self.decode(self.parts.test, TEST_BEAM)
        words = self.parts.words
        out = {"test_loss": loss, **error_rates(hyps, refs, "test", words),
               **error_rates(beam_hyps, refs, f"test_beam{TEST_BEAM}", words),
               "test_size": len(refs),
               "test_examples": [{"truth": r, "output": h} for h, r in zip(hyps[:20], refs)]}
        for name, part in self.parts.extra.items():     # e.g. the training voices' new utterances
            _, hyps, refs = self.decode(part)
            out.update({**error_rates(hyps, refs, name, words), f"{name}_size": len(refs)})
        return out

    def checkpoint_extras(self):
        return {"kind": "recognize", "model_config": asdict(self.model.config),
                "data_config": asdict(self.data_config), "alphabet": self.alphabet,
                "input": self.parts.kind}


def build_recognize_task(data_config, model_config, seed=0, log=print):
    """Read (or render) the parts, fill in the model's classes and height, build the model."""
    parts = read_parts(data_config, model_config.time_stride, log)
    model_config.num_classes = len(parts.alphabet) + 1
    model_config.features = parts.features
    model_config = RecognizerConfig(**asdict(model_config))   # checks the filled-in sizes
    log(parts.source)
    return RecognizeTask(SequenceRecognizer(model_config), parts, data_config, seed)


class Recognizer:
    """A trained recogniser: image or sound files in, transcripts out."""

    def __init__(self, model, alphabet, kind, data_config):
        self.model, self.alphabet, self.kind = model.eval(), alphabet, kind
        self.data_config = data_config

    @classmethod
    def from_task(cls, task):
        return cls(task.model, task.alphabet, task.parts.kind, task.data_config)

    @classmethod
    def load(cls, path):
        """The recogniser of a run folder (best.pt) or checkpoint file."""
        ckpt = load_checkpoint(path, kind="recognize")
        with built_from(path):
            model = SequenceRecognizer(RecognizerConfig(**ckpt["model_config"]))
            model.load_state_dict(ckpt["model"])
            check_sizes(("alphabet", ckpt["alphabet"], model.config.num_classes - 1,
                         "characters"))   # and the blank
            data_config = RecognizeData(**ckpt["data_config"])
            return cls(model, ckpt["alphabet"], ckpt["input"], data_config)

    def features(self, path, where=None):
        """The model's input (F, T) for one file; a file of the other kind is a DataError."""
        d = self.data_config
        if kind_of(path) != self.kind:
            raise DataError(f"{where or path}: this model reads {self.kind} files "
                            f"({', '.join(IMAGE_SUFFIXES) if self.kind == 'image' else '.wav'}), "
                            f"got {path}")
        if self.kind == "image":
            return features_of(read_image(path, d.height, where))
        return log_mel(read_wav(path, d.sample_rate, where), d.sample_rate, d.n_mels)

    @torch.no_grad()
    def log_probs(self, path):
        """Per-frame log-probabilities (T', K+1) of one file, and its features (F, T)."""
        x = self.features(path).to(next(self.model.parameters()).dtype)   # a .double() model
        if x.shape[1] < self.model.config.time_stride:
            raise DataError(f"{path}: {x.shape[1]} columns or frames, fewer than the time stride "
                            f"{self.model.config.time_stride}: nothing to read")
        log_probs, frames = self.model(x[None], torch.tensor([x.shape[1]]))
        return log_probs[0, :int(frames[0])], x

    def recognize(self, paths, beam=0):
        """[(text, log p(text | file)), ...] per file: the text greedy decoding reads (the best
        path's) or, with ``beam`` > 0, the prefix beam search's best, scored over all its
        alignments by CTC's forward algorithm either way (the beam's own sum counted only the
        alignments it kept, the best path only itself: two measures, both below it)."""
        paths, beam = api_inputs.files(paths), api_inputs.count(beam, "beam", least=0)
        out = []
        for path in paths:
            lp, _ = self.log_probs(path)                                      # (T', K+1)
            labels = beam_decode(lp[None], None, beam, prune=PRUNE)[0][0] if beam \
                else greedy_decode(lp)
            out.append(("".join(self.alphabet[i - 1] for i in labels), label_logprob(lp, labels)))
        return out
