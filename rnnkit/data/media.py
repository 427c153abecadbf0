"""Images and sounds as feature matrices for the CTC recogniser, and the lists that pair files
with their transcripts.

An image becomes its grey levels, scaled to a fixed height (aspect kept): rows are features,
columns are time. A sound becomes log-mel filterbank energies (25 ms Hann windows every 10 ms;
the mel scale of O'Shaughnessy 1987 / HTK, m = 2595 log10(1 + f/700)). Both are standardised per
file (zero mean, unit variance: per mel bin for sound), so a batch pads with zeros.

torchaudio would give the same log-mel features, but no torchaudio release matches the pinned
torch (2.13.0), so the short STFT + triangular filterbank below, on ``torch.stft``, stands in.

An image is first turned upright by its EXIF orientation; transparency is flattened onto white
(dark text on a transparent background stays dark on light) and 16-bit or float grey levels are
scaled to 8 bits by the image's own range.

Listings: a UTF-8 TSV file of ``path<TAB>transcript`` lines (paths relative to the TSV's folder;
``#`` lines, blank lines and a ``path<TAB>text`` header skipped), or a folder whose files are
named by their transcripts (``7K3PX.png``, ``7K3PX_2.png``: the part before the first ``_``; a
copy's `` (N)`` is cut, and a ``-N`` where the name without it is another file's transcript).
Shapes: F features (image rows or mel bins), T columns or frames.
"""
import io
import math
import os
import re
import unicodedata
import wave
from pathlib import Path

import numpy as np
import torch

from rnnkit.data.text import DataError, numbered_lines, read_text

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
AUDIO_SUFFIXES = (".wav",)
IMAGES, SOUNDS = "an image (.png, .jpg, .bmp, .gif, .webp, .tif)", "a sound (.wav)"


def kind_of(path):
    """"image" or "audio" by the file's suffix; None for anything else."""
    suffix = Path(path).suffix.lower()
    return "image" if suffix in IMAGE_SUFFIXES else "audio" if suffix in AUDIO_SUFFIXES else None


def standardise(x, dim=None):
    """Zero mean, unit variance (over everything, or along ``dim``)."""
    if dim is None:
        return (x - x.mean()) / (x.std(unbiased=False) + 1e-5)
    return (x - x.mean(dim, keepdim=True)) / (x.std(dim, keepdim=True, unbiased=False) + 1e-5)


def located(path, where):
    """How an error names a file: ``listing.tsv:3: a.png``, or the file alone."""
    return f"{where}: {path}" if where and str(where) != str(path) else str(path)


# ----------------------------------------------------------------- images
def grey_image(image):
    """A PIL image -> a mode "L" image: upright by its EXIF orientation, transparency flattened
    onto white, 16-bit, 32-bit or float grey levels scaled from the image's range to 0..255."""
    from PIL import Image, ImageOps
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I") or image.mode == "F":
        a = np.asarray(image, dtype=np.float64)
        lo, span = a.min(), a.max() - a.min()
        a = (a - lo) * (255.0 / span) if span > 0 else np.full_like(a, 255.0)
        return Image.fromarray(np.round(a).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        image = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image)
    return image.convert("L")


MAX_WIDTH = 50_000   # columns of an image scaled to its rows (a line of some 1,500 characters)


def image_pixels(image, height, at="the image"):
    """A PIL image -> grey levels uint8 (height, W), scaled to ``height`` rows (aspect kept).
    An image wider than MAX_WIDTH columns once scaled raises DataError naming ``at``: a tiny
    flat file (200,000 x 1 pixels, 274 bytes) scaled to 32 rows took 21 GB and minutes."""
    from PIL import Image
    grey = grey_image(image)
    w, h = grey.size
    width = max(1, round(w * height / h))
    if width > MAX_WIDTH:
        raise DataError(f"{at}: {w}x{h} pixels, {width:,} columns wide at --height {height} "
                        f"(at most {MAX_WIDTH:,}): no text line is this flat; crop it, or "
                        f"split it into lines")
    return np.asarray(grey.resize((width, height), Image.BILINEAR), dtype=np.uint8)


def read_image(path, height, where=None):
    """An image file -> grey levels uint8 (height, W). A file PIL cannot read raises DataError
    naming ``where`` (the listing's file and line) and the file."""
    from PIL import Image, UnidentifiedImageError
    at = located(path, where)
    try:
        with Image.open(path) as im:
            im.load()
            if im.width < 1 or im.height < 1:
                raise DataError(f"{at}: an empty image ({im.width}x{im.height})")
            return image_pixels(im, height, at)
    except FileNotFoundError:
        raise DataError(f"{at}: no such file") from None
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{at}: not a readable image ({type(e).__name__}: {e})") from None


