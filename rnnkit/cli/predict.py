"""``rnnkit train classify`` and ``rnnkit predict RUN [TEXT ...]``: label texts with a classifier."""
import json
import re
import sys

from rnnkit.cli.options import given_path, input_lines
from rnnkit.cli.task_runs import TaskRun
from rnnkit.config import ConfigError
from rnnkit.data import DataError
from rnnkit.data.text import blank
from rnnkit.models.classifier import ClassifierConfig
from rnnkit.tasks.classify import ClassifyData, build_classify_task
from rnnkit.tasks.classify_trained import Classifier, evaluate_file, upgrade
from rnnkit.tasks.common import warn, warn_unknown
from rnnkit.train.checkpoint import json_text

# Measured on MR (benchmarks/quality_tasks.py): 1,500 steps of 32 sentences, about 6 epochs.
CHUNK = 1000   # texts classified and printed at a time
TRAIN_DEFAULTS = {"schedule": "cosine", "min_lr_ratio": 0.1, "max_steps": 3000, "eval_every": 100, "warmup_steps": 50, "lr": 5e-3}


RUN = TaskRun("classify", ClassifyData, ClassifierConfig, build_classify_task, TRAIN_DEFAULTS,
              skip=("vocab_size", "num_classes", "rnn_len"), upgrade=upgrade,
              keeps_choices=True)
TRAIN = ("N-to-1 text classifier (sentiment, topic, intent)", RUN.add_flags, RUN.run)


def add_parser(sub):
    p = sub.add_parser("predict", help="classify texts with a trained classifier")
    p.add_argument("run", type=given_path, help="run folder (uses best.pt) or a checkpoint file")
    p.add_argument("texts", nargs="*", help="texts to classify (default: one a line from --file "
                                            "or standard input)")
    p.add_argument("--file", type=given_path, help="classify each line of this file")
    p.add_argument("--eval", type=given_path, metavar="FILE",
                   help="score a labelled TSV/CSV file (label, text): accuracy and macro-F1")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.set_defaults(func=run)


def run(args):
    if args.eval:
        if args.texts or args.file:
            raise ConfigError("--eval scores a labelled file; give no texts (or --file) with it")
        m = evaluate_file(args.run, args.eval)
        if args.json:
            print(json_text(m))
            return 0
        print(f"{m['file']}: {m['size']} examples, accuracy {m['accuracy']:.4f}, "
              f"macro-F1 {m['macro_f1']:.4f}")
        return 0
    clf = Classifier.load(args.run)
    texts, where, given = input_lines(args.texts, args.file)
    numbered = [(i, t) for i, t in enumerate(texts, 1) if given or not blank(t)]
    texts = [t for _, t in numbered]                   # each output line carries its text
    if not texts:
        raise DataError(f"{where}: no texts to classify")
    if not given:
        warn_labelled(where, texts, clf.labels)
    words = [clf.encoder.split(t) for t in texts]      # an empty text: said before any output
    empty = next((i for (i, _), w in zip(numbered, words) if not w), None)
    if empty is not None:
        raise DataError(f"{where}:{empty}: empty text (nothing to classify)")
    warn_unknown(where, [w for ws in words for w in ws], clf.encoder.vocab.stoi)
    del words, numbered
    for k in range(0, len(texts), CHUNK):   # printed a chunk at a time, as they are done (a
        part = texts[k:k + CHUNK]           # long file's lines came at its end, all in memory)
        for text, (label, probs) in zip(part, clf.predict(part, where)):
            probs = dict(sorted(probs.items(), key=lambda kv: natural(kv[0])))   # 2 before 10
            if args.json:
                print(json.dumps({"text": text, "label": label, "probabilities": probs},
                                 ensure_ascii=False))
            else:
                ps = "  ".join(f"{k}={v:.3f}" for k, v in probs.items())
                print(f"{label}\t{probs[label]:.3f}\t{ps}\t{text}")
        sys.stdout.flush()
    return 0


def warn_labelled(where, texts, labels):
    """Warn where every line starts with one of the model's labels and a tab or comma: a
    labelled file (label, text), whose labels would be read as words of the texts."""
    for sep in ("\t", ","):
        if all(sep in t and t.split(sep, 1)[0].strip() in labels for t in texts):
            warn(f"{where}: every line starts with one of the model's labels and "
                 f"{'a tab' if sep == chr(9) else 'a comma'} (label, text?): the labels are read "
                 f"as part of the texts; a labelled file is scored by rnnkit eval RUN FILE")
            return


def natural(label):
    """A sort key that orders the numbers in labels by value: class2 before class10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", label)]
