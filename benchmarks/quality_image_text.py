"""Titles from drawings (openclipart): rnnkit's image-to-text model beside a nearest-neighbour
and a most-frequent-title baseline, on the held-out test drawings, one CPU thread.

    python benchmarks/quality_image_text.py [--size 48] [--steps 2000] [--out runs/bench-clipart]
        [--threads 1] [--skip-train] [-- more flags for rnnkit train image-to-text]

Needs ``make clipart-data`` (Debian openclipart-svg and librsvg2-bin). The first run renders the
kept drawings once (:mod:`rnnkit.data.openclipart`, about 13 minutes at nice 10, cached). Then it
trains ``rnnkit train image-to-text --data openclipart`` for a step budget (so that other load on
the machine changes the time but not the figures; unless flags are given after ``--``, with
``RECIPE``: the encoder at half the default channels), or with ``--skip-train`` takes the run
already in ``--out``. It reads every test drawing with best.pt, greedily and with a beam of 5,
prints how many units of the image vector are 0 on every test drawing (a dead ReLU unit carries
nothing of the image to the generator), and scores beside the model:

- most frequent: the training part's most frequent title, for every drawing (with at most 20
  drawings a title several tie; the first in meta.tsv's hash order is taken);
- nearest neighbour, pixels: the title of the training drawing nearest in Euclidean distance
  between the drawings scaled to 16x16 and standardised (zero mean, unit variance);
- nearest neighbour, CNN vector: the same in the trained model's image vectors (cosine), i.e.
  retrieval with the model's own encoder instead of generation.

Metrics on the test part (titles as normalised by rnnkit.data.openclipart):

    exact        = share of drawings whose output is the title exactly
    CER          = character edit distance summed / title characters summed
    word prec.   = output words that are a word of the title or of a keyword / output words
    title recall = title words that appear in the output / title words
    words        = output words per drawing
"""
import argparse
import shlex
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from rnnkit.cli.main import main
from rnnkit.data import openclipart as oc
from rnnkit.data.datasets import cache_dir
from rnnkit.data.media import image_features, read_image
from rnnkit.tasks.image_to_text import ImageReader, beam_read, greedy_read
from rnnkit.tasks.metrics import sequence_accuracy, token_error_rate

MAX_LEN = oc.MAX_CHARS + 1     # the longest title and </s>
NN_SIDE = 16
BEAM = 5         # the beam of the searched row (no length normalisation: the most probable title)
RECIPE = ["--channels", "16"]


def scores(hyps, test):
    """The metrics above for outputs ``hyps`` against the test drawings' metadata."""
    refs = [m["title"] for m in test]
    said = [h.split() for h in hyps]
    good = sum(w in set(m["title"].split()) | m["keywords"] for ws, m in zip(said, test)
               for w in ws)
    title_words = [r.split() for r in refs]
    recalled = sum(w in ws for ws, rs in zip(said, title_words) for w in rs)
    n_said = sum(map(len, said))
    return {"exact": sequence_accuracy(hyps, refs),
            "cer": token_error_rate([list(h) for h in hyps], [list(r) for r in refs]),
            "word_precision": good / max(n_said, 1),
            "title_recall": recalled / max(1, sum(map(len, title_words))),
            "words": n_said / max(len(hyps), 1)}


def small(png):
    """A drawing scaled to NN_SIDE x NN_SIDE, standardised: (NN_SIDE * NN_SIDE,)."""
    with Image.open(png) as im:
        x = np.asarray(im.convert("L").resize((NN_SIDE, NN_SIDE), Image.BOX), dtype=np.uint8)
    return image_features(x).flatten()


def nearest(train_x, test_x, titles, cosine=False):
    """For each test row, the title of the nearest training row."""
    if cosine:
        sim = torch.nn.functional.normalize(test_x, dim=1) @ torch.nn.functional.normalize(
            train_x, dim=1).T                                                   # (N_test, N_train)
        idx = sim.argmax(1)
    else:
        idx = torch.cdist(test_x, train_x).argmin(1)
    return [titles[i] for i in idx.tolist()]


