"""Classification metrics: accuracy, per-class precision/recall/F1 and their macro average; word
F1 of a segmentation tagged B/M/E/S; sequence accuracy and token error rate of generated
sequences."""
from collections import Counter

import torch


def accuracy(gold, pred):
    return sum(g == p for g, p in zip(gold, pred)) / max(len(gold), 1)


def f1_report(gold, pred):
    """{label: {"precision", "recall", "f1", "support"}} over the labels in gold or pred."""
    tp, n_gold, n_pred = Counter(), Counter(gold), Counter(pred)
    for g, p in zip(gold, pred):
        tp[g] += g == p
    report = {}
    for label in sorted(set(n_gold) | set(n_pred)):
        p = tp[label] / n_pred[label] if n_pred[label] else 0.0
        r = tp[label] / n_gold[label] if n_gold[label] else 0.0
        report[label] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
                         "support": n_gold[label]}
    return report


def macro_f1(gold, pred, labels=None):
    """Unweighted mean F1 over the labels (Sokolova & Lapalme 2009): by default those of the
    gold and the predicted labels, as scikit-learn's ``f1_score(average="macro")`` takes them
    (a label predicted but never true counts with F1 0; over the gold labels alone, a file of one
    true label scored a macro-F1 above its accuracy)."""
    report = f1_report(gold, pred)
    labels = set(gold) | set(pred) if labels is None else set(labels)
    return sum(report[l]["f1"] if l in report else 0.0 for l in labels) / max(len(labels), 1)


def weighted_macro_f1(gold, pred, weights, K):
    """(B,) :func:`macro_f1` of class ids ``pred`` against ``gold`` (N,) with each example
    counted ``weights`` (B, N) times (a bootstrap resample's counts); classes 0..K-1, averaged
    over those the weighted gold part holds."""
    G = torch.nn.functional.one_hot(gold, K).to(weights.dtype)                # (N, K)
    P = torch.nn.functional.one_hot(pred, K).to(weights.dtype)                # (N, K)
    tp, n_gold, n_pred = weights @ (G * P), weights @ G, weights @ P          # (B, K)
    f1 = 2 * tp / (n_gold + n_pred).clamp_min(1e-12)          # 2pr/(p+r), 0 where tp is 0
    present = n_gold > 0
    return (f1 * present).sum(1) / present.sum(1).clamp_min(1)


def bootstrap_wins(gold, a, b, K, resamples=1000, seed=0, chunk=100):
    """The share of ``resamples`` bootstrap resamples of the N examples (drawn with ``seed``, so
    the same inputs give the same share) on which predictions ``b`` have a higher macro-F1 than
    predictions ``a``: gold, a, b (N,) class ids in 0..K-1. Near 1: b's lead holds across
    draws of the part, not on this draw alone."""
    gen, n, wins = torch.Generator().manual_seed(seed), len(gold), 0
    for start in range(0, resamples, chunk):
        B = min(chunk, resamples - start)
        idx = torch.randint(n, (B, n), generator=gen)
        w = torch.zeros(B, n, dtype=torch.float64).scatter_add_(
            1, idx, torch.ones(B, n, dtype=torch.float64))                  # (B, N) counts
        wins += int((weighted_macro_f1(gold, b, w, K) > weighted_macro_f1(gold, a, w, K)).sum())
    return wins / resamples


def format_report(report):
    """The per-class report as an aligned text table, most frequent class first."""
    lines = [f"{'label':<12} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}"]
    for label, r in sorted(report.items(), key=lambda kv: -kv[1]["support"]):
        lines.append(f"{label:<12} {r['precision']:>9.4f} {r['recall']:>7.4f} {r['f1']:>7.4f} "
                     f"{r['support']:>8}")
    return "\n".join(lines) + "\n"


SEGMENT_TAGS = {"B", "M", "E", "S"}


def word_spans(tags):
    """The words of one sentence tagged B/M/E/S (begin, middle, end, single; either case), as (start, end)
    spans. A word ends at E or S, before a B or S, and at the end of the sentence, so any tag
    sequence (a model's too) reads as a segmentation."""
    tags = [t.upper() for t in tags]                  # b/m/e/s as well
    spans, start = [], 0
    for i, t in enumerate(tags):
        if t in ("E", "S") or i + 1 == len(tags) or tags[i + 1] in ("B", "S"):
            spans.append((start, i + 1))
            start = i + 1
    return spans


