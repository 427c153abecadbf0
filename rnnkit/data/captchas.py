"""Captcha images rendered by the ``captcha`` package (PyPI, 0.7.1, BSD; its own DroidSansMono
font), reproducibly: a seed fixes the texts and every random choice of the drawing.

``captcha`` 0.7.1 draws its randomness from the ``secrets`` module, which cannot be seeded; while
rendering, :func:`seeded` puts a seeded stand-in with the same three functions in its place
(``randbelow``, ``choice``, ``randbits``), so the test images are the same on every run. Sets
are cached as grey-level arrays under the data cache (``$RNNKIT_DATA/captcha``): rendering takes
about 10 ms an image.
"""
import contextlib
import hashlib
import os
import random
import tempfile
import zipfile

import numpy as np

from rnnkit.data.media import image_pixels
from rnnkit.data.text import DataError

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
WIDTH, HEIGHT = 160, 60      # the package's default image size
VERSION = "0.7.1"


class SeededSecrets:
    """The part of the ``secrets`` module that ``captcha.image`` uses, from a seeded generator."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def randbelow(self, n):
        return self.rng.randrange(n)

    def choice(self, seq):
        return self.rng.choice(seq)

    def randbits(self, k):
        return self.rng.getrandbits(k)


def image_module():
    try:
        import captcha
        import captcha.image
    except ImportError:
        raise DataError("--data captcha needs the captcha package: pip install "
                        f"'captcha=={VERSION}' (or rnnkit[vision])") from None
    if getattr(captcha, "__version__", VERSION) != VERSION:
        raise DataError(f"--data captcha renders with captcha {VERSION} (the figures and the "
                        f"cached sets are of that version), found {captcha.__version__}")
    return captcha.image


@contextlib.contextmanager
def seeded(module, seed):
    """``module.secrets`` replaced by a seeded stand-in while the block runs."""
    saved = module.secrets
    module.secrets = SeededSecrets(seed)
    try:
        yield
    finally:
        module.secrets = saved


def check_drawable(alphabet):
    """A DataError for an alphabet character the captcha's fonts cannot draw: whitespace (a
    blank image that any run of spaces reads) or one a font has no glyph for (drawn as the
    font's "missing" box, the same for every such character: 日 and 本 were one image)."""
    blank = [c for c in alphabet if c.isspace()]
    if blank:
        raise DataError(f"--alphabet {alphabet!r} holds whitespace ({blank[0]!r}): a captcha "
                        f"draws it as nothing; leave it out")
    module = image_module()

    def mask(font, c):
        m = font.getmask(c)
        return m.size, bytes(m)
    for font in module.ImageCaptcha(width=WIDTH, height=HEIGHT).truefonts:
        missing = mask(font, "\U0010fffd")          # a noncharacter: the font's missing glyph
        empty = [c for c in alphabet if not any(mask(font, c)[1])]   # zero-width: no ink
        if empty:
            raise DataError(f"--alphabet {alphabet!r} holds {empty[0]!r}, which the captcha's "
                            f"font draws as nothing (a zero-width character?); leave it out")
        lacking = [c for c in alphabet if mask(font, c) == missing]
        if lacking:
            raise DataError(f"--alphabet: the captcha's font has no glyph for {lacking[0]!r} "
                            f"({len(lacking)} such character(s)): it would draw each as the "
                            f"same box; the captchas draw Latin letters, digits and symbols")


def random_texts(n, alphabet, min_chars, max_chars, seed):
    """``n`` strings of min_chars..max_chars characters drawn uniformly from ``alphabet``."""
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(min_chars, max_chars)))
            for _ in range(n)]


def render(texts, height, seed):
    """The captcha of each text, as grey levels uint8 (height, W), the same for the same seed."""
    module = image_module()
    maker = module.ImageCaptcha(width=WIDTH, height=HEIGHT)
    with seeded(module, seed):
        return [image_pixels(maker.generate_image(t), height) for t in texts]


def captcha_set(n, alphabet, min_chars, max_chars, height, seed, cache=None, log=print):
    """(texts, images) of ``n`` captchas: random texts and their renderings from ``seed``. Read
    from / written to ``cache`` (a folder) when given; a damaged cache file is rendered again."""
    texts = random_texts(n, alphabet, min_chars, max_chars, seed)
    key = hashlib.sha256(repr((VERSION, n, alphabet, min_chars, max_chars, height, seed,
                               WIDTH, HEIGHT)).encode()).hexdigest()[:16]
    path = cache / f"{key}.npz" if cache is not None else None
    if path is not None and path.is_file():
        try:
            with np.load(path) as z:
                pixels, widths = z["pixels"], z["widths"]
                images = np.split(pixels, np.cumsum(widths)[:-1], axis=1)
            # every image whole: n of them, the rows asked for, the widths summing to the pixels
            if len(images) == n and pixels.ndim == 2 and pixels.shape[0] == height \
                    and int(widths.sum()) == pixels.shape[1] and (widths > 0).all():
                return texts, images
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):   # cut off, damaged
            pass
    image_module()   # the package, before a promise of minutes of rendering
    if n > 500:
        log(f"rendering {n:,} captchas (seed {seed}; about {n // 100} s, cached after)")
    images = render(texts, height, seed)
    if path is not None:
        save(path, images)
    return texts, images


def save(path, images):
    """The images side by side in one array plus their widths, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, pixels=np.concatenate(images, axis=1),
                     widths=np.array([im.shape[1] for im in images]))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
