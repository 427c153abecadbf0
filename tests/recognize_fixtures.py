"""Tiny recognition data written by the tests: captcha images named by their text, a TSV of them,
and WAV files of tones standing for spoken digits (no network, no real recordings)."""
import math
import wave

import numpy as np
from PIL import Image

from rnnkit.models.recognizer import RecognizerConfig
from rnnkit.tasks.recognize import build_recognize_task
from rnnkit.tasks.recognize_data import RecognizeData

TEXTS = ["AB1", "B12", "2A", "1BA", "A2B1", "21", "BB2", "12AB", "A1", "2BA1", "1A2", "B2A"]
TINY_MODEL = {"conv_layers": 2, "channels": 4, "time_stride": 2, "layers": 1, "hidden": 16,
              "dropout": 0.0}


def write_captchas(folder, texts=TEXTS, seed=0):
    """One PNG per text, rendered by the captcha package, named TEXT_i.png."""
    from rnnkit.data.captchas import HEIGHT, WIDTH, image_module, seeded
    module = image_module()
    maker = module.ImageCaptcha(width=WIDTH, height=HEIGHT)
    folder.mkdir(parents=True, exist_ok=True)
    with seeded(module, seed):
        for i, t in enumerate(texts):
            maker.generate_image(t).save(folder / f"{t}_{i}.png")
    return folder


def write_tsv(path, rows):
    path.write_text("".join(f"{name}\t{text}\n" for name, text in rows), encoding="utf-8")
    return path


def write_wav(path, samples, rate=8000, width=2):
    """Mono PCM samples in [-1, 1] as a WAV file of ``width`` bytes a sample."""
    scale = 2 ** (8 * width - 1) - 1
    data = (np.asarray(samples) * scale).astype({2: np.int16, 3: "<i4", 4: np.int32}[width])
    data = data.tobytes()
    if width == 3:                     # each sample's low 3 bytes of 4, little-endian
        data = np.frombuffer(data, np.uint8).reshape(-1, 4)[:, :3].tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)
    return path


def tone_digits(digits, rate=8000, seed=0):
    """A 'spoken' digit string: each digit a 0.15 s tone of its own pitch, with short pauses."""
    rng = np.random.default_rng(seed)
    parts = []
    for d in digits:
        t = np.arange(int(0.15 * rate)) / rate
        parts += [0.5 * np.sin(2 * math.pi * (300 + 150 * int(d)) * t), np.zeros(int(0.05 * rate))]
    x = np.concatenate(parts)
    return x + 0.01 * rng.standard_normal(len(x))


def recognize_task(tmp_path, **model):
    """A recogniser task on a folder of 12 captchas (16 rows high)."""
    folder = write_captchas(tmp_path / "captchas")
    data = RecognizeData(data=str(folder), height=16, batch=4, test_fraction=0.25,
                         val_fraction=0.25)
    return build_recognize_task(data, RecognizerConfig(**{**TINY_MODEL, **model}),
                                log=lambda *a: None)


def recognitions(recognizer):
    """Greedy and beam transcripts with their scores of three images of the training folder."""
    from pathlib import Path
    files = sorted(Path(recognizer.data_config.data).glob("*.png"))[:3]
    return [list(r) for r in recognizer.recognize(files)] + \
        [list(r) for r in recognizer.recognize(files, beam=3)]


def image_to_text_task(tmp_path, **model):
    """The 1→N model on the same folder of 12 captchas."""
    from rnnkit.models.image_to_text import ImageToTextConfig
    from rnnkit.tasks.image_to_text import build_image_to_text_task
    folder = write_captchas(tmp_path / "captchas")
    data = RecognizeData(data=str(folder), height=16, batch=4, test_fraction=0.25,
                         val_fraction=0.25)
    config = ImageToTextConfig(**{"conv_layers": 2, "channels": 4, "vector": 16, "hidden": 16,
                                  "embed": 8, "dropout": 0.0, "max_len": 8, **model})
    return build_image_to_text_task(data, config, log=lambda *a: None)
