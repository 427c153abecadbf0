"""``rnnkit train seq2seq`` and ``rnnkit translate RUN [TEXT ...]``: an encoder-decoder on
source<TAB>target pairs, then translation of sentences given as arguments, a file or stdin."""
import sys

from rnnkit.cli.options import (beam_width, given_path, image_file, image_format, input_lines,
                                length_penalty)
from rnnkit.cli.task_runs import TaskRun
from rnnkit.models.seq2seq import Seq2SeqConfig
from rnnkit.tasks.seq2seq import Seq2SeqData, build_seq2seq_task, load_seq2seq
from rnnkit.tasks.translation import BEAM_BATCH, Translator
from rnnkit.config import ConfigError
from rnnkit.data import DataError
from rnnkit.data.pairs import unknown_tokens
from rnnkit.data.text import blank


# ---------------------------------------------------------------- rnnkit train seq2seq
def scores(task, m):
    return (f"BLEU greedy {m['bleu_greedy']:.2f}, beam {m['bleu_beam']:.2f}; "
            f"CER greedy {m['cer_greedy']:.3f}, beam {m['cer_beam']:.3f}; "
            f"sequence accuracy greedy {m['seq_acc_greedy']:.3f}, beam {m['seq_acc_beam']:.3f}; "
            f"token error rate greedy {m['ter_greedy']:.3f}, beam {m['ter_beam']:.3f}")


RUN = TaskRun("seq2seq", Seq2SeqData, Seq2SeqConfig, build_seq2seq_task,
              {"max_steps": 4000, "warmup_steps": 100, "schedule": "cosine", "min_lr_ratio": 0.1},
              skip=("src_vocab", "tgt_vocab"), seeded=True, describe=str, report=scores,
              keeps_choices=True)
TRAIN = ("encoder-decoder with attention on source<TAB>target pairs (N-to-M)",
         RUN.add_flags, RUN.run)


# ---------------------------------------------------------------- rnnkit translate
def add_parser(sub):
    p = sub.add_parser("translate", help="translate sentences with a trained seq2seq model")
    p.add_argument("run", type=given_path, help="run folder (uses best.pt) or a checkpoint file")
    p.add_argument("text", nargs="*", help="sentences to translate (none: read --file or stdin, "
                                           "one sentence a line)")
    p.add_argument("--file", type=given_path, help="a UTF-8 file, one sentence a line")
    p.add_argument("--beam-size", type=beam_width, default=5,
                   help="hypotheses kept by beam search (default 5; 1: greedy)")
    p.add_argument("--length-penalty", type=length_penalty,
                   help="alpha: hypotheses score log p / length^alpha (default 1)")
    p.add_argument("--plot", type=image_file, help="write the attention heat-map of the first "
                   "sentence to this file (.png, .svg or .pdf)")
    p.set_defaults(func=run)


def run(args):
    if args.length_penalty is not None and args.beam_size == 1:   # said before the loading
        raise ConfigError("--length-penalty scores a beam's hypotheses, and --beam-size 1 "
                          "decodes greedily: drop one of them")
    alpha = 1.0 if args.length_penalty is None else args.length_penalty
    model, src_vocab, tgt_vocab, _ = load_seq2seq(args.run)
    if args.plot and model.config.attention == "none":   # said before any output
        raise ConfigError(f"--plot draws the attention weights; {args.run} was trained with "
                          f"--attention none and has none")
    translator = Translator(model, src_vocab, tgt_vocab)
    lines, where, given = input_lines(args.text, args.file)
    if not given:                 # a file's blank lines stay blank lines of the output
        if all(blank(l) for l in lines):
            raise DataError("nothing to translate (file or stdin empty)")
    translator.check_lengths(lines, where)     # every line before any output
    said_unknown(translator, lines, where)
    translator.warn = lambda msg: None         # (each sentence's own warning: said above)
    outputs = []
    for k in range(0, len(lines), BEAM_BATCH):           # a batch searched together, then shown
        chunk = lines[k:k + BEAM_BATCH]
        keep = [given or not blank(l) for l in chunk]      # an argument is checked
        done = iter(translator.translate_many([l for l, k in zip(chunk, keep) if k],
                                              args.beam_size, alpha)
                    if any(keep) else [])
        outputs += [next(done) if k else "" for k in keep]
        print("\n".join(outputs[k:]), flush=True)
    if args.plot:
        first = next(i for i, l in enumerate(lines) if not blank(l))
        ids = translator.translate_ids(lines[first], args.beam_size, alpha)   # (its tokens as
        plot_attention(*translator.attention(lines[first], ids), args.plot)     # decoded)
        print(f"attention heat-map -> {args.plot}", file=sys.stderr)
    return 0


def said_unknown(translator, lines, where):
    """One warning for the source tokens that the model's vocabulary lacks (read as <unk>),
    naming the lines (or arguments) that hold them, where each sentence warned on its own
    without saying which it was."""
    vocab = translator.src_vocab
    found = [(i, unknown_tokens(vocab, line.strip())) for i, line in enumerate(lines, 1)
             if not blank(line)]
    found = [(i, u) for i, u in found if u]
    if found:
        at = (lambda i: f"argument {i}") if where == "argument" else (lambda i: f"line {i}")
        shown = "; ".join(f"{at(i)}: {u[:5]!r}" for i, u in found[:5])
        more = f"; and {len(found) - 5} more line(s)" if len(found) > 5 else ""
        total = len({t for _, u in found for t in u})
        print(f"rnnkit: warning: {where}: {total} source token(s) not in the training "
              f"vocabulary, read as <unk> ({shown}{more})", file=sys.stderr)


def plot_attention(src_tokens, tgt_tokens, weights, path):
    """A heat-map of weights (T, S): target tokens down, source tokens across."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rnnkit.outputs import atomic_write
    show = lambda toks: [t.replace(" ", "␣") if t.isspace() else t for t in toks]   # visible spaces
    T, S = weights.shape
    fig, ax = plt.subplots(figsize=(max(4, 0.22 * S + 2), max(3, 0.22 * T + 1.5)))
    ax.imshow(weights.numpy(), cmap="viridis", aspect="auto", vmin=0, vmax=1)
    ax.set_xticks(range(S), show(src_tokens), fontsize=7, rotation=90)
    ax.set_yticks(range(T), show(tgt_tokens), fontsize=7)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format=image_format(path), dpi=100))
    plt.close(fig)