def image_features(pixels):
    """uint8 (F, T) grey levels -> float (F, T), standardised."""
    return standardise(torch.from_numpy(np.asarray(pixels, dtype=np.float32)) / 255.0)


# ----------------------------------------------------------------- sound
STREAMED = 0x7FFFF000   # a data size a streaming writer leaves unknown (ffmpeg 0xFFFFFFFF, SoX
# 0x7FFFF000 on a pipe): no check


def read_wav(path, sample_rate, where=None):
    """A WAV file (8, 16, 24 or 32-bit PCM, 32 or 64-bit float; channels averaged) -> float samples
    in [-1, 1] (N,). Another sample rate than ``sample_rate``, no samples, or a file ``wave``
    cannot read raise DataError naming ``where`` and the file."""
    at = located(path, where)
    try:
        source, floats = pcm_header(path)
        with wave.open(source, "rb") as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            frames = w.getnframes()
            raw = w.readframes(frames)
    except FileNotFoundError:
        raise DataError(f"{at}: no such file") from None
    except (wave.Error, EOFError, OSError) as e:
        why = f"{type(e).__name__}: {e}" if str(e) else ("the file ends inside its header" if
                                                          isinstance(e, EOFError) else
                                                          type(e).__name__)
        raise DataError(f"{at}: not a readable WAV file ({why}); rnnkit reads 8, 16, 24 or "
                        f"32-bit PCM and 32 or 64-bit float WAV") from None
    if rate != sample_rate:
        raise DataError(f"{at}: sample rate {rate} Hz, expected {sample_rate} Hz (the run's "
                        f"--sample-rate; resample the file, e.g. sox IN -r {sample_rate} OUT)")
    if (floats and width not in (4, 8)) or (not floats and width not in (1, 2, 3, 4)):
        raise DataError(f"{at}: {8 * width}-bit {'float' if floats else 'PCM'} samples, expected "
                        f"8, 16, 24 or 32-bit PCM or 32 or 64-bit float (e.g. sox IN -b 16 OUT)")
    if width == 3:   # 24-bit PCM, little-endian: each sample its 3 bytes as an int32's top 3
        raw = raw[:len(raw) // (3 * channels) * 3 * channels]
        raw = np.pad(np.frombuffer(raw, np.uint8).reshape(-1, 3), ((0, 0), (1, 0))).tobytes()
        width = 4
    dtype = {4: np.float32, 8: np.float64}[width] if floats else \
        {1: np.uint8, 2: np.int16, 4: np.int32}[width]
    present = len(raw) // (width * channels)
    if present < frames and frames * width * channels < STREAMED:   # (files of 2 GB and more)
        raise DataError(f"{at}: truncated: its header says {frames:,} frames, the file holds "
                        f"{present:,}")
    x = np.frombuffer(raw[:present * width * channels], dtype=dtype)
    if x.size == 0:
        raise DataError(f"{at}: no samples (an empty recording)")
    if floats and not np.isfinite(x).all():
        raise DataError(f"{at}: float samples that are not finite (nan or inf)")
    x = x.astype(np.float32)
    if not floats:
        x = (x - 128) / 128 if width == 1 else x / float(2 ** (8 * width - 1))
    return torch.from_numpy(x.reshape(-1, channels).mean(1))


def mel_filterbank(n_mels, n_fft, sample_rate, f_min=20.0):
    """Triangular filters (n_mels, n_fft//2 + 1), equally spaced on the mel scale from f_min to
    the Nyquist frequency, each peaking at 1."""
    mel = lambda f: 2595.0 * math.log10(1.0 + f / 700.0)
    hz = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)
    lo, hi = mel(f_min), mel(sample_rate / 2)
    edges = torch.tensor([hz(lo + (hi - lo) * i / (n_mels + 1)) for i in range(n_mels + 2)])
    bins = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1)                 # (n_fft/2+1,)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (n_mels, 1)
    rising = (bins - left) / (centre - left)
    falling = (right - bins) / (right - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0)              # (n_mels, bins)


def fft_size(sample_rate):
    """The FFT length of :func:`log_mel`'s 25 ms window."""
    return 2 ** math.ceil(math.log2(round(0.025 * sample_rate)))


def empty_mels(n_mels, sample_rate):
    """How many of the ``n_mels`` filters catch no FFT bin of :func:`log_mel` at ``sample_rate``
    (narrower than a bin: their features are constant, no sound in them)."""
    bank = mel_filterbank(n_mels, fft_size(sample_rate), sample_rate)
    return int((bank.sum(1) == 0).sum())


