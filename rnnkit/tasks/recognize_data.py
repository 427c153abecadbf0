"""The examples of ``rnnkit train recognize``: captchas rendered from seeds, spoken digit strings
(:mod:`rnnkit.data.spoken_digits`, a voice held out for the test part), or the files of a TSV
listing or a folder (images or sounds), split into training, validation and test parts.

An example is (x, labels, where): x the grey levels uint8 (F, T) of an image or the log-mel
features float (F, T) of a sound (float16 for the cached spoken digits), labels the
transcript's characters as ids 1..K (0 is CTC's blank), where the listing's file and line. An
example whose features are too short for its transcript under CTC (fewer output frames than
:func:`rnnkit.decode.ctc.min_frames`) is left out with a warning naming it; a transcript
character outside the alphabet is a DataError. Files split into parts by a seed get the alphabet
of all their transcripts (the same whatever the seed); a character no training file holds is
warned about, as the model cannot learn it.
"""
import hashlib
import math
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rnnkit.config import MAX_BATCH, MAX_SEED, ConfigError, check, check_fractions
from rnnkit.data import DataError, openclipart
from rnnkit.data.captchas import ALPHABET, captcha_set, check_drawable
from rnnkit.data.datasets import cache_dir
from rnnkit.data.labelled import own_parts
from rnnkit.data.text import INVISIBLE
from rnnkit.data.media import (COPY_SUFFIX, MAYBE_COPY, empty_mels, image_features, listing_kind,
                               log_mel, read_image, read_listing, read_wav)
from rnnkit.decode.ctc import min_frames
from rnnkit.tasks.common import warn, warn_shared

# fixed seeds of the rendered captcha sets: the test images never change with the flags
CAPTCHA_SEEDS = {"train": 15_000_001, "val": 15_000_002, "test": 15_000_003}
# the spoken-digit streams: the same seeds, and one more for new utterances of the training voices
SPEECH_SEEDS = {**CAPTCHA_SEEDS, "seen": 15_000_004}


@dataclass
class RecognizeData:
    data: str = field(default="captcha", metadata={
        "help": "captcha, spoken-digits, openclipart, a TSV (path<TAB>text) or a folder"})
    val_data: str = field(default="", metadata={
        "help": "a TSV or folder used as the validation part (files only)"})
    test_data: str = field(default="", metadata={
        "help": "a TSV or folder used as the held-out test part (files only)"})
    alphabet: str = field(default="", metadata={
        "help": "characters to recognise (empty: 0-9A-Z, or those of --data's transcripts)"})
    height: int = field(default=32, metadata={"help": "images are scaled to this many rows",
                                               "range": (4, 1024)})
    sample_rate: int = field(default=8000, metadata={
        "help": "sounds: the sample rate every WAV file must have (Hz)", "range": (1000, 192_000)})
    n_mels: int = field(default=40, metadata={"help": "sounds: mel filterbank channels",
                                               "range": (4, 256)})
    min_chars: int = field(default=4, metadata={"help": "captcha: shortest text", "range": (1, 64)})
    max_chars: int = field(default=6, metadata={"help": "captcha: longest text", "range": (1, 64)})
    train_size: int = field(default=20_000, metadata={
        "help": "captcha, spoken-digits: training examples (made from a fixed seed)",
        "range": (1, 10_000_000)})
    val_size: int = field(default=500, metadata={"help": "captcha, spoken-digits: validation",
                                                  "range": (1, 1_000_000)})
    test_size: int = field(default=1000, metadata={
        "help": "captcha, spoken-digits: held-out test examples (the same in every run)",
        "range": (1, 1_000_000)})
    test_voice: str = field(default="captcha", metadata={
        "help": "spoken-digits: the voice held out for the test part (allison or captcha)",
        "choices": ("captcha", "allison")})
    tempo: float = field(default=1.0, metadata={
        "help": "recognize, training: a random tempo in [1/TEMPO, TEMPO] per example (1: off)",
        "range": (1.0, 4.0)})
    freq_mask: int = field(default=0, metadata={
        "help": "recognize, training: two bands of up to N bins or rows zeroed (0: off)",
        "range": (0, 256)})
    time_mask: int = field(default=0, metadata={
        "help": "recognize, training: two spans of up to N frames zeroed (0: off)",
        "range": (0, 10_000)})
    batch: int = field(default=32, metadata={"help": "examples per training batch",
                                              "range": (1, MAX_BATCH)})
    test_fraction: float = field(default=0.1, metadata={
        "help": "files: share held out for the test part", "range": "(0, 1)"})
    val_fraction: float = field(default=0.1, metadata={
        "help": "files: share held out for validation", "range": "(0, 1)"})
    split_seed: int = field(default=0, metadata={
        "help": "files: seed of the shuffle that splits them into parts", "range": (0, MAX_SEED)})

    def __post_init__(self):
        check(self)
        check_fractions(self)
        if self.min_chars > self.max_chars:
            raise ConfigError(f"RecognizeData.min_chars must be at most max_chars, got "
                              f"{self.min_chars} > {self.max_chars} (--min-chars, --max-chars)")
        if self.data == "spoken-digits" and self.sample_rate != 8000:
            raise ConfigError(f"spoken-digits is recorded at 8000 Hz, got --sample-rate "
                              f"{self.sample_rate}")
        if isinstance(self.alphabet, str):   # composed, as transcripts are read (NFC)
            self.alphabet = unicodedata.normalize("NFC", self.alphabet)
        if len(set(self.alphabet)) != len(self.alphabet):
            raise ConfigError(f"RecognizeData.alphabet must not repeat a character, got "
                              f"{self.alphabet!r} (--alphabet)")

    @staticmethod
    def listed_files(path):
        """The files a TSV listing names (what a resumed run must find unchanged beside it)."""
        from rnnkit.data.media import read_tsv
        return [file for file, _, _ in read_tsv(Path(path))]


