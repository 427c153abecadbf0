"""Tagging raw text written without spaces: one model over characters (``B-tag`` / ``I-tag``,
``rnnkit train tag --tokens char``) against the pipeline a user would otherwise run, a word
segmenter and then a word tagger, on the same test sentences of a ``word/tag`` corpus.

    python benchmarks/joint_tagging.py --joint RUN --segmenter RUN --tagger RUN [--data pd1998-pos]

The three runs must have been trained with the same split settings on the same sentences (the
segmenter on the corpus' words as B/M/E/S character tags: ``--write-segmentation FILE`` writes
that file from the corpus, one line per sentence, so the seeded split picks the same test
sentences). Each side reads the test sentences' characters only. Scores: word segmentation F1
(a word counts when its character span matches a gold word's) and joint F1 (span and tag), as
the joint segmentation and tagging literature scores them (Ng & Low 2004), and each side's
characters per second on one thread (the models loaded before).
"""
import argparse
import json
import time
from pathlib import Path

import torch

from rnnkit.data import resolve
from rnnkit.data.labelled import own_parts
from rnnkit.data.tagged import read_tagged
from rnnkit.tasks.metrics import span_f1, word_spans
from rnnkit.tasks.tag import TagData
from rnnkit.tasks.tag_trained import Tagger
from rnnkit.train.checkpoint import load_checkpoint

SPLIT = ("split_seed", "test_fraction", "val_fraction")


def bmes(word):
    return ["S"] if len(word) == 1 else ["B"] + ["M"] * (len(word) - 2) + ["E"]


def write_segmentation(sents, path):
    with open(path, "w", encoding="utf-8") as f:
        for words, _ in sents:
            f.write(" ".join(f"{c}/{t}" for w in words for c, t in zip(w, bmes(w))) + "\n")


def spans(words, tags):
    """[(start, end, tag)] character spans of a sentence's words."""
    out, at = [], 0
    for w, t in zip(words, tags):
        out.append((at, at + len(w), t))
        at += len(w)
    return out


def joint(tagger, texts):
    out = []
    for chars, tags in zip(texts, tagger.tag(texts)):
        pairs = tagger.words(chars, tags)
        out.append(spans([w for w, _ in pairs], [t for _, t in pairs]))
    return out


def pipeline(seg, tagger, texts):
    words = [["".join(c[a:b]) for a, b in word_spans(t)] for c, t in zip(texts, seg.tag(texts))]
    return [spans(w, t) for w, t in zip(words, tagger.tag(words))]


def scores(gold, pred):
    seg = span_f1([[s[:2] for s in g] for g in gold], [[s[:2] for s in p] for p in pred],
                  lambda x: x)
    both = span_f1(gold, pred, lambda x: x)
    return {"segmentation_f1": seg["f1"], "joint_f1": both["f1"],
            "joint_precision": both["precision"], "joint_recall": both["recall"],
            "words": both["spans"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="pd1998-pos")
    p.add_argument("--joint", help="run trained with --tokens char on --data")
    p.add_argument("--segmenter", help="run trained on --data's B/M/E/S file")
    p.add_argument("--tagger", help="run trained on --data's words")
    p.add_argument("--write-segmentation", metavar="FILE",
                   help="write --data's words as B/M/E/S character tags to FILE and stop")
    p.add_argument("--json", help="also write the figures to this file")
    a = p.parse_args()
    sents = read_tagged(resolve(a.data), 0)
    if a.write_segmentation:
        write_segmentation(sents, a.write_segmentation)
        print(f"{len(sents):,} sentences -> {a.write_segmentation}")
        return
    d = TagData(data=a.data)
    for flag, run in (("--joint", a.joint), ("--segmenter", a.segmenter), ("--tagger", a.tagger)):
        if not run or not Path(run, "best.pt").is_file():
            raise SystemExit(f"{flag}: a run folder holding best.pt is needed, got {run!r}")
        saved = load_checkpoint(Path(run, "best.pt"))["data_config"]
        if any(saved[k] != getattr(d, k) for k in SPLIT) or saved["val_data"] or saved["test_data"]:
            raise SystemExit(f"{run}: trained with another split ({[saved[k] for k in SPLIT]})")
    test = own_parts(sents, d)[2]
    texts = [list("".join(words)) for words, _ in test]
    gold = [spans(words, tags) for words, tags in test]
    torch.set_num_threads(1)
    chars = sum(len(t) for t in texts)
    out = {}
    one, seg, tagger = (Tagger.load(r) for r in (a.joint, a.segmenter, a.tagger))
    for name, fn in (("joint", lambda: joint(one, texts)),
                     ("pipeline", lambda: pipeline(seg, tagger, texts))):
        start = time.perf_counter()
        pred = fn()
        out[name] = {**scores(gold, pred), "chars_per_s": chars / (time.perf_counter() - start)}
    print(f"{a.data}: test part, {len(test):,} sentences, {chars:,} characters")
    print("| | segmentation F1 | joint F1 (word and tag) | precision | recall | chars/s |")
    print("|---|---|---|---|---|---|")
    for name, m in out.items():
        print(f"| {name} | {m['segmentation_f1']:.2%} | {m['joint_f1']:.2%} | "
              f"{m['joint_precision']:.2%} | {m['joint_recall']:.2%} | {m['chars_per_s']:,.0f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
