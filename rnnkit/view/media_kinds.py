"""The views of the runs that read images or sound: the CTC recogniser (the input as the model
sees it, each label's probability frame by frame, the greedy and beam transcripts) and the
image-to-text generator (the input, the greedy and beam texts).

The page sends one file (a PNG/JPEG or a WAV, as ``rnnkit recognize`` reads them) in the JSON
body, base64-encoded, with its name; it is written with that name's suffix to a temporary
folder for the readers, and removed after (errors name it as the page does). Shapes: F features (rows of pixels, or mel bands), T columns or
10 ms frames, T' the model's frames after its time stride, K+1 classes (0: the CTC blank).
"""
import base64
import binascii
import tempfile
from pathlib import Path

import torch

from rnnkit.data import DataError
from rnnkit.data.media import IMAGE_SUFFIXES
from rnnkit.view.base import View, evenly, finite
from rnnkit.view.params import LIMITS, RequestError

SHOWN_ROWS, SHOWN_COLUMNS = 96, 600   # the input's heat map, thinned evenly beyond
SHOWN_LABELS = 24                     # labels drawn over the frames (the likeliest ones)
SHOWN_FLOOR = 0.05                    # ... among those reaching this probability in some frame


class MediaView(View):
    """What the two kinds share: the uploaded file, the input drawn, the texts read."""
    ACTIONS = {"recognize": "recognize"}

    def __init__(self, reader):
        super().__init__()
        self.reader = reader

    def info(self):
        r = self.reader
        return {**super().info(), "input": r.kind, "alphabet": "".join(r.alphabet),
                "suffixes": list(IMAGE_SUFFIXES) if r.kind == "image" else [".wav"],
                "file_limit": LIMITS["file"]}

    def recognize(self, p):
        name = Path(p.text("name", limit=200)).name
        if name in ("", ".", "..") or any(ord(c) < 32 for c in name):
            raise RequestError(f"name must be the file's name, got {p.values['name']!r}")
        raw = p.text("file", limit=LIMITS["body"], empty=True)
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError("file must be the file's bytes in base64") from None
        if not data:
            raise RequestError(f"{name} is empty (0 bytes)")
        if len(data) > LIMITS["file"]:
            raise RequestError(f"{name} has {len(data):,} bytes; the view reads files of at most "
                               f"{LIMITS['file']:,} (use `rnnkit recognize RUN FILE`)", 413)
        beam = p.int("beam", 0, LIMITS["beam"], 0)
        with tempfile.TemporaryDirectory(prefix="rnnkit-view-") as folder:
            path = Path(folder) / f"upload{Path(name).suffix.lower()}"   # the suffix says the kind
            path.write_bytes(data)
            try:
                with self.lock:
                    return {"name": name, **self.read(path, beam)}
            except DataError as e:   # named as the page knows it, not by the temporary file
                raise DataError(str(e).replace(str(path), name)) from None

    def texts(self, path, beam):
        """[{"name", "text", "score"}]: greedy, and the beam search's best when ``beam``."""
        out = []
        for label, b in (("greedy", 0),) + ((("beam", beam),) if beam else ()):
            text, score = self.reader.recognize([path], b)[0]
            out.append({"name": label if not b else f"beam {b}", "text": text,
                        "score": round(score, 4)})
        return out


class RecognizeView(MediaView):
    kind = "recognize"

    @classmethod
    def load(cls, path, checkpoint):
        from rnnkit.tasks.recognize import Recognizer
        return cls(Recognizer.load(path))

    def read(self, path, beam):
        rec = self.reader
        lp, x = rec.log_probs(path)                              # (T', K+1), (F, T)
        p = lp.exp()
        peak = p[:, 1:].max(0).values                                        # (K,)
        used = {int(k) for k in lp.argmax(-1).tolist() if k}                 # the greedy path's
        likely = [int(k) + 1 for k in peak.argsort(descending=True).tolist()
                  if peak[k] >= SHOWN_FLOOR]
        labels = sorted(used | set(likely[:max(0, SHOWN_LABELS - len(used))]))
        frames = evenly(p.shape[0], SHOWN_COLUMNS)
        stride = x.shape[1] / max(1, p.shape[0])
        return {"input": picture(x), "kind": rec.kind, "texts": self.texts(path, beam),
                "frames": {"count": p.shape[0], "centres": [round((t + 0.5) * stride, 2)
                                                            for t in frames],
                           "labels": ["blank"] + [rec.alphabet[k - 1] for k in labels],
                           "probabilities": [finite(p[frames, k].tolist(), 3) for k in [0] + labels],
                           "greedy": [int(lp[t].argmax()) for t in frames]}}


class ImageToTextView(MediaView):
    kind = "image-to-text"

    @classmethod
    def load(cls, path, checkpoint):
        from rnnkit.tasks.image_to_text import ImageReader
        return cls(ImageReader.load(path))

    def read(self, path, beam):
        from rnnkit.data.media import read_image
        from rnnkit.tasks.recognize_data import features_of
        texts = self.texts(path, beam)               # first: it refuses a file of another kind
        x = features_of(read_image(path, self.reader.data_config.height))
        return {"input": picture(x), "kind": "image", "texts": texts}


def picture(x):
    """The model's input (F, T) as rows of values in [0, 1] (thinned evenly to what the page
    draws), with its size."""
    x = torch.as_tensor(x, dtype=torch.float64)
    F, T = x.shape
    x = x[evenly(F, SHOWN_ROWS)][:, evenly(T, SHOWN_COLUMNS)]
    lo, hi = float(x.min()), float(x.max())
    x = (x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)
    return {"rows": [finite(r, 3) for r in x.tolist()], "size": [F, T]}
