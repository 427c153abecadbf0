"""The classifier's linear start (the bag alone fitted as a logistic regression) with the plain
L2 penalty and with the idf-weighted one (:mod:`rnnkit.models.bag_fit`), on each data set's
default split: the chosen λ, validation loss and accuracy, and the test part's accuracy and
macro-F1.

    python benchmarks/bag_fit_penalty.py [--baseline] [--ngrams N] [--char-grams N] [--bag-buckets N]
        [--only plain|weighted]
        [--counts log,all,once] [--prior-shift] DATA ...

``--ngrams``: the bag's n-gram order (default: the classifier's, 3 for characters, 2 for words).
``--prior-shift`` adds the linear model with the classifier's prior shift (chosen on the
validation part as training chooses it: :func:`rnnkit.tasks.classify.prior_shift`).
``--baseline`` adds the tf-idf n-gram logistic regression of ``ngram_baseline.py`` (needs the
``bench`` extra).
"""
import argparse
import time

import torch

from rnnkit.models import bag_fit
from rnnkit.models.classifier import ClassifierConfig
from rnnkit.tasks.classify import ClassifyData, build_classify_task, log_prior, prior_shift
from rnnkit.tasks.metrics import accuracy, macro_f1


def logits(U, b, columns, encoded, V, counts, ws=None):
    """(N, K) logits of the linear model (U, b) on ``encoded`` texts (``ws``: the bag's
    word_slots)."""
    X = bag_fit.sparse_matrix(*bag_fit.features(encoded, V, counts, ws), len(encoded), columns)[0]
    return X @ U + b


def scores(U, b, columns, encoded, y, V, counts, shift=None, ws=None):
    """(accuracy, macro-F1) of the linear model (U, b) on ``encoded`` texts (``shift`` (K,):
    added to its logits)."""
    z = logits(U, b, columns, encoded, V, counts, ws)
    gold, pred = y.tolist(), (z if shift is None else z + shift).argmax(1).tolist()
    return accuracy(gold, pred), macro_f1(gold, pred)


def compare(name, ngrams=0, only=None, counts="log", shift=False, char_grams=-1,
            bag_buckets=0):
    extra = {"bag_buckets": bag_buckets} if bag_buckets else {}
    task = build_classify_task(ClassifyData(data=name),
                               ClassifierConfig(ngrams=ngrams, bag="on", bag_counts=counts,
                                                char_grams=char_grams, **extra),
                               log=lambda *a: None)
    V, K = task.model.config.vocab_size, task.model.config.num_classes
    ws = task.model.bag.word_slots
    for weighted in [w for w in (False, True) if only in (None, "weighted" if w else "plain")]:
        t0 = time.perf_counter()
        columns, U, b, lam, val_loss = bag_fit.fit(*task.train, *task.val, V, K, counts,
                                                   log=lambda line: None, weighted=weighted,
                                                   word_slots=ws)
        val_acc, _ = scores(U, b, columns, *task.val, V, counts, ws=ws)
        acc, f1 = scores(U, b, columns, *task.test, V, counts, ws=ws)
        print(f"{name:18s} {task.model.config.ngrams}-grams chars {task.model.config.char_grams} "
              f"buckets {task.model.config.bag_buckets:,} "
              f"counts {counts:4s} "
              f"{'idf-weighted' if weighted else 'plain':12s} λ {lam:<6g} validation "
              f"loss {val_loss:.4f} accuracy {val_acc:.4f} | test accuracy {acc:.4f} macro-F1 "
              f"{f1:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
        if shift:
            y, K = task.train[1], task.model.config.num_classes
            prior = log_prior(y, K).double()
            tau, pred = prior_shift(logits(U, b, columns, task.val[0], V, counts, ws), task.val[1],
                                    prior)
            gold = task.val[1].tolist()
            acc, f1 = scores(U, b, columns, *task.test, V, counts, -tau * prior, ws)
            pred = pred.tolist()
            print(f"{'':18s} with the prior shift: τ {tau:g}, validation accuracy "
                  f"{accuracy(gold, pred):.4f} macro-F1 {macro_f1(gold, pred):.4f} | test "
                  f"accuracy {acc:.4f} macro-F1 {f1:.4f}", flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="+", help="data set names or labelled files")
    p.add_argument("--baseline", action="store_true", help="add the tf-idf n-gram baseline")
    p.add_argument("--ngrams", type=int, default=0, help="the bag's n-gram order (0: default)")
    p.add_argument("--char-grams", type=int, default=-1,
                   help="words' character n-grams in the bag (-1: the default; 0: off)")
    p.add_argument("--bag-buckets", type=int, default=0,
                   help="the bag's n-gram hash buckets (0: the default)")
    p.add_argument("--only", choices=("plain", "weighted"), help="fit with this penalty alone")
    p.add_argument("--prior-shift", action="store_true",
                   help="also score the linear model with the prior shift")
    p.add_argument("--counts", default="log",
                   help="the bag's counts, comma-separated: log, all, once (default log)")
    a = p.parse_args()
    torch.set_num_threads(1)
    for name in a.data:
        for counts in a.counts.split(","):
            compare(name, a.ngrams, a.only, counts, a.prior_shift, a.char_grams,
                    a.bag_buckets)
        if a.baseline:
            from ngram_baseline import ngram_baseline
            for part in ("val", "test"):
                print(f"{name:18s} tf-idf LR    {ngram_baseline(name, part=part)}", flush=True)
