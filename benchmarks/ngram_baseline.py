"""The n-gram baseline a user would write instead of rnnkit's classifier: tf-idf n-grams and
logistic regression (scikit-learn), on the same train/test split as ``rnnkit train classify``.

    python benchmarks/ngram_baseline.py [--part val] DATA [DATA ...]   (needs the ``bench`` extra)

``--part val`` scores the validation part instead of the test part (to compare settings chosen on
validation without looking at the test part). ``--features words|chars`` keeps one of the two
feature sets of word tokens (where the baseline's lead comes from). The regularisation C is chosen
per set on the validation part from ``CS``, as rnnkit chooses its own penalty (``--C 4``: the
one fixed value earlier figures used).

Character tokens (Chinese, Japanese, Thai, ...): character 1-2-grams. Word tokens: word 1-2-grams
plus character 2-5-grams within words. The token choice is rnnkit's own (``--tokens auto``).
"""
import argparse

from rnnkit.data import resolve
from rnnkit.data.labelled import own_parts, read_labelled
from rnnkit.data.text_tokens import chars, detect_tokens, words
from rnnkit.tasks.classify import ClassifyData


def grams(tokens, join):
    """Unigrams and bigrams of a token list."""
    return tokens + [a + join + b for a, b in zip(tokens, tokens[1:])]


CS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)   # the inverse penalties validation chooses from


def ngram_baseline(data, C=None, part="test", kept="both"):
    """{"ngram_lr_<part>_accuracy", "ngram_lr_<part>_macro_f1", "ngram_tokens", "ngram_lr_C"}
    on rnnkit's default split of ``data`` (a data set name or a labelled file); ``part``: test
    or val. ``C`` None: the one of CS whose model is most accurate on the validation part."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_union
    d = ClassifyData(data=data)
    train, val, test = own_parts(read_labelled(resolve(data)), d)
    scored = {"test": test, "val": val}[part]
    tokens = detect_tokens(t for _, t in train)
    if tokens == "char":
        features = TfidfVectorizer(analyzer=lambda t: grams(chars(t), ""), sublinear_tf=True)
    else:
        both = {"words": TfidfVectorizer(analyzer=lambda t: grams(words(t), " "), sublinear_tf=True),
                "chars": TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)}
        features = make_union(*both.values()) if kept == "both" else both[kept]
    X = features.fit_transform([t for _, t in train])
    y = [l for l, _ in train]
    if C is None:   # chosen on validation, never on the part scored for the figures
        Xv, yv = features.transform([t for _, t in val]), [l for l, _ in val]
        fits = {c: LogisticRegression(C=c, max_iter=2000).fit(X, y) for c in CS}
        C = max(CS, key=lambda c: (accuracy_score(yv, fits[c].predict(Xv)), -abs(c - 4)))
        model = fits[C]
    else:
        model = LogisticRegression(C=C, max_iter=2000).fit(X, y)
    pred = model.predict(features.transform([t for _, t in scored]))
    gold = [l for l, _ in scored]
    return {f"ngram_lr_{part}_accuracy": float(accuracy_score(gold, pred)),
            f"ngram_lr_{part}_macro_f1": float(f1_score(gold, pred, average="macro")),
            "ngram_tokens": tokens, "ngram_lr_C": C}


def with_ngram_baseline(args, metrics, keys):
    """A ``train classify`` run's metrics and figure names, with the baseline's on its data."""
    metrics = {**metrics, **ngram_baseline(args[args.index("--data") + 1])}
    return metrics, [*keys, "ngram_lr_test_accuracy", "ngram_lr_test_macro_f1"]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="+", help="data set names or labelled files")
    p.add_argument("--part", choices=("test", "val"), default="test", help="the part scored")
    p.add_argument("--features", choices=("both", "words", "chars"), default="both",
                   help="word tokens: word 1-2-grams, character 2-5-grams within words, or both")
    p.add_argument("--C", type=float, default=None,
                   help="the logistic regression's inverse penalty (default: chosen on validation)")
    a = p.parse_args()
    for name in a.data:
        print(name, ngram_baseline(name, C=a.C, part=a.part, kept=a.features), flush=True)
