"""The tagger's linear-start CRF gradient, written out (:func:`rnnkit.models.crf_fit.objective`),
against autograd through rnnkit's CRF layer (:class:`rnnkit.models.crf.CRF`), on a tagged data
set's training part: one pass (loss and the gradients of the emissions and transitions) each,
side by side, median of ``--repeats``, and the largest difference of the two gradients.

    python benchmarks/crf_fit_speed.py [--repeats 5] [--threads 1] [DATA]   (default pd1998-seg)

The emissions are random (the speed does not depend on them); the sentences and tags are the
data's, batched alike (:class:`rnnkit.models.crf_fit.Sentences`).
"""
import argparse
import statistics
import time

import torch

from rnnkit.data import resolve
from rnnkit.data.labelled import own_parts
from rnnkit.data.tagged import read_tagged, resolve_tag_tokens
from rnnkit.models import crf_fit
from rnnkit.models.crf import CRF
from rnnkit.tasks.tag import TagData, as_tokens


def autograd_pass(E, sentences, crf):
    """The same pass through the CRF layer's nll and autograd: (mean loss, dE, dtrans)."""
    E = E.detach().requires_grad_()
    crf.zero_grad()
    loss = sum(crf.nll(E[flat], y, mask) for flat, mask, y in sentences.batches) / sentences.tokens
    loss.backward()
    return float(loss.detach()), E.grad, crf.trans.grad


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="?", default="pd1998-seg")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    d = TagData(data=a.data)
    sents = read_tagged(resolve(a.data), d.column)
    train = own_parts(as_tokens(sents, resolve_tag_tokens(d.tokens, sents)), d, None)[0]
    tags = sorted({t for _, ts in train for t in ts})
    index = {t: i for i, t in enumerate(tags)}
    K = len(tags)
    sentences = crf_fit.Sentences([len(w) for w, _ in train],
                                  [[index[t] for t in ts] for _, ts in train], K)
    torch.manual_seed(0)
    E = torch.randn(sentences.tokens, K, dtype=torch.float64)
    crf = CRF(K).double()
    with torch.no_grad():
        for q in crf.parameters():
            q.normal_(0, 0.5)
    params = [q.detach() for q in (crf.trans, crf.start, crf.end)]
    times = {"written out": [], "autograd": []}
    for _ in range(a.repeats):
        start = time.perf_counter()
        ours = crf_fit.objective(E, sentences, *params)
        times["written out"].append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = autograd_pass(E, sentences, crf)
        times["autograd"].append(time.perf_counter() - start)
    print(f"{a.data}: {sentences.tokens:,} tokens, {len(train):,} sentences, {K} tags, "
          f"{len(sentences.batches)} batches, {a.threads} thread(s)")
    for name, t in times.items():
        print(f"  {name:12s} median {statistics.median(t):.3f} s a pass")
    print(f"  loss {ours[0]:.6f} against {theirs[0]:.6f}; largest gradient difference: "
          f"emissions {float((ours[1] - theirs[1]).abs().max()):.1e}, transitions "
          f"{float((ours[2] - theirs[2]).abs().max()):.1e}")


if __name__ == "__main__":
    main()