def segmentation_f1(gold, pred):
    """Word-level precision, recall and F1 of predicted segmentations (the SIGHAN bakeoff
    measure): a word counts when its span matches a gold word exactly. gold, pred: per
    sentence, its tags."""
    out = span_f1(gold, pred, word_spans)
    out["words"] = out.pop("spans")
    return out


CHUNK_PREFIXES = ("B-", "I-", "E-", "S-", "L-", "U-")   # IOB, BIOES (E end, S single), BILOU


def is_chunk_tagging(tags):
    """Whether a tag set marks chunks (named entities, or words with their tags): every tag
    ``O`` or ``B-type`` / ``I-type`` (also BIOES's ``E-`` / ``S-`` and BILOU's ``L-`` /
    ``U-``), some of them typed."""
    return any(t[:2] in CHUNK_PREFIXES for t in tags) \
        and all(t == "O" or t[:2] in CHUNK_PREFIXES for t in tags)


def chunk_spans(tags):
    """The chunks of one sentence tagged O / B-type / I-type, IOB1 or IOB2, as (start, end,
    type), read as CoNLL's conlleval reads them: a chunk starts at a B, or at an I after O or
    after another type, and ends before the next O, B or change of type. BIOES and BILOU tags
    also end a chunk after an E (L) and make an S (U) a chunk of its own."""
    spans, start, kind = [], None, None
    for i, t in enumerate(list(tags) + ["O"]):
        prefix, typ = (t[:1], t[2:]) if t != "O" else ("O", None)
        if start is not None and (prefix in ("O", "B", "S", "U") or typ != kind):
            spans.append((start, i, kind))
            start = None
        if prefix in ("B", "I", "E", "L", "S", "U") and start is None:
            start, kind = i, typ
        if prefix in ("E", "L", "S", "U"):
            spans.append((start, i + 1, kind))
            start = None
    return spans


def chunk_f1(gold, pred):
    """Chunk-level precision, recall and F1 (CoNLL-2000/2003's measure: a chunk counts when its
    span and type match a gold chunk exactly). gold, pred: per sentence, its tags."""
    out = span_f1(gold, pred, chunk_spans)
    out["chunks"] = out.pop("spans")
    return out


def span_f1(gold, pred, spans_of):
    """Precision, recall and F1 of the spans ``spans_of`` reads from each sentence's tags, and
    the gold spans' count ("spans")."""
    tp = n_gold = n_pred = 0
    for g, p in zip(gold, pred):
        gs, ps = set(spans_of(g)), set(spans_of(p))
        tp, n_gold, n_pred = tp + len(gs & ps), n_gold + len(gs), n_pred + len(ps)
    precision, recall = tp / max(n_pred, 1), tp / max(n_gold, 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "spans": n_gold}


def edit_distance(a, b):
    """Levenshtein distance between two sequences (strings or token lists): the fewest
    insertions, deletions and substitutions that turn ``a`` into ``b``."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def sequence_accuracy(hyps, refs):
    """Fraction of outputs equal to their reference as a whole (transliteration's "ACC", and
    1 - WER of grapheme-to-phoneme work, where a word counts wrong on any error)."""
    if len(hyps) != len(refs):
        raise ValueError(f"expected as many outputs as references, got {len(hyps)} and {len(refs)}")
    return sum(list(h) == list(r) for h, r in zip(hyps, refs)) / max(len(refs), 1)


def token_error_rate(hyps, refs):
    """Corpus token error rate: token edit distance summed over the pairs / reference tokens
    (WER over words, PER over phonemes, CER over characters). ``hyps``, ``refs``: token lists.
    An empty output costs one deletion per reference token; with no reference tokens at all the
    rate is the number of tokens output (over 1)."""
    if len(hyps) != len(refs):
        raise ValueError(f"expected as many outputs as references, got {len(hyps)} and {len(refs)}")
    edits = sum(edit_distance(h, r) for h, r in zip(hyps, refs))
    return edits / max(1, sum(len(r) for r in refs))
