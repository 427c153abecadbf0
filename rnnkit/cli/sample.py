"""``rnnkit sample RUN``: stream text from a trained language model."""
import sys
from pathlib import Path

from rnnkit.cli.options import (beam_width, nonneg_float, positive_int, probability,
                                random_seed, ranged)
from rnnkit.config import MAX_STEPS
from rnnkit.decode import sample
from rnnkit.tasks.lm import load_lm
from rnnkit.data import DataError
from rnnkit.config import ConfigError


def add_parser(sub):
    p = sub.add_parser("sample", help="generate text from a trained language model")
    p.add_argument("run", type=Path, help="run folder (uses best.pt) or a checkpoint file")
    p.add_argument("--prime", default="\n", help="text to start from (default: a newline)")
    p.add_argument("--length", type=ranged(int, (1, MAX_STEPS)), default=500,
                   help="tokens to generate")
    p.add_argument("--temperature", type=nonneg_float, default=0.8, help="0: greedy")
    p.add_argument("--top-k", type=positive_int, default=None,
                   help="sample among the k most likely")
    p.add_argument("--top-p", type=probability, default=None,
                   help="nucleus sampling mass in (0, 1]")
    p.add_argument("--seed", type=random_seed, default=None)
    p.add_argument("--last", action="store_true", help="use last.pt instead of best.pt")
    p.add_argument("--beam", type=beam_width, default=1, help="beam search with this many "
                   "hypotheses instead of sampling: the most likely continuation (1: off)")
    p.add_argument("--cond", help="conditional generator runs: the label to generate for")
    p.add_argument("-n", type=ranged(int, (1, MAX_STEPS)), default=None,
                   help="conditional generator runs: how many")
    p.set_defaults(func=run)


def run(args):
    from rnnkit.cli import cond
    if cond.is_cond_run(args):
        return cond.run_sample(args)
    path = args.run / "last.pt" if args.last and args.run.is_dir() else args.run
    model, vocab = load_lm(path)
    if args.beam > 1:
        return write_beam(model, vocab, args.prime, args.length, args.beam)
    write(generate(model, vocab, args.prime, args.length, args.temperature, args.top_k,
                   args.top_p, args.seed))
    return 0


def encode_prime(vocab, prime):
    try:
        ids = vocab.encode(prime, prefix=True)
    except KeyError as e:
        raise DataError(f"--prime {prime!r}: {e.args[0]}") from None
    if not ids:
        raise ConfigError("--prime must not be empty")
    return ids


def generate(model, vocab, prime, length, temperature=0.8, top_k=None, top_p=None, seed=None):
    """Yield the prime, then each generated token as text."""
    ids = encode_prime(vocab, prime)
    yield prime
    prev = ids[-1]
    for x in sample(model, ids, length, temperature, top_k, top_p, seed):   # x (1,)
        x = x.item()
        yield vocab.decode((x,), after=prev)
        prev = x


def write_beam(model, vocab, prime, length, beam):
    """The prime and its most likely ``length``-token continuation under beam search."""
    from rnnkit.decode import beam_search
    ids = encode_prime(vocab, prime)
    (best, _), = beam_search(model, ids, beam, length, length_penalty=0.0)
    write([prime, vocab.decode(best, after=ids[-1])])
    return 0


def write(pieces, out=None):
    out = out or sys.stdout
    for piece in pieces:
        out.write(piece)
        out.flush()
    out.write("\n")
