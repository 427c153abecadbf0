"""``rnnkit train recognize`` (N→M, CTC), ``rnnkit train image-to-text`` (1→N) and ``rnnkit
recognize RUN FILE...``: read text from images or speech; ``--plot`` draws the CTC alignment."""
import os
import sys
import unicodedata
from pathlib import Path

from rnnkit.cli.options import given_path, image_file, image_format, ranged
from rnnkit.cli.task_runs import TaskRun
from rnnkit.config import MAX_BEAM
from rnnkit.data import DataError
from rnnkit.data.media import IMAGES, SOUNDS, kind_of
from rnnkit.models.image_to_text import ImageToTextConfig
from rnnkit.models.recognizer import RecognizerConfig
from rnnkit.outputs import atomic_write
from rnnkit.tasks.image_to_text import ImageReader, build_image_to_text_task
from rnnkit.tasks.image_to_text import upgrade as image_to_text_upgrade
from rnnkit.tasks.recognize import Recognizer, build_recognize_task
from rnnkit.tasks.recognize_data import RecognizeData
from rnnkit.train import CheckpointError
from rnnkit.train.checkpoint import load_checkpoint

TRAIN_DEFAULTS = {"max_steps": 3000, "eval_every": 250, "warmup_steps": 100}


def describe(c):
    return (f"({c.conv_layers} conv layers from {c.channels} channels, time stride "
            f"{c.time_stride}, {c.layers}-layer bidirectional {c.cell.upper()}, hidden {c.hidden})")


def report_1n(task, m):
    return (f"held-out test ({m['test_size']:,}): sequence accuracy "
            f"{m['test_sequence_accuracy']:.4f}, CER {m['test_cer']:.4f}, WER {m['test_wer']:.4f}")


def report(task, m):
    return (f"{report_1n(task, m)}; with beam search: sequence accuracy "
            f"{m['test_beam8_sequence_accuracy']:.4f}")


RUN = TaskRun("recognize", RecognizeData, RecognizerConfig, build_recognize_task, TRAIN_DEFAULTS,
              skip=("num_classes", "features"), seeded=True, describe=describe, report=report)
TRAIN = ("CTC recogniser of text in images or speech (captcha, TSV, folder)", RUN.add_flags,
         RUN.run)


def describe_1n(c):
    return (f"({c.conv_layers} conv layers from {c.channels} channels to a {c.vector}-vector, "
            f"{c.layers}-layer {c.cell.upper()} generator, hidden {c.hidden}, conditioning "
            f"{c.conditioning})")


RUN_1N = TaskRun("image-to-text", RecognizeData, ImageToTextConfig, build_image_to_text_task,
                 TRAIN_DEFAULTS, skip=("vocab_size", "height", "width"), seeded=True,
                 describe=describe_1n, report=report, upgrade=image_to_text_upgrade)
TRAIN_1N = ("text from one image (CNN vector -> conditional generator), on recognize's data",
            RUN_1N.add_flags, RUN_1N.run)
READERS = {"recognize": Recognizer, "image-to-text": ImageReader}


def add_parser(sub):
    p = sub.add_parser("recognize", help="read the text of images or WAV files with a trained "
                                         "recogniser")
    p.add_argument("run", type=given_path, help="run folder (uses best.pt) or a checkpoint file")
    p.add_argument("files", type=given_path, nargs="+", metavar="FILE",
                   help="PNG/JPEG or WAV files, or folders of them")
    p.add_argument("--beam", type=ranged(int, (0, MAX_BEAM)), default=0,
                   help="beam search with this many hypotheses (CTC runs: prefix beam search; "
                        "image-to-text runs: beam search for the most probable text; default 0: "
                        "greedy)")
    p.add_argument("--plot", type=image_file, help="CTC: write the alignment of the first FILE to this "
                                             "PNG")
    p.set_defaults(func=run)


def run(args):
    kind = load_checkpoint(args.run).get("kind")
    if kind not in READERS:
        raise CheckpointError(f"{args.run}: a {kind} run; rnnkit recognize reads with "
                              f"recognize or image-to-text runs")
    rec = READERS[kind].load(args.run)
    if args.plot and kind != "recognize":
        raise DataError(f"--plot draws a CTC alignment; {args.run} is an {kind} run")
    failed, files = 0, []        # failed: inputs not read; of them, empty: folders without one
    for path in args.files:      # a folder: its files of the model's kind, in name order
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file()
                            and not p.name.startswith(".") and kind_of(p) == rec.kind)
            if not inside:   # said like an unreadable file: the other files are still read
                print(f"rnnkit: error: {path}: a folder without a file this model reads "
                      f"({IMAGES if rec.kind == 'image' else SOUNDS})", file=sys.stderr)
                failed += 1
            files += inside
        else:
            files.append(path)
    empty = failed
    for path in files:      # each file's line as it is read; a bad file does not stop the rest
        try:
            (text, score), = rec.recognize([path], args.beam)
        except DataError as e:
            print(f"rnnkit: error: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{shown(path)}\t{text}\t{score:.3f}", flush=True)
    if failed:
        if len(files) + empty > 1:
            print(f"rnnkit: {failed} of {len(files) + empty} inputs could not be read",
                  file=sys.stderr)
        return 2
    if args.plot:
        plot_alignment(rec, files[0], args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0


def plot_alignment(rec, path, png):
    """The input (image or log-mel spectrogram) above the per-frame probability of each label
    the file's greedy transcript uses, and of the blank."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lp, x = rec.log_probs(path)                                               # (T', K+1), (F, T)
    p = lp.exp()
    used = sorted({int(k) for k in lp.argmax(-1).tolist() if k})
    stride = x.shape[1] / max(1, p.shape[0])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    top.imshow(x.numpy(), aspect="auto", origin="upper" if rec.kind == "image" else "lower",
               cmap="gray" if rec.kind == "image" else "magma")
    top.set_title(f"{Path(path).name}: {rec.recognize([path])[0][0]!r}")
    centres = [(t + 0.5) * stride for t in range(p.shape[0])]
    bottom.plot(centres, p[:, 0].numpy(), color="0.6", ls=":", label="blank")
    for k in used:
        bottom.plot(centres, p[:, k].numpy(), label=rec.alphabet[k - 1])
    bottom.set_ylabel("p(label | frame)")
    bottom.set_xlabel("column" if rec.kind == "image" else "frame (10 ms)")
    bottom.legend(loc="upper right", ncol=min(8, len(used) + 1), fontsize=8)
    fig.tight_layout()
    atomic_write(png, lambda fh: fig.savefig(fh, format=image_format(png), dpi=100))
    plt.close(fig)


def shown(path):
    """A path as printed: a name whose bytes are not UTF-8 (Python holds them as lone
    surrogates, which a UTF-8 stream refuses) with those bytes written \\xNN, and its control
    characters, line separators and direction controls escaped (a newline or tab in a name
    would break the line or add a column, a right-to-left override turn it round); joiners and
    the like, parts of names in many scripts, are kept."""
    name = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(c.encode("unicode_escape").decode()
                   if unicodedata.category(c) in ("Cc", "Zl", "Zp") or unicodedata.bidirectional(c)
                   in DIRECTION_CONTROLS else c for c in name)


DIRECTION_CONTROLS = ("LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI")