def log_mel(samples, sample_rate, n_mels=40):
    """Samples (N,) -> standardised log-mel energies (n_mels, T), one frame every 10 ms."""
    win = round(0.025 * sample_rate)
    hop = round(0.010 * sample_rate)
    n_fft = fft_size(sample_rate)
    if samples.numel() < n_fft:   # shorter than one window: pad with silence
        samples = torch.nn.functional.pad(samples, (0, n_fft - samples.numel()))
    spec = torch.stft(samples, n_fft, hop_length=hop, win_length=win,
                      window=torch.hann_window(win), center=True, return_complex=True)
    power = spec.abs() ** 2                                                   # (bins, T)
    mel = mel_filterbank(n_mels, n_fft, sample_rate) @ power                  # (n_mels, T)
    return standardise(torch.log(mel + 1e-6), dim=1)


def pcm_header(path):
    """(source, float?): ``path``, or, where its format chunk says IEEE float samples (tag 3) or
    WAVE_FORMAT_EXTENSIBLE with PCM or float samples (what ffmpeg and sox write for 24/32-bit,
    float, or more than two channels), its bytes as a plain PCM WAV (the tag set to 1) in a file
    object, which Python's ``wave`` reads before 3.12; float? says the samples are floats."""
    with open(path, "rb") as fh:
        head = fh.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return str(path), False
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return str(path), False
            size = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"fmt ":
                where = fh.tell()   # (where the chunk starts, not its size back from the end
                fmt = fh.read(size)   # read: a file cut inside it moved the rewrite onto "WAVE")
                if len(fmt) < size:   # (``wave`` then said "unknown format: 65534")
                    raise EOFError()   # read_wav: "the file ends inside its header"
                tag = fmt[24:26] if len(fmt) >= 26 and fmt[:2] == b"\xfe\xff" else fmt[:2]
                if tag not in (b"\x01\x00", b"\x03\x00") or fmt[:2] == b"\x01\x00":
                    return str(path), False
                break
            fh.seek(size + (size & 1), 1)
        fh.seek(0)
        data = bytearray(fh.read())
    data[where:where + 2] = b"\x01\x00"
    return io.BytesIO(bytes(data)), tag == b"\x03\x00"


# ----------------------------------------------------------------- listings
HEADER = ({"path", "file", "filename", "image", "audio", "wav"},
          {"text", "label", "transcript", "transcription", "sentence"})


def read_listing(path, warn=None):
    """A TSV file or a folder -> [(file path, transcript, where)], ``where`` being ``TSV:line``
    or the file itself. Missing files, empty transcripts and files of no known kind raise
    DataError naming the listing's line; ``warn`` is told of what the reading skips or
    guesses."""
    path, warn = Path(path), warn or (lambda message: None)
    return read_folder(path, warn) if path.is_dir() else read_tsv(path, warn)


def read_folder(path, warn):
    """The files of a folder named by their transcripts (:func:`name_label`, :func:`cut_copies`).
    Hidden files are passed over; files of no known kind are counted in one warning."""
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    folders = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if folders:   # read the files of this folder alone: say what is left
        warn(f"{path}: {len(folders)} subfolder(s) not read (e.g. {', '.join(folders[:3])}); "
             f"only this folder's own files are: move them up, or list every file in a TSV")
    other = [p.name for p in files if not kind_of(p)]
    files = [p for p in files if kind_of(p)]
    if not files:
        raise DataError(f"{path}: no file in this folder is {IMAGES} or {SOUNDS}")
    if other:
        warn(f"{path}: {len(other)} file(s) skipped, neither {IMAGES} nor {SOUNDS} (e.g. "
             f"{', '.join(other[:3])})")
    undecodable = [p for p in files if any("\udc80" <= c <= "\udcff" for c in p.name)]
    if undecodable:   # (Python keeps a name's bytes that are not UTF-8 as lone surrogates)
        shown = os.fsencode(undecodable[0].name)
        raise DataError(f"{path}: the file name {shown!r} is not UTF-8 (a Latin-1 name out of "
                        f"a zip archive?), so it gives no transcript; rename it ({len(undecodable)} "
                        f"such file(s)), or list the files in a TSV")
    names = [name_label(p) for p in files]
    empty = [p.name for p, n in zip(files, names) if not n.strip()]
    if empty:
        raise DataError(f"{path / empty[0]}: its name gives an empty transcript (the part "
                        f"before the first '_', less a copy's ' (N)'; {len(empty)} such file(s)); "
                        f"name the file by its text, or list the files in a TSV")
    labels = cut_copies(names)
    copies = [f"{p.name} as {t!r}" for p, n, t in zip(files, names, labels) if n != t]
    if copies:
        warn(f"{path}: {len(copies)} file name(s) read as copies, their '-N', ' copy' or ' copy "
             f"N' cut as the name without it is another file's transcript (e.g. {', '.join(copies[:3])})")
    return [(p, t, str(p)) for p, t in zip(files, labels)]