@torch.no_grad()
def model_outputs(run, train, test, size):
    """(greedy titles of the test drawings, beam-searched titles (beam 5), their
    nearest-neighbour titles in the CNN vectors)."""
    reader = ImageReader.load(run / "best.pt")
    model = reader.model.eval()

    def images(rows):
        return torch.stack([image_features(read_image(m["png"], size)) for m in rows])

    hyps, beam_hyps, vectors = [], [], {}
    text = lambda read: ["".join(reader.alphabet[k - 1] for k in y) for y, _ in read]
    for name, rows in (("train", train), ("test", test)):
        out = []
        for i in range(0, len(rows), 256):
            x = images(rows[i:i + 256])                                         # (B, F, W)
            out.append(model.encode(x))
            if name == "test":
                hyps += text(greedy_read(model, x))
                beam_hyps += text(beam_read(model, x, BEAM))
        vectors[name] = torch.cat(out)
    dead = int((vectors["test"] == 0).all(0).sum())
    print(f"image vector: {dead} of {vectors['test'].shape[1]} units are 0 on every test drawing")
    return hyps, beam_hyps, nearest(vectors["train"], vectors["test"], [m["title"] for m in train],
                                    True)


def train_run(size, steps, out, extra):
    argv = ["train", "image-to-text", "--data", "openclipart", "--height", str(size),
            "--max-len", str(MAX_LEN), "--max-steps", str(steps), "--out", str(out), "--quiet",
            *extra]
    print(f"$ rnnkit {shlex.join(argv)}", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    if main(argv) != 0:
        raise SystemExit("training failed")
    return argv


def table(rows):
    head = (f"{'method':<28} {'exact':>7} {'CER':>7} {'word prec.':>10} {'title rec.':>10} "
            f"{'words':>6}")
    lines = [head, "-" * len(head)]
    for name, s in rows:
        lines.append(f"{name:<28} {s['exact']:>7.4f} {s['cer']:>7.4f} {s['word_precision']:>10.4f} "
                     f"{s['title_recall']:>10.4f} {s['words']:>6.2f}")
    return "\n".join(lines)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=48, help="drawings rendered at SIZE x SIZE")
    p.add_argument("--steps", type=int, default=2000, help="training steps (batches of 32)")
    p.add_argument("--out", type=Path, default=Path("runs/bench-clipart"))
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--skip-train", action="store_true", help="score the run already in --out")
    p.add_argument("extra", nargs="*", help="more flags for rnnkit train image-to-text (after --)")
    return p.parse_args()


if __name__ == "__main__":
    args = parse_args()
    torch.set_num_threads(args.threads)
    folder = oc.build(cache_dir() / "openclipart", args.size)
    meta = oc.read_meta(folder)
    train = [m for m in meta if m["part"] == "train"]
    test = [m for m in meta if m["part"] == "test"]
    seen = {m["title"] for m in train}
    print(f"openclipart at {args.size}x{args.size}: {len(train):,} training and {len(test):,} test "
          f"drawings; {sum(m['title'] in seen for m in test) / len(test):.1%} of the test titles "
          f"are also a training title ({folder})", flush=True)
    extra = args.extra or RECIPE
    argv = None if args.skip_train else train_run(args.size, args.steps, args.out, extra)
    if not (args.out / "best.pt").is_file():
        sys.exit(f"{args.out}: no best.pt; train first (drop --skip-train)")
    hyps, beam_hyps, cnn_nn = model_outputs(args.out, train, test, args.size)
    common = Counter(m["title"] for m in train).most_common(1)[0][0]
    pixels_nn = nearest(torch.stack([small(m["png"]) for m in train]),
                        torch.stack([small(m["png"]) for m in test]), [m["title"] for m in train])
    rows = [("rnnkit image-to-text, greedy", scores(hyps, test)),
            (f"rnnkit image-to-text, beam {BEAM}", scores(beam_hyps, test)),
            (f"nearest neighbour, {NN_SIDE}x{NN_SIDE} px", scores(pixels_nn, test)),
            ("nearest neighbour, CNN vec.", scores(cnn_nn, test)),
            (f"most frequent ({common!r})"[:28], scores([common] * len(test), test))]
    print()
    print(table(rows))
    print()
    if argv:
        print(f"model: rnnkit {shlex.join(argv)}  (torch threads {args.threads})")
    print(f"table: python benchmarks/quality_image_text.py --size {args.size} --out {args.out} "
          f"--skip-train")
    print("\nexamples (test: title | rnnkit | nearest neighbour, pixels):")
    for m, h, n in list(zip(test, hyps, pixels_nn))[:12]:
        print(f"  {m['title']!r} | {h!r} | {n!r}")
