"""Spoken digit strings built from real recordings of single digits, with a held-out voice.

Voices (each: one recording of every digit 0-9, 8 kHz):

- ``allison``: a human speaker, Debian's ``asterisk-core-sounds-en-wav`` 1.6.1-1 (CC-BY-SA-3.0),
  ``usr/share/asterisk/sounds/en_US_f_Allison/digits/[0-9].wav``, fetched with ``apt-get
  download`` and ``dpkg-deb -x`` (nothing installed) into ``$RNNKIT_DATA/spoken-digits``.
- ``captcha``: the voice of the ``captcha`` package 0.7.1 (BSD), ``captcha/data/[0-9]/default.wav``.
- ``espeak-*``: synthetic voices of ``espeak-ng`` where it is installed (``make speech-data``),
  resampled from 22,050 Hz.

An utterance is 3-8 random digits, each clip trimmed of its silence, sped up or slowed down
(0.9-1.1x, resampled: tempo and pitch together, as Ko et al. 2015's speed perturbation), scaled
(-6..+6 dB), separated by 50-300 ms pauses, with white noise at 20-40 dB SNR. Training
utterances are made from the step's seed on the fly (no two alike); the test voice never
appears in training or validation. Transcripts are the digits, one label each.

A part (``n`` utterances of one seeded stream) is built once and its log-mel features (float16,
40 x ~300 frames an utterance) cached under ``$RNNKIT_DATA/spoken-digits/features``, keyed by a
hash of everything that makes it: the builder's version, the seed, ``n``, the mel bins, and the
voices' names and samples (so a new espeak-ng voicing builds anew). Building costs about 5 ms an
utterance on an idle core (20,000: 100 s idle, 230 s on a loaded 2-core machine; 516 MB); a
training step then reads features only.
"""
import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from rnnkit.data.datasets import cache_dir
from rnnkit.data.fetchers import fetch_timeout
from rnnkit.data.media import log_mel, read_wav
from rnnkit.data.text import DataError

RATE = 8000
DIGITS = "0123456789"
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DEB, DEB_VERSION = "asterisk-core-sounds-en-wav", "1.6.1-1"
DEB_DIR = "usr/share/asterisk/sounds/en_US_f_Allison/digits"
# sha256 of the ten recordings 0.wav..9.wav concatenated in digit order
SHA256 = {"allison": "d96284e2b926f17dd074447e877dd20634127a6cfd5853b93d6b100df429506a",
          "captcha": "f9377261bf3fe0de53671020f9d95772f852edad9e20493345332ad63512fa2c"}
BUILDER = 1     # bump when utterance() or log_mel() changes: the cached parts are rebuilt
ESPEAK_VOICES = ["en-us+m1", "en-us+m3", "en-us+m5", "en-us+m7", "en-us+f1", "en-us+f2",
                 "en-us+f4", "en+m2", "en+f3", "en-gb-x-rp+m4", "en-us+klatt", "en+croak"]


def digest(files):
    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).read_bytes())
    return h.hexdigest()


