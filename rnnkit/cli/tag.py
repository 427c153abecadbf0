"""``rnnkit train tag`` and ``rnnkit tag RUN [SENTENCE ...]``: tag every token of each sentence."""
import sys

from rnnkit.cli.options import given_path, input_lines
from rnnkit.cli.task_runs import TaskRun
from rnnkit.config import ConfigError
from rnnkit.data import DataError
from rnnkit.data.text import blank
from rnnkit.data.text_tokens import unsegmented
from rnnkit.models.tagger import TaggerConfig
from rnnkit.tasks.metrics import word_spans
from rnnkit.tasks.common import warn_unknown
from rnnkit.tasks.tag import TagData, build_tag_task
from rnnkit.tasks.tag_trained import Tagger, upgrade

# Measured on People's Daily POS (benchmarks/quality_tasks.py); a high rate learns fastest on CPU.
# On --patience, one drop: back to best.pt at a tenth of the rate (small sets overfit early).
TRAIN_DEFAULTS = {"schedule": "cosine", "min_lr_ratio": 0.1, "max_steps": 3000, "eval_every": 200,
                  "warmup_steps": 50, "lr": 0.02, "patience": 1000, "lr_drops": 1}

def no_crf_on_resume(args, model_config, ckpt=None):
    """``--no-crf`` on --resume of a run with a CRF layer: the run's unresolved flag is False
    too (neither flag given: a CRF up to --crf-tags tags), so the generic check let it pass."""
    if vars(args).get("crf") is False and model_config.crf:
        raise ConfigError(f"--no-crf: this run's tagger has a CRF layer (its tags are within "
                          f"--crf-tags {model_config.crf_tags}); on --resume the model settings "
                          f"are the run's; start a new run with another --out to change it")


RUN = TaskRun("tag", TagData, TaggerConfig, build_tag_task, TRAIN_DEFAULTS,
              skip=("vocab_size", "num_tags", "char_vocab_size"), upgrade=upgrade,
              check_resume=no_crf_on_resume, keeps_choices=True)


def train(args):
    """``rnnkit train tag``: a new run's ``--no-crf`` means no CRF layer at all, so it also sets
    ``--crf-tags 0`` and ``--no-linear-start`` (the linear start is a CRF); given with either
    of those turned on it is a contradiction, refused. ``--patience 0`` turns the default
    learning-rate drop off too (it is made when patience runs out)."""
    given = vars(args)
    if given.get("patience") == 0 and "lr_drops" not in given:   # no patience, no drop
        args.lr_drops = 0
    if not args.resume and given.get("crf") is False:
        for name, flag in (("crf_tags", "--crf-tags"), ("linear_start", "--linear-start")):
            if given.get(name):
                raise ConfigError(f"--no-crf with {flag} {given[name]}: the one asks for no CRF "
                                  f"layer, the other for one; give one of them")
        args.crf_tags, args.linear_start = 0, False
    return RUN.run(args)


TRAIN = ("N-to-N sequence tagger (part of speech, word segmentation)", RUN.add_flags, train)


def add_parser(sub):
    p = sub.add_parser("tag", help="tag sentences with a trained tagger (word/tag output)")
    p.add_argument("run", type=given_path, help="run folder (uses best.pt) or a checkpoint file")
    p.add_argument("sentences", nargs="*", help="sentences, words separated by spaces (a model "
                   "trained on characters takes raw text); default: --file or standard input")
    p.add_argument("--file", type=given_path, help="tag each line of this file")
    p.add_argument("--char-tags", action="store_true", help="a word segmenter (B/M/E/S tags): "
                   "print each character's tag instead of the words")
    p.set_defaults(func=run)


CHUNK = 1000   # sentences tagged and printed at a time


def run(args):
    tagger = Tagger.load(args.run)
    if args.char_tags and not (tagger.char_tokens and tagger.segmenter):
        what = "characters with other tags" if tagger.char_tokens else "words"
        raise ConfigError(f"--char-tags prints a word segmenter's tag for each character; "
                          f"{args.run} tags {what}: leave it out")
    lines, where, _ = input_lines(args.sentences, args.file)
    split = [tagger.split(line) for line in lines]   # a line of white space, separators or
    empty = [blank(line) or not tokens for line, tokens in zip(lines, split)]   # invisible
    if all(empty):                                   # characters is printed back blank
        raise DataError(f"{where}: no sentences to tag")
    sentences = [tokens for tokens, e in zip(split, empty) if not e]
    if not tagger.char_tokens and any(len(s) == 1 and unsegmented(s[0]) for s in sentences):
        print("rnnkit: note: this model reads words separated by spaces, and a line in a script "
              "written without spaces is one word to it; segment the text first, or train with "
              "--tokens char", file=sys.stderr)
    else:
        warn_unknown(where, tagger.in_form([w for s in sentences for w in s]),
                     tagger.encoder.vocab.stoi)
    segmenter = tagger.char_tokens and tagger.segmenter and not args.char_tags

    def chunks():   # tagged and printed a chunk at a time, as they are done (a long file's
        for k in range(0, len(sentences), CHUNK):   # lines came at its end, all in memory)
            part = sentences[k:k + CHUNK]
            yield from zip(part, tagger.tag(part, where))
            sys.stdout.flush()                      # (the chunk's lines are printed by then)
    tagged = chunks()
    for e in empty:
        if e:
            print()
            continue
        tokens, tags = next(tagged)
        if segmenter:   # the words, separated by spaces: what a word tagger reads
            print(" ".join("".join(tokens[a:b]) for a, b in word_spans(tags)))
        else:
            print("  ".join(f"{w}/{t}" for w, t in tagger.words(tokens, tags)))
    return 0
