"""Quality benchmark of seq2seq (attention vs none; greedy vs beam: BLEU, CER, sequence accuracy
and token error rate on the held-out test split) on de-en translation or cmudict grapheme to
phoneme, and the 1→N names generator (held-out loss with the right country vs a wrong one). Each
model trains for a fixed step (or time) budget with the one Trainer; prints a table with the
command that made it.

    OMP_NUM_THREADS=1 nice python benchmarks/quality_seq2seq.py --steps 1000 --test-pairs 300
    OMP_NUM_THREADS=1 nice python benchmarks/quality_seq2seq.py --data cmudict --src-tokens char \
        --tgt-tokens word --steps 1500 --batch 64 --test-pairs 500 --test-spread --max-len 40 \
        --attention general --skip-names
"""
import argparse
import json
import sys
import time

import torch

from rnnkit.models.conditional import CondConfig
from rnnkit.models.seq2seq import Seq2SeqConfig
from rnnkit.tasks.cond import CondData, build_cond_task
from rnnkit.tasks.seq2seq import Seq2SeqData, build_seq2seq_task
from rnnkit.tasks.translation import Translator, score_translations
from rnnkit.train import TrainConfig, Trainer


def train(task, minutes, lr, seed, steps=0):
    """Train for ``steps`` steps if given (the same work for every model, however busy the
    machine), else for ``minutes``."""
    limit = {"max_steps": steps} if steps else {"max_minutes": minutes}
    cfg = TrainConfig(lr=lr, eval_every=100, log_every=50, warmup_steps=50, seed=seed, **limit)
    summary = Trainer(task, cfg).fit()
    return summary


def seq2seq_run(args, attention):
    torch.manual_seed(args.seed)
    data = Seq2SeqData(data=args.data, src_tokens=args.src_tokens or args.tokens,
                       tgt_tokens=args.tgt_tokens or args.tokens,
                       max_vocab=args.max_vocab, batch=args.batch, val_pairs=300)
    model = Seq2SeqConfig(cell="lstm", embed=args.embed, enc_hidden=args.hidden // 2,
                          hidden=args.hidden, attention=attention, input_feed=args.input_feed,
                          max_len=args.max_len)
    task = build_seq2seq_task(data, model, seed=args.seed, log=lambda *a: None)
    summary = train(task, args.minutes, args.lr, args.seed, args.steps)
    print(f"attention={attention}: {summary['steps']} steps, val loss "
          f"{summary['final_val_loss']:.4f}; scoring ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    test = task.splits["test"]
    if args.test_spread:   # evenly spaced over the split, not its first pairs in file order
        test = test[::max(1, len(test) // args.test_pairs)]
    m = score_translations(Translator(task.model.eval(), task.src_vocab, task.tgt_vocab),
                          test[:args.test_pairs], args.beam_size)
    return {"attention": attention, "steps": summary["steps"], "minutes": summary["wall_seconds"] / 60,
            "val_loss": summary["final_val_loss"], "score_seconds": time.perf_counter() - t0, **m}


def names_run(args):
    torch.manual_seed(args.seed)
    task = build_cond_task(CondData(data="names", batch=64, val_pairs=3000),
                           CondConfig(hidden=128, embed=32, cond_size=32), seed=args.seed,
                           log=lambda *a: None)
    summary = train(task, args.names_minutes, 3e-3, args.seed)
    task.model.eval()
    with torch.no_grad():
        m = task.evaluate()
    return {"steps": summary["steps"], **m}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="de-en")
    p.add_argument("--tokens", default="char", help="tokenizer of both sides")
    p.add_argument("--src-tokens", help="source tokenizer (default: --tokens)")
    p.add_argument("--tgt-tokens", help="target tokenizer (default: --tokens; word for phonemes)")
    p.add_argument("--max-vocab", type=int, default=0)
    p.add_argument("--minutes", type=float, default=4.0, help="training time per seq2seq model")
    p.add_argument("--steps", type=int, default=0, help="train each seq2seq model for N steps "
                   "instead of --minutes (equal work on a shared machine)")
    p.add_argument("--names-minutes", type=float, default=2.0)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--input-feed", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--max-len", type=int, default=200)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--test-pairs", type=int, default=300)
    p.add_argument("--test-spread", action="store_true", help="score --test-pairs pairs evenly "
                   "spaced over the test split (a sorted file: not only its first words)")
    p.add_argument("--beam-size", type=int, default=5)
    p.add_argument("--attention", nargs="+", default=["general", "none"])
    p.add_argument("--skip-names", action="store_true")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    rows = [seq2seq_run(args, a) for a in args.attention]
    print(f"\n$ {' '.join(['python'] + sys.argv)}")
    budget = f"{args.steps} steps" if args.steps else f"{args.minutes} min"
    tokens = f"{args.src_tokens or args.tokens} -> {args.tgt_tokens or args.tokens} tokens"
    skipped = rows[0].get("test_pairs_skipped", 0)   # sources past --max-len: not scored
    decoders = ("greedy", "beam") if args.beam_size else ("greedy",)   # 0: greedy only
    print(f"seq2seq on {args.data} ({tokens}), {budget} each, "
          f"{rows[0]['test_pairs']} test pairs scored"
          + (f" ({skipped} left out: sources longer than --max-len {args.max_len})"
             if skipped else "")
          + (f", beam {args.beam_size} (g: greedy, b: beam)" if args.beam_size else ", greedy"))
    cols = [("BLEU", "bleu", 2), ("CER", "cer", 4), ("seq acc", "seq_acc", 4), ("TER", "ter", 4)]
    print(f"{'attention':<10} {'steps':>6} {'min':>5} {'val loss':>9} "
          + " ".join(f"{f'{c} {d[0]}':>10}" for c, _, _ in cols for d in decoders))
    for r in rows:
        print(f"{r['attention']:<10} {r['steps']:>6} {r['minutes']:>5.1f} {r['val_loss']:>9.4f} "
              + " ".join(f"{r[f'{k}_{d}']:>10.{n}f}" for _, k, n in cols for d in decoders))
    names = None if args.skip_names else names_run(args)
    if names:
        print(f"\nnames (1→N), {args.names_minutes} min, {names['steps']} steps: held-out "
              f"{names['val_loss']:.4f} nats/char with the right country, "
              f"{names['val_loss_wrong_cond']:.4f} with a wrong one")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seq2seq": rows, "names": names, "argv": sys.argv}, f, indent=2)


if __name__ == "__main__":
    main()