@dataclass
class Parts:
    """What the task trains on: the three parts, the alphabet, the input kind and its height."""
    train: list
    val: list
    test: list
    alphabet: str
    kind: str          # "image" or "audio"
    features: int      # F: image rows or mel bins
    source: str        # how the data came, for the log line
    words: str = "space"   # what a word is for the WER: "space"-separated, or each "char"
    extra: dict = field(default_factory=dict)   # more test parts, {name: examples}


def features_of(x):
    """An example's x as float features (F, T): images standardised, sounds as they are."""
    return image_features(x) if isinstance(x, np.ndarray) else x


def encode(text, alphabet, where, part=""):
    """Transcript -> label ids 1..K; a character outside the alphabet is a DataError naming
    ``where`` and (if given) the part it fell in."""
    index = {c: i + 1 for i, c in enumerate(alphabet)}
    for c in text:
        if c not in index:
            raise DataError(f"{where}: transcript {text!r} has {c!r}, which is not in the "
                            f"alphabet {alphabet!r} ({part + ' part; ' if part else ''}"
                            f"--alphabet sets the characters to recognise)")
    return [index[c] for c in text]


SCORED = ("test", "evaluation", "seen voices")   # parts scored, not trained or validated on


def keep_fitting(examples, stride, part):
    """The examples whose T // stride output frames can emit their labels under CTC; the rest
    are named in a warning (the first few) and counted. ``stride`` None: every example (a
    model without CTC, image-to-text, reads any width). A part that is only scored (``SCORED``)
    keeps them all: the model cannot write their transcripts, so they count as its errors
    (left out, the scores were those of the examples it can write; they are left out of its
    loss only, which is infinite for them)."""
    if stride is None:
        return examples
    fits = [e for e in examples if e[0].shape[1] // stride >= min_frames(e[1])]
    dropped = [e for e in examples if e[0].shape[1] // stride < min_frames(e[1])]
    names = ", ".join(w for _, _, w in dropped[:3])
    if not fits:   # (one line: a warning that they are scored, then a refusal, said both)
        raise DataError(f"no {part} example is long enough for its transcript under CTC at time "
                        f"stride {stride}" + (f" (none of {len(dropped):,}: {names}"
                                              f"{', ...' if len(dropped) > 3 else ''})"
                                              if dropped else "")
                        + ("" if part == "evaluation" else "; lower --time-stride"))
    if dropped:
        saved = sum(e[0].shape[1] >= min_frames(e[1]) for e in dropped)   # at time stride 1
        hint = (f"; a lower --time-stride keeps {'them' if saved == len(dropped) else saved}"
                if stride > 1 and saved and part != "evaluation" else "")   # eval: the model's
        what = ("scored as they are read, which cannot be right, and left out of the loss"
                if part in SCORED else "left out")
        warn(f"{len(dropped)} {part} example(s) {what}: too short for their transcripts under "
             f"CTC at time stride {stride} (e.g. {names}){hint}")
    return examples if part in SCORED else fits


def read_files(listing, d):
    """[(x, transcript, where)] of a TSV or folder, and its kind."""
    rows = read_listing(listing, warn)
    kind = listing_kind(rows, listing)
    if kind == "image":
        return [(read_image(p, d.height, w), t, w) for p, t, w in rows], kind
    empty = empty_mels(d.n_mels, d.sample_rate)
    if empty:
        fit = max((n for n in range(1, d.n_mels) if not empty_mels(n, d.sample_rate)), default=1)
        warn(f"{empty} of the {d.n_mels} mel filters (--n-mels) catch no frequency of "
             f"{d.sample_rate} Hz sound's 25 ms window: their features are constant; "
             f"--n-mels {fit} or fewer has none such")
    return [(log_mel(read_wav(p, d.sample_rate, w), d.sample_rate, d.n_mels), t, w)
            for p, t, w in rows], kind


def eval_examples(path, d, kind, alphabet, stride):
    """[(x, label ids, where)] of a TSV or folder to score a trained model on (``d``: its data
    settings; ``kind``: the inputs it reads); a transcript character outside ``alphabet`` is a
    DataError naming the file."""
    examples, other = read_files(path, d)
    if other != kind:
        raise DataError(f"{path}: holds {other} files; expected {kind} files, as the model "
                        f"was trained on")
    out = []
    for x, text, where in examples:
        foreign = [c for c in text if c not in alphabet]
        if foreign:
            raise DataError(f"{where}: transcript {text!r} has {foreign[0]!r}, which the model "
                            f"never learnt to write (its alphabet: {alphabet!r})")
        out.append((x, encode(text, alphabet, where), where))
    return keep_fitting(out, stride, "evaluation")


def captcha_parts(d, log):
    alphabet = d.alphabet or ALPHABET
    check_drawable(alphabet)
    cache = cache_dir() / "captcha"
    sizes = {"train": d.train_size, "val": d.val_size, "test": d.test_size}
    parts = []
    for name, n in sizes.items():
        texts, images = captcha_set(n, alphabet, d.min_chars, d.max_chars, d.height,
                                    CAPTCHA_SEEDS[name], cache, log)
        parts.append([(x, encode(t, alphabet, f"captcha {name} {i}"), f"captcha {name} {i}")
                      for i, (t, x) in enumerate(zip(texts, images))])
    source = (f"captcha {d.min_chars}-{d.max_chars} characters of {alphabet!r}, {d.height} rows; "
              f"train {d.train_size:,}, validation {d.val_size:,}, test {d.test_size:,} "
              f"(fixed seeds)")
    return Parts(*parts, alphabet, "image", d.height, source)


def file_parts(d):
    examples, kind = read_files(d.data, d)
    examples = without_copies(examples, d.data, kind)

    def read_other(listing):
        rows, other = read_files(listing, d)
        if other != kind:
            raise DataError(f"{listing}: holds {other} files, but {d.data} holds {kind} files")
        return rows

    train, val, test = own_parts(examples, d, read_other)
    if d.val_data or d.test_data:
        warn_shared(train, (("--val-data", d.val_data, val), ("--test-data", d.test_data, test)),
                    key=lambda e: _key(e[0]), show=lambda e: e[2])
    alphabet = d.alphabet or "".join(sorted({c for _, t, _ in examples for c in t}))
    hidden = [w for _, t, w in examples if any(unicodedata.category(c) in INVISIBLE for c in t)]
    if hidden and not d.alphabet:   # a class the model must learn to write, seen by nobody
        warn(f"{len(hidden):,} transcript(s) hold invisible characters (a zero-width space, a "
             f"control character: {hidden[0]}), each a class of the alphabet "
             f"{ascii(alphabet)}; drop them, or give --alphabet")
    warn_unlearnable(train, val, test, alphabet, own_split=not (d.val_data or d.test_data))
    parts = [[(x, encode(t, alphabet, w, name), w) for x, t, w in part]
             for part, name in ((train, "training"), (val, "validation"), (test, "test"))]
    features = d.height if kind == "image" else d.n_mels
    source = (f"{d.data}: {len(examples):,} {kind} files; train {len(train):,}, validation "
              f"{len(val):,}, test {len(test):,}; alphabet {alphabet!r}")
    return Parts(*parts, alphabet, kind, features, source)


def _key(x):
    x = np.ascontiguousarray(np.asarray(x))
    return x.shape, hashlib.sha256(x.tobytes()).digest()


def without_copies(examples, listing, kind):
    """``examples`` with each one whose input equals an earlier one's left out, in a warning:
    a copy (``abc (1).png``) that the split puts in another part than its original would be
    scored on an example the model trained on."""
    seen, kept, copies = {}, set(), []
    # a name that reads as a copy's ("abc (1).png", "abc - Copy.png", "abc copy.png") is met
    # after the rest, so its original is the file kept ("abc (1)" sorts before "abc." by name)
    copy = lambda stem: bool(COPY_SUFFIX.search(stem) or MAYBE_COPY.search(stem))
    for i in sorted(range(len(examples)), key=lambda i: copy(Path(str(examples[i][2])).stem)):
        e = examples[i]
        key = _key(e[0])
        if key in seen:
            copies.append((e[2], seen[key][2], e[1] != seen[key][1]))
        else:
            seen[key] = e
            kept.add(i)
    kept = [e for i, e in enumerate(examples) if i in kept]
    if copies:
        other = sum(differ for _, _, differ in copies)
        warn(f"{listing}: {len(copies)} file(s) left out as copies of another (the same "
             f"{'pixels' if kind == 'image' else 'features'}; e.g. "
             f"{copies[0][0]} of {copies[0][1]})"
             + (f", {other} of them with another transcript than the file kept" if other else "")
             + ": in another part than their original they would score the model on what it "
             "trained on")
    return kept


def warn_unlearnable(train, val, test, alphabet, own_split=True):
    """Warn of alphabet characters that only validation or test transcripts hold (the file that
    has the first of them named): the model cannot learn them, they count as errors.
    ``own_split``: the parts were drawn from one listing (another split may help)."""
    seen = {c for _, t, _ in train for c in t}
    held = [(c, w) for _, t, w in val + test for c in t if c in alphabet and c not in seen]
    if held:
        chars = "".join(dict.fromkeys(c for c, _ in held))
        warn(f"{len(chars)} character(s) {chars!r} of the alphabet are in no training file, only "
             f"in validation or test files (e.g. {held[0][1]}): the model cannot learn them; "
             + ("another --split-seed may move such files into training" if own_split else
                "add training files that hold them"))


def spoken_digit_parts(d, log):
    """Training utterances of the training voices, validation of the validation voice, test of
    the held-out voice, and (in ``extra``, as ``seen_voices``) a second test set of new
    utterances of the training voices: the speaker gap is test against seen_voices. Every part
    is built once and cached (:func:`rnnkit.data.spoken_digits.utterance_set`)."""
    from rnnkit.data import spoken_digits as sd
    voices = sd.voices(log=log)
    train_voices, val_voices, test_voice = sd.split_voices(voices, d.test_voice)
    cache = cache_dir() / "spoken-digits" / "features"

    def part(name, names, n):
        made = sd.utterance_set(voices, names, SPEECH_SEEDS[name], n, d.n_mels, cache, log)
        return [(x, encode(digits, sd.DIGITS, "?"), f"spoken-digits {name} {i} ({voice})")
                for i, (x, digits, voice) in enumerate(made)]

    train = part("train", train_voices, d.train_size)
    val = part("val", val_voices, d.val_size)
    test = part("test", [test_voice], d.test_size)
    seen = part("seen", train_voices, d.test_size)
    source = (f"spoken-digits, 3-8 digits, {d.n_mels} mel bins every 10 ms: train "
              f"{d.train_size:,} from {len(train_voices)} voice(s), validation {d.val_size:,} "
              f"({', '.join(val_voices)}), test {d.test_size:,} ({test_voice}, a voice never "
              f"trained on), and {d.test_size:,} new utterances of the training voices")
    return Parts(train, val, test, sd.DIGITS, "audio", d.n_mels, source, words="char",
                 extra={"seen_voices": seen})


def read_parts(d, stride, log=print):
    """The parts of ``d.data`` with the examples too short for their transcripts left out."""
    if d.data in ("captcha", "spoken-digits") and (d.val_data or d.test_data):
        raise ConfigError(f"--val-data and --test-data go with file data; {d.data} makes its "
                          f"own parts (--val-size, --test-size)")
    if d.data == "spoken-digits":
        p = spoken_digit_parts(d, log)
    elif d.data == "captcha":
        p = captcha_parts(d, log)
    elif d.data == "openclipart":   # drawings rendered once, their parts listed in TSVs
        fixed = {"--test-fraction": d.test_fraction != 0.1, "--val-fraction": d.val_fraction != 0.1,
                 "--split-seed": d.split_seed != 0}
        if any(fixed.values()):
            raise ConfigError(f"--data openclipart has a fixed split (by a hash of each drawing's "
                              f"path); {', '.join(f for f, on in fixed.items() if on)} cannot "
                              f"change it")
        p = file_parts(openclipart.as_files(d, log))
    else:
        p = file_parts(d)
    sizes = (len(p.train), len(p.val), len(p.test))
    p.train, p.val, p.test = (keep_fitting(part, stride, name) for part, name in
                              ((p.train, "training"), (p.val, "validation"), (p.test, "test")))
    if sizes != (len(p.train), len(p.val), len(p.test)):
        p.source += (f"; kept (long enough under CTC): train {len(p.train):,}, validation "
                     f"{len(p.val):,} (the test part is scored whole)")
    p.extra = {k: keep_fitting(v, stride, k.replace("_", " ")) for k, v in p.extra.items()}
    return p


def augment(x, labels, d, stride, gen):
    """A training example's features (F, T) at a random tempo, with masked bands and spans
    (SpecAugment's masks, Park et al. 2019; zero is the standardised mean):

        r ~ exp(U[-log tempo, log tempo]),  x'(t) = x(r t)  (linear interpolation, T' = T / r)

    A tempo that would leave too few frames for the labels under CTC is not applied. ``gen``
    (a torch.Generator) makes it the same for the same step."""
    u = lambda: float(torch.rand((), generator=gen))
    F_, T = x.shape
    if d.tempo > 1:
        r = math.exp((2 * u() - 1) * math.log(d.tempo))
        T2 = max(1, round(T / r))
        if T2 // stride >= min_frames(labels):
            x = torch.nn.functional.interpolate(x[None].float(), size=T2, mode="linear",
                                                align_corners=False)[0]        # (F, T2)
    x = x.float().clone()
    for width, size, dim in ((d.freq_mask, F_, 0), (d.time_mask, x.shape[1], 1)):
        for _ in range(2 if width else 0):
            w = min(size, int(u() * (width + 1)))
            start = int(u() * (size - w + 1))
            x.narrow(dim, start, w).zero_()
    return x


def batch_of(examples):
    """Examples -> features (B, F, T) zero-padded, lengths (B,), targets (B, S) padded with 0,
    target lengths (B,)."""
    xs = [features_of(x) for x, _, _ in examples]
    lengths = torch.tensor([x.shape[1] for x in xs])                          # (B,)
    out = torch.zeros(len(xs), xs[0].shape[0], int(lengths.max()))            # (B, F, T)
    for i, x in enumerate(xs):
        out[i, :, :x.shape[1]] = x
    labels = [y for _, y, _ in examples]
    target_lengths = torch.tensor([len(y) for y in labels])                   # (B,)
    targets = torch.zeros(len(labels), max(1, int(target_lengths.max())), dtype=torch.long)
    for i, y in enumerate(labels):
        targets[i, :len(y)] = torch.tensor(y, dtype=torch.long)
    return out, lengths, targets, target_lengths
