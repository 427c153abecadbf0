"""The CRF's written-out gradient (:func:`rnnkit.models.crf.chain_nll`) against autograd through
its forward algorithm (``log_partition - score``, as the CRF layer trained before), on a tagged
data set's training part, side by side, median of ``--repeats``:

- the linear start's pass: loss and gradients over the whole part in float64, batched as
  :class:`rnnkit.models.crf_fit.Sentences` batches it (:func:`rnnkit.models.crf_fit.objective`);
- a training step's: ``CRF.nll`` and its backward in float32 over ``--batches`` random batches of
  ``--batch-size`` sentences (the tagger's default 64), rows in any order, padded to the longest.

and the largest difference of the two gradients.

    python benchmarks/crf_fit_speed.py [--repeats 5] [--threads 1] [DATA]   (default pd1998-seg)

The emissions are random (the speed does not depend on them); the sentences and tags are the
data's.
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


def reference_nll(crf, E, y, mask):
    """The summed nll by autograd through the forward algorithm."""
    return (crf.log_partition(E, mask) - crf.score(E, y, mask)).sum()


def autograd_pass(E, sentences, crf):
    """The linear start's pass through the forward algorithm and autograd: (mean loss, dE, dtrans)."""
    E = E.detach().requires_grad_()
    crf.zero_grad()
    loss = sum(reference_nll(crf, E[flat], y, mask)
               for flat, mask, y in sentences.batches) / sentences.tokens
    loss.backward()
    return float(loss.detach()), E.grad, crf.trans.grad


def training_batches(tags, size, count, K):
    """``count`` random batches of ``size`` sentences: (emissions (B, T, K) float32, tags, mask)."""
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(count):
        pick = torch.randint(len(tags), (size,), generator=g).tolist()
        lens = torch.tensor([len(tags[i]) for i in pick])
        T = int(lens.max())
        mask = torch.arange(T)[None] < lens[:, None]
        y = torch.zeros(size, T, dtype=torch.long)
        for row, i in enumerate(pick):
            y[row, :len(tags[i])] = torch.tensor(tags[i])
        out.append((torch.randn(size, T, K, generator=g), y, mask))
    return out


def step(nll, batches, crf):
    """Loss and backward over the batches: (summed loss, dE of each batch, dtrans)."""
    crf.zero_grad()
    total, grads = 0.0, []
    for E, y, mask in batches:
        E = E.clone().requires_grad_()
        loss = nll(crf, E, y, mask)
        loss.backward()
        total += float(loss.detach())
        grads.append(E.grad)
    return total, grads, crf.trans.grad.clone()


def timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="?", default="pd1998-seg")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=20)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    d = TagData(data=a.data)
    sents = read_tagged(resolve(a.data), d.column)
    train = own_parts(as_tokens(sents, resolve_tag_tokens(d.tokens, sents)), d, None)[0]
    tags = sorted({t for _, ts in train for t in ts})
    index = {t: i for i, t in enumerate(tags)}
    K = len(tags)
    ids = [[index[t] for t in ts] for _, ts in train]
    sentences = crf_fit.Sentences([len(w) for w, _ in train], ids, K)
    torch.manual_seed(0)
    E = torch.randn(sentences.tokens, K, dtype=torch.float64)
    crf = CRF(K).double()
    with torch.no_grad():
        for q in crf.parameters():
            q.normal_(0, 0.5)
    params = [q.detach() for q in (crf.trans, crf.start, crf.end)]
    print(f"{a.data}: {sentences.tokens:,} tokens, {len(train):,} sentences, {K} tags, "
          f"{a.threads} thread(s), median of {a.repeats}")
    t_ours, ours = timed(lambda: crf_fit.objective(E, sentences, *params), a.repeats)
    t_ref, ref = timed(lambda: autograd_pass(E, sentences, crf), a.repeats)
    print(f"linear start, a pass over the part in {len(sentences.batches)} length-sorted batches:"
          f" written out {t_ours:.3f} s, autograd {t_ref:.3f} s ({t_ref / t_ours:.1f}x)")
    print(f"  loss {ours[0]:.6f} against {ref[0]:.6f}; largest gradient difference: emissions "
          f"{float((ours[1] - ref[1]).abs().max()):.1e}, transitions "
          f"{float((ours[2] - ref[2]).abs().max()):.1e}")
    crf = crf.float()
    batches = training_batches(ids, a.batch_size, a.batches, K)
    t_ours, ours = timed(lambda: step(lambda c, *b: c.nll(*b), batches, crf), a.repeats)
    t_ref, ref = timed(lambda: step(reference_nll, batches, crf), a.repeats)
    steps = sum(int(m.shape[1]) for _, _, m in batches) / len(batches)
    print(f"training steps, {a.batches} random batches of {a.batch_size} sentences (mean padded "
          f"length {steps:.0f}), float32, nll and backward: CRF.nll {t_ours / a.batches * 1e3:.1f}"
          f" ms a batch, autograd {t_ref / a.batches * 1e3:.1f} ms ({t_ref / t_ours:.1f}x)")
    dE = max(float((x - y).abs().max()) for x, y in zip(ours[1], ref[1]))
    print(f"  loss {ours[0]:.3f} against {ref[0]:.3f}; largest gradient difference: emissions "
          f"{dE:.1e}, transitions {float((ours[2] - ref[2]).abs().max()):.1e}")


if __name__ == "__main__":
    main()
