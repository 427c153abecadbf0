"""``rnnkit eval RUN FILE [--json] [--out F]``: score a trained run on a data file in the format it
was trained on (an lm run: or a folder of .txt files; a classify run: or a folder of class
folders; a recogniser: a TSV or a folder of images or sounds). The checkpoint's kind picks the
task's ``evaluate_file(run, path, **options)`` from :data:`EVALUATORS`, imported only when used;
it returns a flat dict of metrics."""
import importlib
import inspect
import os
import sys
import warnings

from rnnkit.cli.options import beam_width, given_path, length_penalty, output_file
from rnnkit.train.checkpoint import CheckpointError, json_text
from rnnkit.data import DataError
from rnnkit.data.datasets import DATASETS, fetch
from rnnkit.config import ConfigError

EVALUATORS = {
    "lm": "rnnkit.tasks.lm:evaluate_file",
    "classify": "rnnkit.tasks.classify_trained:evaluate_file",
    "tag": "rnnkit.tasks.tag_trained:evaluate_file",
    "forecast": "rnnkit.tasks.forecast_trained:evaluate_file",
    "seq2seq": "rnnkit.tasks.seq2seq:evaluate_file",
    "cond": "rnnkit.tasks.cond:evaluate_file",
    "recognize": "rnnkit.tasks.recognize:evaluate_file",
    "image-to-text": "rnnkit.tasks.image_to_text:evaluate_file",
}
READS_FOLDERS = {"lm", "classify", "recognize", "image-to-text"}   # evaluate_file reads a folder too
# flag dest -> the evaluate_file argument it sets
OPTIONS = {"beam_size": "beam", "length_penalty": "length_penalty"}


def add_parser(sub):
    p = sub.add_parser("eval", help="score a trained run on a data file of its task")
    p.add_argument("run", type=given_path, help="run folder (uses best.pt) or a checkpoint file")
    p.add_argument("file", type=given_path, help="a data file in the format the run was trained on "
                                           "(lm, classify, recognize: or a folder), or a data "
                                           "set's name (rnnkit data list)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--out", type=output_file, help="also write the metrics as JSON to this file")
    p.add_argument("--beam-size", type=beam_width, help="seq2seq (default: the run's), "
                                                       "recognisers (default 8): beam width; "
                                                       "1 scores greedy decoding only")
    p.add_argument("--length-penalty", type=length_penalty,
                   help="seq2seq: beam scores divided by length^this (default: the run's)")
    p.set_defaults(func=run)


def find_evaluator(kind, where):
    """The ``evaluate_file`` function registered for ``kind``; CheckpointError or ConfigError when
    there is none."""
    if kind not in EVALUATORS:
        raise CheckpointError(f"{where}: unknown run kind {kind!r} "
                              f"(known: {', '.join(EVALUATORS)})")
    module, name = EVALUATORS[kind].split(":")
    try:
        fn = getattr(importlib.import_module(module), name, None)
    except ModuleNotFoundError as e:
        if e.name != module:   # the task module is there but needs a package that is not
            raise ConfigError(f"evaluating {kind} runs needs the package "
                              f"{e.name!r}, which is not installed") from None
        fn = None
    if fn is None:
        raise ConfigError(f"runs of kind {kind} cannot be evaluated yet")
    return fn


def chosen_options(args, fn, kind):
    """The options given on the command line, as ``fn``'s keyword arguments."""
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    options = {}
    for dest, arg in OPTIONS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if arg not in params and not takes_any:
            flag = "--" + dest.replace("_", "-")
            raise ConfigError(f"{flag} does not apply to runs of kind {kind}")
        options[arg] = value
    if options.get("beam") == 1 and "length_penalty" in options:
        raise ConfigError("--length-penalty scores a beam's hypotheses, and --beam-size 1 "
                          "decodes greedily: drop one of them")
    return options


def format_table(metrics):
    """The metrics as aligned ``name  value`` lines under a heading naming file, kind and size."""
    what = SIZES.get(metrics.get("kind"), "examples")
    what = what[:-1] if metrics.get("size") == 1 else what             # 1 token, 2 tokens
    head = f"{metrics.get('kind')} run on {metrics.get('file')}: {metrics.get('size')} {what}"
    rows = {k: v for k, v in metrics.items()
            if k not in ("file", "kind", "size") and not isinstance(v, dict)}
    width = max([len(k) for k in rows] + [6])

    def show(k, v):   # counts as whole numbers (JSON keeps every figure a float)
        if isinstance(v, float) and k in COUNTS and v.is_integer():
            return str(int(v))
        return f"{v:.4f}" if isinstance(v, float) else str(v)
    lines = [head] + [f"  {k:<{width}}  {show(k, v):>10}" for k, v in rows.items()]
    for name, table in metrics.items():   # per_class: a row a class
        if isinstance(table, dict) and table:
            cols = list(next(iter(table.values())))
            first = max(len(str(c)) for c in table) + 2
            lines.append(f"  {name}:")
            lines.append(" " * (first + 2) + "".join(f"{c:>11}" for c in cols))
            lines += [f"    {c:<{first - 2}}" + "".join(f"{show(k, v):>11}" for k, v in r.items())
                      for c, r in table.items()]
    return "\n".join(lines) + "\n"


SIZES = {"tag": "tokens", "lm": "tokens", "forecast": "steps", "seq2seq": "pairs"}
COUNTS = {"unseen_tags", "words", "chunks", "skipped", "support", "origins"}


def run(args):
    from rnnkit.outputs import atomic_write
    from rnnkit.train.checkpoint import load_checkpoint
    if not args.run.exists():
        raise CheckpointError(f"{args.run}: no such run folder or checkpoint file")
    if not args.file.exists() and str(args.file) in DATASETS:   # a test set by its name
        args.file = fetch(str(args.file))
    if not args.file.exists():
        raise DataError(f"{args.file}: " + (
            f"a symbolic link to {os.readlink(args.file)!r}, which leads to no file"
            if args.file.is_symlink() else "no such data file"))
    with warnings.catch_warnings():   # its notes are said once, by the evaluator's own load
        warnings.simplefilter("ignore")
        kind = load_checkpoint(args.run).get("kind")
    fn = find_evaluator(kind, args.run)
    if args.file.is_dir() and kind not in READS_FOLDERS:
        raise DataError(f"{args.file}: a folder; expected a file (runs of kind {kind} read one "
                        f"data file; lm runs also read a folder of .txt files, classify runs a "
                        f"folder of class folders, recognisers a folder of files)")
    metrics = fn(args.run, args.file, **chosen_options(args, fn, kind))
    text = json_text(metrics)
    sys.stdout.write(text if args.json else format_table(metrics))   # first: a failed write of
    sys.stdout.flush()                                               # --out loses no figures
    if args.out:
        atomic_write(args.out, lambda f: f.write(text.encode()))
        if not args.json:
            print(f"-> {args.out}")
    return 0
