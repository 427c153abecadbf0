"""Text from one image (1→N) as a trainer task, on the recogniser's data (captchas or a TSV or
folder of images), and the reader ``rnnkit recognize`` uses for such runs.

Targets are <s> y_1 .. y_n </s> over the alphabet (ids: 0 <pad>, 1 <s>, 2 </s>, then the
characters); the loss is the cross-entropy per character, teacher-forced. Decoding is greedy
(the most probable next character until </s>) or a beam search for the most probable text (no
length normalisation: the same aim as the CTC recogniser's prefix beam search). Metrics are
those of the CTC task (sequence accuracy, CER, WER; greedy, and with a beam of 8 on the test
part), on the same test images.
Shapes: B batch, F rows, W columns, T text length.
"""
import math
from dataclasses import asdict

import torch

from rnnkit.config import ConfigError
from rnnkit.data import DataError
from rnnkit.data.media import IMAGES, kind_of, listing_kind, read_image, read_listing
from rnnkit.decode.beam import beam_search_batch
from rnnkit.models.image_to_text import ImageToText, ImageToTextConfig
from rnnkit.tasks import api_inputs
from rnnkit.tasks.common import Batches, chunks, warn
from rnnkit.tasks.recognize import TEST_BEAM, error_rates, scored_file
from rnnkit.tasks.recognize_data import RecognizeData, eval_examples, features_of, read_parts
from rnnkit.train.checkpoint import built_from, check_sizes, load_checkpoint

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
OFFSET = 3          # character k of the alphabet (1-based label k) is token id k + 2
EVAL_BATCH = 128


def images_of(examples):
    """Examples -> standardised images (B, F, W) zero-padded to the widest."""
    xs = [features_of(x) for x, _, _ in examples]
    out = torch.zeros(len(xs), xs[0].shape[0], max(x.shape[1] for x in xs))  # (B, F, W)
    for i, x in enumerate(xs):
        out[i, :, :x.shape[1]] = x
    return out


