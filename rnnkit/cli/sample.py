"""``rnnkit sample RUN``: stream text from a trained language model."""
import re
import sys
import warnings

from rnnkit.cli.options import (beam_width, given_path, nonneg_float, positive_int, probability,
                                random_seed, ranged)
from rnnkit.config import MAX_SEED, MAX_STEPS
from rnnkit.decode import sample
from rnnkit.tasks.lm import load_lm
from rnnkit.data import DataError
from rnnkit.data.vocab import EOS, UNK
from rnnkit.config import ConfigError


def add_parser(sub):
    p = sub.add_parser("sample", help="generate text from a trained language model")
    p.add_argument("run", type=given_path, help="run folder (uses best.pt) or a checkpoint file")
    p.add_argument("--prime", default=None, help="text to start from (default: a newline, "
                   "or a space where the corpus has none; "
                   "conditional generators: the start of every sequence, default none)")
    p.add_argument("--length", type=ranged(int, (1, MAX_STEPS)), default=None,
                   help="tokens to generate (default 500; word-exact: spaces count; "
                        "conditional generators: at most, default the model's max_len)")
    p.add_argument("--temperature", type=nonneg_float, default=None,
                   help="0 (or below 1e-30): greedy (default 0.8)")
    p.add_argument("--top-k", type=positive_int, default=None,
                   help="sample among the k most likely")
    p.add_argument("--top-p", type=probability, default=None,
                   help="nucleus sampling mass in (0, 1]")
    p.add_argument("--seed", type=random_seed, default=None,
                   help="random seed of the draws (default: a new one each time)")
    p.add_argument("--last", action="store_true", help="use last.pt instead of best.pt")
    p.add_argument("--beam", type=beam_width, default=1, help="beam search with this many "
                   "hypotheses instead of sampling: a likely continuation (1: off)")
    p.add_argument("--cond", help="conditional generator runs: the label to generate for, or "
                   "the feature vector (--cond=-0.5,1 when it starts negative)")
    p.add_argument("-n", type=ranged(int, (1, MAX_STEPS)), default=None,
                   help="how many texts (default 1; conditional generators 10); with --beam "
                        "the n most likely")
    p.set_defaults(func=run)


SAMPLING = ("temperature", "top_k", "top_p", "seed")


def check_beam(args):
    """--beam searches for the most likely texts: the sampling flags would be ignored."""
    given = [f"--{name.replace('_', '-')}" for name in SAMPLING if getattr(args, name) is not None]
    if args.beam > 1 and given:
        raise ConfigError(f"--beam {args.beam} searches for the most likely text, and "
                          f"{', '.join(given)} shape{'s' if len(given) == 1 else ''} sampling: "
                          f"give one or the other")
    if args.beam > 1 and (args.n or 1) > args.beam:
        raise ConfigError(f"-n {args.n}: the {args.n} most likely texts need --beam {args.n} "
                          f"or more, got --beam {args.beam}")


def run(args):
    from rnnkit.cli import cond
    check_beam(args)
    if args.last and not args.run.is_dir():
        raise ConfigError(f"--last takes last.pt from a run folder; {args.run} is a file: give "
                          f"the folder, or the checkpoint file without --last")
    if cond.is_cond_run(args):
        return cond.run_sample(args)
    path = args.run / "last.pt" if args.last else args.run
    model, vocab = load_lm(path)
    prime = default_prime(vocab) if args.prime is None else args.prime
    length = 500 if args.length is None else args.length
    n = args.n or 1
    if args.beam > 1:
        return write_beam(model, vocab, prime, length, args.beam, n)
    temperature = 0.8 if args.temperature is None else args.temperature
    for i in range(n):                 # one after another, a blank line between two
        if i and not prime.startswith("\n"):   # (a prime that starts a line makes the blank)
            sys.stdout.write("\n")
        seed = None if args.seed is None else (args.seed + i) % (MAX_SEED + 1)
        write(generate(model, vocab, prime, length, temperature, args.top_k, args.top_p, seed))
    return 0


def default_prime(vocab):
    """A newline, or where the corpus held none (no line breaks), a space, else its first
    token."""
    for text in ("\n", " "):
        try:
            if vocab.unk not in vocab.encode(text, prefix=True):
                return text
        except KeyError:
            pass
    return next(t for t in vocab.itos if not (t.startswith("<") and t.endswith(">")))


def encode_prime(vocab, prime):
    if any("\ud800" <= c <= "\udfff" for c in prime):   # bytes of an argument not UTF-8
        raise DataError(f"--prime {prime!r}: text that is not valid UTF-8")
    try:
        ids = vocab.encode(prime, prefix=True)
    except KeyError as e:
        raise DataError(f"--prime {prime!r}: {e.args[0]}") from None
    if not ids:
        raise ConfigError("--prime must not be empty")
    unknown = sum(i == vocab.unk for i in ids) if vocab.unk is not None else 0
    unknown -= sum(t == UNK for t in vocab.tokenize(prime)) if vocab.kind != "char" else 0
    if unknown > 0:   # (an <unk> typed as a word of the prime is in the vocabulary)   # the model reads them as <unk>, whatever they were
        warnings.warn(f"--prime: {unknown} of its {len(ids)} tokens are not in the model's "
                      f"vocabulary and are read as <unk>")
    return ids


def generate(model, vocab, prime, length, temperature=0.8, top_k=None, top_p=None, seed=None):
    """Yield the prime, then each generated token as text."""
    ids = encode_prime(vocab, prime)
    yield shown_prime(vocab, prime)
    prev = ids[-1]
    for x in sample(model, ids, length, temperature, top_k, top_p, seed):   # x (1,)
        x = x.item()
        yield vocab.decode((x,), after=prev)
        prev = x


def write_beam(model, vocab, prime, length, beam, n=1):
    """The prime and its ``n`` most likely ``length``-token continuations under beam search,
    best first, a blank line between two."""
    from rnnkit.decode import beam_search
    ids = encode_prime(vocab, prime)
    for i, (best, _) in enumerate(beam_search(model, ids, beam, length, length_penalty=0.0,
                                              n_best=n)):
        if i and not prime.startswith("\n"):   # (a prime that starts a line makes the blank)
            sys.stdout.write("\n")
        write([shown_prime(vocab, prime), vocab.decode(best, after=ids[-1])])
    return 0


def shown_prime(vocab, prime):
    """The prime as printed before its continuation: a ``ptb`` model's words carry their own
    space before them, so spaces that end the prime are left out ("I am  wife" otherwise); an
    ``<eos>`` typed in it ends its line, as the model reads it ("<eos>a" otherwise)."""
    if vocab.kind != "ptb":
        return prime
    return re.sub(rf"[ \t]*(?<!\S){re.escape(EOS)}(?!\S)[ \t]*", "\n", prime).rstrip(" \t")


def write(pieces, out=None):
    out = out or sys.stdout
    for piece in pieces:
        out.write(piece)
        out.flush()
    out.write("\n")
