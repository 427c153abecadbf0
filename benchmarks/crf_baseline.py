"""The tagger a user would write instead of rnnkit's: a linear-chain CRF over hand-made window
features (sklearn-crfsuite, L-BFGS with L1 + L2), on the same train/validation/test split as
``rnnkit train tag``.

    python benchmarks/crf_baseline.py [--part val] DATA [DATA ...]   (needs the ``bench`` extra)
    python benchmarks/crf_baseline.py conll2003-pos --val-data conll2003-pos-valid \
        --test-data conll2003-pos-test                  (given parts, as ``rnnkit train tag`` takes)

Features, the classic templates: a segmentation over characters (every token one character)
reads the characters at offsets -2..2 and the bigrams (-2,-1), (-1,0), (0,1), (1,2), (-1,1)
(Zhao et al. 2006); words read the words at offsets -2..2, the word's first and last one and two
characters, its length (up to 5) and the word bigrams (-1,0), (0,1). Scores token accuracy, and
word precision / recall / F1 for a B/M/E/S segmentation (the SIGHAN measure, rnnkit's own).
Tag sets of more than 150 tags (Brown's 472) get NLTK's averaged perceptron instead.
"""
import argparse
import time

from rnnkit.data import resolve
from rnnkit.data.labelled import own_parts
from rnnkit.data.tagged import read_tagged
from rnnkit.tasks.metrics import SEGMENT_TAGS, chunk_f1, is_chunk_tagging, segmentation_f1
from rnnkit.tasks.tag import TagData


MAX_TAGS = 150


def window_features(tokens, chars):
    """One feature dict a token: the templates above (``chars``: a segmentation's)."""
    n = len(tokens)
    at = lambda i: tokens[i] if 0 <= i < n else ("<s>" if i < 0 else "</s>")
    out = []
    for i, w in enumerate(tokens):
        f = {f"u{k}": at(i + k) for k in (-2, -1, 0, 1, 2)}
        if chars:
            f |= {"b-2": at(i - 2) + at(i - 1), "b-1": at(i - 1) + w, "b0": w + at(i + 1),
                  "b1": at(i + 1) + at(i + 2), "skip": at(i - 1) + at(i + 1)}
        else:
            f |= {"p1": w[:1], "p2": w[:2], "s1": w[-1:], "s2": w[-2:], "len": str(min(len(w), 5)),
                  "b-1": at(i - 1) + "|" + w, "b0": w + "|" + at(i + 1)}
        out.append(f)
    return out


def crf_baseline(data, part="test", c1=0.1, c2=0.01, iterations=100, val_data="", test_data=""):
    """{"crf_<part>_accuracy"[, "crf_<part>_word_f1", ...], "crf_seconds"} on rnnkit's default
    split of ``data`` (a data set name or a tagged file), or on the given validation / test
    files (names or files)."""
    import sklearn_crfsuite
    d = TagData(data=data, val_data=val_data, test_data=test_data)
    read = lambda p: read_tagged(resolve(p), d.column)
    train, val, test = own_parts(read(data), d, read)
    chars = all(len(t) == 1 for words, _ in train for t in words)
    tags = {t for _, ts in train for t in ts}
    if len(tags) > MAX_TAGS:   # forward-backward costs K² a token: Brown's 472 tags, hours
        return perceptron_baseline(train, {"test": test, "val": val}[part], part)
    crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=c1, c2=c2, max_iterations=iterations,
                               all_possible_transitions=True)
    start = time.perf_counter()
    crf.fit([window_features(w, chars) for w, _ in train], [list(t) for _, t in train])
    seconds = time.perf_counter() - start
    scored = {"test": test, "val": val}[part]
    pred = crf.predict([window_features(w, chars) for w, _ in scored])
    gold = [list(t) for _, t in scored]
    pairs = [(g, p) for gs, ps in zip(gold, pred) for g, p in zip(gs, ps)]
    out = {f"crf_{part}_accuracy": sum(g == p for g, p in pairs) / len(pairs),
           "crf_seconds": round(seconds, 1)}
    if {t.upper() for t in tags} <= SEGMENT_TAGS:
        seg = segmentation_f1(gold, pred)
        out |= {f"crf_{part}_word_f1": seg["f1"], f"crf_{part}_word_precision": seg["precision"],
                f"crf_{part}_word_recall": seg["recall"]}
    elif is_chunk_tagging(tags):
        ch = chunk_f1(gold, pred)
        out |= {f"crf_{part}_chunk_f1": ch["f1"], f"crf_{part}_chunk_precision": ch["precision"],
                f"crf_{part}_chunk_recall": ch["recall"]}
    return out


def perceptron_baseline(train, scored, part):
    """NLTK's averaged perceptron tagger (greedy, 5 passes; what an English user would train),
    for tag sets too large for the CRF: {"perceptron_<part>_accuracy", "perceptron_seconds"}."""
    from nltk.tag.perceptron import PerceptronTagger
    tagger = PerceptronTagger(load=False)
    start = time.perf_counter()
    tagger.train([list(zip(w, t)) for w, t in train], nr_iter=5)
    seconds = time.perf_counter() - start
    pairs = [(g, p) for w, t in scored for g, (_, p) in zip(t, tagger.tag(list(w)))]
    return {f"perceptron_{part}_accuracy": sum(g == p for g, p in pairs) / len(pairs),
            "perceptron_seconds": round(seconds, 1)}


def with_crf_baseline(args, metrics, keys):
    """A ``train tag`` run's metrics and figure names, with the baseline's on its data."""
    given = lambda flag: args[args.index(flag) + 1] if flag in args else ""
    base = crf_baseline(given("--data"), val_data=given("--val-data"),
                        test_data=given("--test-data"))
    return {**metrics, **base}, [*keys, *base]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="+", help="data set names or tagged files")
    p.add_argument("--part", choices=("test", "val"), default="test", help="the part scored")
    p.add_argument("--val-data", default="", help="the validation part (else a split of DATA)")
    p.add_argument("--test-data", default="", help="the test part (else a split of DATA)")
    a = p.parse_args()
    for name in a.data:
        print(name, crf_baseline(name, part=a.part, val_data=a.val_data, test_data=a.test_data),
              flush=True)