def targets_of(examples):
    """Examples -> <s> y </s> token ids (B, T+2) padded with 0."""
    seqs = [[BOS_ID] + [k + OFFSET - 1 for k in y] + [EOS_ID] for _, y, _ in examples]
    out = torch.zeros(len(seqs), max(map(len, seqs)), dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.tensor(s)
    return out


@torch.no_grad()
def greedy_read(model, images):
    """Images (B, F, W) -> for each, the label ids 1..K read greedily and their log-probability."""
    state = model.condition(images)
    B = len(images)
    x = torch.full((B,), BOS_ID, dtype=torch.long)
    out, logp = [[] for _ in range(B)], torch.zeros(B)
    done = torch.zeros(B, dtype=torch.bool)
    for _ in range(model.config.max_len):
        logits, state = model.step(x, state)                                  # (B, V)
        lp = torch.log_softmax(logits, -1)
        x = lp.argmax(-1)                                                     # (B,)
        logp += torch.where(done, 0.0, lp.gather(1, x[:, None])[:, 0])
        for i in (~done & (x >= OFFSET)).nonzero().flatten().tolist():   # <pad>, <s>: nothing
            out[i].append(int(x[i]) - OFFSET + 1)
        done |= x == EOS_ID
        if done.all():
            break
    return list(zip(out, logp.tolist()))


@torch.no_grad()
def beam_read(model, images, beam_size):
    """Images (B, F, W) -> for each, the label ids 1..K of the most probable text a beam of
    ``beam_size`` finds and its log-probability (all B searched as one batch)."""
    found = beam_search_batch(model, torch.full((len(images),), BOS_ID, dtype=torch.long),
                              model.condition(images), beam_size, model.config.max_len, EOS_ID,
                              length_penalty=0.0)
    return [([t - OFFSET + 1 for t in ids if t >= OFFSET], score) for (ids, score), in found]


@torch.no_grad()
def decode_part(model, alphabet, part, beam=0):
    """(mean loss per character, texts read, reference texts) of ``model`` over ``part`` [(x,
    label ids, where)]; read greedily, or with a beam of ``beam`` hypotheses."""
    text = lambda labels: "".join(alphabet[i - 1] for i in labels)
    total = count = 0
    hyps = []
    dtype = next(model.parameters()).dtype
    for r in chunks(len(part), EVAL_BATCH):
        examples = part[r.start:r.stop]
        images = images_of(examples).to(dtype)
        loss, n = model.loss(images, targets_of(examples))
        total, count = total + float(loss) * n, count + n
        read = beam_read(model, images, beam) if beam else greedy_read(model, images)
        hyps += [text(y) for y, _ in read]
    return total / max(count, 1), hyps, [text(y) for _, y, _ in part]


def evaluate_file(run, path, beam=TEST_BEAM):
    """Score a trained image-to-text run on a TSV or folder of images in its training format:
    the mean loss per character, sequence accuracy, CER and WER read greedily and, when
    ``beam`` > 1, with a beam search of that width."""
    reader = ImageReader.load(run)
    part = eval_examples(path, reader.data_config, "image", reader.alphabet, None)
    W = reader.model.config.width
    wider = sum(x.shape[1] > W for x, _, _ in part)
    if wider:
        warn(f"{path}: {wider:,} image(s) wider than the widest training image ({W} columns "
             f"at height {reader.model.config.height}): the model reads their first {W} columns")
    return scored_file(path, "image-to-text", part, beam, reader.data_config,
                       lambda b: decode_part(reader.model, reader.alphabet, part, b))


class ImageToTextTask:
    unit = "char"
    loss_label = "nats/char"

    def __init__(self, model, parts, data_config, seed=0):
        self.model, self.parts, self.data_config = model, parts, data_config
        self.alphabet = parts.alphabet
        self.batches = Batches(len(parts.train), data_config.batch, seed)

    def train_batch(self, step):
        examples = [self.parts.train[i] for i in self.batches(step)]
        return images_of(examples), targets_of(examples)

    @property
    def chance_loss(self):
        """A uniform guess's loss over the output tokens (the trainer's floor for a blow-up)."""
        return math.log(self.model.config.vocab_size)

    def loss(self, batch):
        return self.model.loss(*batch)

    def decode(self, part, beam=0):
        """(mean loss per character, texts read, reference texts) over a part; read greedily,
        or with a beam of ``beam`` hypotheses."""
        return decode_part(self.model, self.alphabet, part, beam)

    def evaluate(self):
        loss, hyps, refs = self.decode(self.parts.val)
        return {"val_loss": loss, **error_rates(hyps, refs, "val", self.parts.words)}

    def test_metrics(self):
        loss, hyps, refs = self.decode(self.parts.test)
        _, beam_hyps, _ = self.decode(self.parts.test, TEST_BEAM)
        return {"test_loss": loss, **error_rates(hyps, refs, "test", self.parts.words),
                **error_rates(beam_hyps, refs, f"test_beam{TEST_BEAM}", self.parts.words),
                "test_size": len(refs),
                "test_examples": [{"truth": r, "output": h} for h, r in zip(hyps[:20], refs)]}

    def checkpoint_extras(self):
        return {"kind": "image-to-text", "model_config": asdict(self.model.config),
                "data_config": asdict(self.data_config), "alphabet": self.alphabet}


def upgrade(ckpt):
    """A checkpoint of an older version as this one reads it: runs saved before the image's
    vector had a choice of activation used a ReLU."""
    if "vector_act" not in ckpt["model_config"]:
        ckpt = dict(ckpt, model_config=dict(ckpt["model_config"], vector_act="relu"))
    return ckpt


def build_image_to_text_task(data_config, model_config, seed=0, log=print):
    """The recogniser's parts (images only), the model sized to the widest training image."""
    d = data_config
    if d.tempo != 1 or d.freq_mask or d.time_mask:
        raise ConfigError("--tempo, --freq-mask and --time-mask perturb the CTC recogniser's "
                          "training examples (rnnkit train recognize); image-to-text does not "
                          f"use them, got --tempo {d.tempo:g} --freq-mask {d.freq_mask} "
                          f"--time-mask {d.time_mask}")
    if d.data == "spoken-digits" or (d.data not in ("captcha", "openclipart") and listing_kind(
            read_listing(d.data), d.data) == "audio"):      # said before any sound is read
        raise DataError(f"{d.data}: image-to-text reads images, this data holds sounds (rnnkit "
                        f"train recognize reads both)")
    parts = read_parts(data_config, None, log)   # no CTC: any width reads its text
    model_config.vocab_size = len(parts.alphabet) + OFFSET
    model_config.height = parts.features
    model_config.width = max(x.shape[1] for x, _, _ in parts.train)
    model_config = ImageToTextConfig(**asdict(model_config))   # checks the filled-in sizes
    W = model_config.width
    widths = sorted(x.shape[1] for x, _, _ in parts.train)
    median = widths[len(widths) // 2]
    if W > 4 * median:     # the model's width is the widest image's: one outlier sizes it all
        where = max(parts.train, key=lambda e: e[0].shape[1])[2]
        warn(f"{where}: an image {W} columns wide at height {model_config.height}, "
             f"{W / median:.0f}× the training images' median width ({median}): the model reads "
             f"every image padded to the widest, so it is that much bigger and slower; leave "
             f"the image out or cut it")
    wider = sum(x.shape[1] > W for x, _, _ in parts.val + parts.test)
    if wider:
        warn(f"{wider:,} validation or test image(s) wider than the widest training image "
             f"({W} columns at height {model_config.height}): the model reads their first {W} "
             f"columns")
    examples = parts.train + parts.val + parts.test
    longest = max(len(y) for _, y, _ in examples)
    if longest > model_config.max_len:
        over = sum(len(y) > model_config.max_len for _, y, _ in examples)
        warn(f"{over:,} transcript(s) longer than --max-len {model_config.max_len} (the longest "
             f"{longest}): the model writes at most --max-len characters, so it cannot read "
             f"them whole; raise --max-len to {longest}")
    log(parts.source)
    return ImageToTextTask(ImageToText(model_config), parts, data_config, seed)


class ImageReader:
    """A trained image-to-text model: image files in, texts out (the ``Recognizer`` interface)."""

    kind = "image"

    def __init__(self, model, alphabet, data_config):
        self.model, self.alphabet, self.data_config = model.eval(), alphabet, data_config
        self.said_cut = False

    @classmethod
    def from_task(cls, task):
        return cls(task.model, task.alphabet, task.data_config)

    @classmethod
    def load(cls, path):
        ckpt = load_checkpoint(path, kind="image-to-text")
        with built_from(path):
            ckpt = upgrade(ckpt)
            model = ImageToText(ImageToTextConfig(**ckpt["model_config"]))
            model.load_state_dict(ckpt["model"])
            check_sizes(("alphabet", ckpt["alphabet"], model.config.vocab_size - OFFSET,
                         "characters"))   # and <pad>, <s>, </s>
            return cls(model, ckpt["alphabet"], RecognizeData(**ckpt["data_config"]))

    def recognize(self, paths, beam=0):
        """[(text, log-probability), ...] per image file, read greedily or (``beam`` > 0) with
        a beam search of that many hypotheses."""
        paths, beam = api_inputs.files(paths), api_inputs.count(beam, "beam", least=0)
        out = []
        for path in paths:
            if kind_of(path) != "image":
                raise DataError(f"{path}: this model reads images; expected {IMAGES}")
            x = features_of(read_image(path, self.data_config.height))[None]  # (1, F, W)
            x = x.to(next(self.model.parameters()).dtype)                   # a .double() model
            W = self.model.config.width
            if x.shape[-1] > W and not self.said_cut:
                self.said_cut = True           # once: a folder of wide scans is one warning
                warn(f"{path}: {x.shape[-1]} columns at the model's height, wider than the "
                     f"widest training image ({W}): the model reads its first {W} columns")
            (labels, score), = beam_read(self.model, x, beam) if beam else \
                greedy_read(self.model, x)
            out.append(("".join(self.alphabet[i - 1] for i in labels), score))
        return out