def fetch_allison(folder):
    """The ten digit recordings of the Debian package into ``folder`` (checked by checksum)."""
    files = [folder / f"{d}.wav" for d in DIGITS]
    if all(f.is_file() for f in files) and digest(files) == SHA256["allison"]:
        return files
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for cmd in (["apt-get", "download", f"{DEB}={DEB_VERSION}"],
                    ["sh", "-c", f"dpkg-deb -x {DEB}_*.deb root"]):
            limit = fetch_timeout()
            try:
                done = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True,
                                      timeout=limit)
            except FileNotFoundError:
                raise DataError(f"spoken-digits: {cmd[0]} not found; the {DEB} recordings come "
                                f"from Debian's package archive") from None
            except subprocess.TimeoutExpired:   # an archive out of reach: apt retries long
                raise DataError(f"spoken-digits: {' '.join(cmd[:2])} did not finish within "
                                f"{limit:g} s; is Debian's package archive reachable? "
                                f"(RNNKIT_FETCH_TIMEOUT sets the limit in seconds)") from None
            if done.returncode:
                raise DataError(f"spoken-digits: {' '.join(cmd)} failed: "
                                f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")
        for d, f in zip(DIGITS, files):
            shutil.copyfile(Path(tmp) / "root" / DEB_DIR / f"{d}.wav", f)
    if digest(files) != SHA256["allison"]:
        raise DataError(f"spoken-digits: the recordings of {DEB} {DEB_VERSION} do not match their "
                        f"recorded checksum")
    return files


def captcha_files():
    try:
        import captcha
    except ImportError:
        raise DataError("spoken-digits: the test voice ships in the captcha package: pip install "
                        "'captcha==0.7.1' (or rnnkit[vision])") from None
    root = Path(captcha.__file__).parent / "data"
    files = [root / d / "default.wav" for d in DIGITS]
    if not all(f.is_file() for f in files) or digest(files) != SHA256["captcha"]:
        raise DataError(f"spoken-digits: {root}: the digit recordings of captcha 0.7.1 are "
                        f"missing or differ")
    return files


def resample(x, factor):
    """x (N,) -> round(N / factor) samples: played at the same rate, the sound ``factor`` times
    faster (and higher); or, for rates, from r to r / factor. Band-limited (the spectrum is cut
    or padded with zeros), so nothing aliases."""
    n_out = max(2, round(len(x) / factor))
    spectrum = torch.fft.rfft(x)
    keep = min(len(spectrum), n_out // 2 + 1)
    return torch.fft.irfft(spectrum[:keep], n=n_out) * (n_out / len(x))


def trim(x, threshold=0.05, frame=80):
    """The clip without its leading and trailing silence (frames under ``threshold`` of the
    loudest frame's RMS)."""
    n = len(x) // frame
    rms = x[:n * frame].reshape(n, frame).pow(2).mean(1).sqrt()
    loud = (rms >= threshold * rms.max()).nonzero().flatten()
    return x[int(loud[0]) * frame:(int(loud[-1]) + 1) * frame] if len(loud) else x


def espeak_clips(voice, cache):
    """The ten digits spoken by an espeak-ng voice, at 8 kHz (cached as WAV files)."""
    folder = cache / voice
    clips = []
    for d, word in zip(DIGITS, WORDS):
        path = folder / f"{d}.wav"
        if not path.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            raw = folder / f"{d}.22k.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), word], check=True,
                           capture_output=True)
            x = read_native(raw)
            write_pcm16(path, resample(x, 22050 / RATE))
            raw.unlink()
        clips.append(read_wav(path, RATE))
    return clips


def read_native(path):
    """A 16-bit mono WAV at whatever rate it has, as floats."""
    import wave
    with wave.open(str(path), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return torch.from_numpy(data.astype(np.float32) / 32768)


def write_pcm16(path, x):
    import wave
    data = (x.clamp(-1, 1) * 32767).to(torch.int16).numpy()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(data.tobytes())


def voices(test_voice="captcha", log=print):
    """{voice name: ten trimmed clips (float tensors at 8 kHz)}: allison, captcha and, where
    espeak-ng is installed, its voices."""
    cache = cache_dir() / "spoken-digits"
    found = {"allison": [read_wav(f, RATE) for f in fetch_allison(cache / "allison")],
             "captcha": [read_wav(f, RATE) for f in captcha_files()]}
    if shutil.which("espeak-ng"):
        for v in ESPEAK_VOICES:
            found["espeak-" + v] = espeak_clips(v, cache / "espeak")
    else:
        log("spoken-digits: espeak-ng is not installed (make speech-data): training on one "
            "voice only")
    return {name: [trim(c) for c in clips] for name, clips in found.items()}


def utterance(clips, rng):
    """A random digit string spoken by one voice's ``clips``: (samples (N,), digits)."""
    digits = "".join(rng.choice(list(DIGITS), size=int(rng.integers(3, 9))))
    pieces = [torch.zeros(int(rng.uniform(0.1, 0.3) * RATE))]
    for d in digits:
        clip = resample(clips[int(d)], rng.uniform(0.9, 1.1))
        pieces += [clip * 10 ** (rng.uniform(-6, 6) / 20),
                   torch.zeros(int(rng.uniform(0.05, 0.3) * RATE))]
    x = torch.cat(pieces)
    snr = rng.uniform(20, 40)
    noise = torch.from_numpy(rng.standard_normal(len(x)).astype(np.float32))
    x = x + noise * x.pow(2).mean().sqrt() * 10 ** (-snr / 20)
    return x / max(1.0, float(x.abs().max())), digits


def split_voices(all_voices, test_voice):
    """(training voices, validation voices, test voice): an espeak voice is kept for validation
    where there are any, so that model selection, too, sees a voice it did not train on."""
    if test_voice not in all_voices:
        raise DataError(f"spoken-digits: no voice {test_voice!r}; there are {sorted(all_voices)}")
    rest = sorted(v for v in all_voices if v != test_voice)
    synthetic = [v for v in rest if v.startswith("espeak-")]
    val = [synthetic[-1]] if synthetic else rest
    train = [v for v in rest if v not in val] if synthetic else rest
    return train, val, test_voice


def seed_of(*parts):
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


def make(all_voices, names, seed, i):
    """Utterance ``i`` of the stream ``seed`` over the voices ``names``:
    (samples, digits, voice)."""
    rng = np.random.default_rng(seed_of(seed, i))
    voice = names[int(rng.integers(len(names)))]
    x, digits = utterance(all_voices[voice], rng)
    return x, digits, voice



def voices_digest(all_voices, names):
    """sha256 of the named voices' names and samples, in the order given."""
    h = hashlib.sha256()
    for name in names:
        h.update(name.encode() + b"\0")
        for clip in all_voices[name]:
            h.update(np.ascontiguousarray(clip.numpy(), dtype=np.float32).tobytes())
    return h.hexdigest()


def utterance_set(all_voices, names, seed, n, n_mels, cache=None, log=print):
    """Utterances 0..n-1 of the stream ``seed`` over the voices ``names`` as
    [(log-mel features float16 (n_mels, T), digits, voice)]: :func:`make` then
    :func:`rnnkit.data.media.log_mel`. Read from / written to ``cache`` (a folder) when given; a
    damaged cache file is built again."""
    key = hashlib.sha256(repr((BUILDER, RATE, seed, n, n_mels, names,
                               voices_digest(all_voices, names))).encode()).hexdigest()[:16]
    path = cache / f"{key}.npz" if cache is not None else None
    if path is not None and path.is_file():
        with contextlib.suppress(OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            with np.load(path) as z:
                feats = np.split(z["features"], np.cumsum(z["widths"])[:-1], axis=1)
                digits, voice = z["digits"].tolist(), z["voice"].tolist()
            if len(feats) == len(digits) == len(voice) == n:
                return [(torch.from_numpy(f), d, names[v]) for f, d, v in zip(feats, digits, voice)]
    if n >= 1000:
        log(f"spoken-digits: building {n:,} utterances (seed {seed}; about 5 ms each on an idle "
            f"core; cached after)")
    out = []
    for i in range(n):
        x, digits, voice = make(all_voices, names, seed, i)
        out.append((log_mel(x, RATE, n_mels).to(torch.float16), digits, voice))
    if path is not None:
        save_set(path, out, names)
    return out


def save_set(path, examples, names):
    """The features side by side in one array, their widths, digits and voice indices; written
    atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, features=torch.cat([x for x, _, _ in examples], 1).numpy(),
                     widths=np.array([x.shape[1] for x, _, _ in examples]),
                     digits=np.array([d for _, d, _ in examples]),
                     voice=np.array([names.index(v) for _, _, v in examples]))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