# what a file manager adds to a copy's name: `` (1)``, `` (1) (2)``, `` - Copy`` (Windows; not
# macOS's bare `` copy``, which a transcript of words may end with: see MAYBE_COPY)
COPY_SUFFIX = re.compile(r"(\s+\(\d+\)|\s+-\s+copy)+$", re.IGNORECASE)
# what may be a copy's ending: ``-2`` (a second download), macOS's `` copy`` and `` copy 2``;
# cut only where the rest is another file's transcript (:func:`cut_copies`)
MAYBE_COPY = re.compile(r"(?<=.)(-\d+|\s+copy(\s+\d+)?)$", re.IGNORECASE)
COPY_NUMBER = re.compile(r"(?<=copy)\s+\d+$", re.IGNORECASE)   # "abc copy 2" of "abc copy"


def name_label(file):
    """A file's transcript by its name: the part before the first ``_``, less what a copy's
    name adds (:data:`COPY_SUFFIX`: ``abc (1).png``, ``abc (1) (2).png``), in Unicode's composed
    form (NFC: a macOS name's "e" + accent is "é"), without the white space around it (as a
    listing's transcript: ``AB12 .png`` is AB12, not a transcript ending in a space)."""
    return unicodedata.normalize("NFC", COPY_SUFFIX.sub("", file.stem.split("_")[0])).strip()


def cut_copies(labels):
    """``labels`` with a ``-N``, `` copy`` or `` copy N`` ending (:data:`MAYBE_COPY`) cut only
    where the rest is another of them (``abc-2`` or ``abc copy`` beside ``abc``), and again
    while it is (a copy of a copy: ``abc copy copy``, or ``abc copy 2`` beside ``abc copy``
    alone, as macOS names a copy of ``abc copy``): a transcript may hold a '-' and digits, or
    end in the word "copy", of its own."""
    known = set(labels)

    def original(t):
        for _ in range(len(t)):
            rest = next((r for r in (MAYBE_COPY.sub("", t), COPY_NUMBER.sub("", t))
                         if r != t and r in known), None)
            if rest is None:
                return t
            t = rest
        return t
    return [original(t) for t in labels]


def read_tsv(path, warn=None):
    """The ``path<TAB>transcript`` lines of a UTF-8 TSV file (a byte-order mark, a first
    ``path<TAB>text`` header line and ``#`` comment lines skipped; ``warn`` is told how many
    comment lines were)."""
    rows, comments = [], []
    for n, line in numbered_lines(read_text(path)):
        if not line.strip():
            continue
        if line.startswith("#"):
            comments.append(n)
            continue
        fields = [f.strip().lower() for f in line.split("\t")]
        if not rows and len(fields) >= 2 and fields[0] in HEADER[0] and fields[1] in HEADER[1]:
            continue
        rows.append(tsv_row(path, n, line))
    said = (f"; {len(comments):,} lines that start with '#' were passed over as comments "
            f"(a file named '#...' is listed as ./#...)") if comments else ""
    if not rows:
        raise DataError(f"{path}: no path<TAB>transcript lines{said}")
    if comments and warn is not None:
        warn(f"{path}: {len(comments):,} lines that start with '#' were passed over as comments "
             f"(the first: line {comments[0]}; a file named '#...' is listed as ./#...)")
    return rows


def tsv_row(path, n, line):
    """(file, transcript, where) of line ``n`` of TSV ``path``; DataError if it is not one."""
    where = f"{path}:{n}"
    if "\t" not in line:
        raise DataError(f"{where}: expected path<TAB>transcript, got {line[:60]!r}")
    name, text = line.split("\t", 1)
    if "\t" in text.strip():
        raise DataError(f"{where}: expected path<TAB>transcript, got {line.count(chr(9)) + 1} "
                        f"tab-separated fields (a transcript holds no tab: keep the two "
                        f"columns)")
    text = unicodedata.normalize("NFC", text.strip())   # "é" one code point, as typed
    file = (path.parent / name.strip()).resolve()
    if not text:
        raise DataError(f"{where}: an empty transcript for {name!r}")
    if kind_of(file) is None:
        raise DataError(f"{where}: {name!r} is neither {IMAGES} nor {SOUNDS}")
    if not file.is_file():
        raise DataError(f"{where}: no such file {name!r} (looked for {file})")
    return file, text, where


def listing_kind(rows, listing):
    """The one kind ("image" or "audio") of a listing's files; a mix raises DataError."""
    kinds = {kind_of(p) for p, _, _ in rows}
    if len(kinds) > 1:
        first = {k: w for p, _, w in reversed(rows) for k in [kind_of(p)]}
        raise DataError(f"{listing}: mixes images and sounds (an image at {first['image']}, a "
                        f"sound at {first['audio']}); one recogniser reads one kind")
    return kinds.pop()
