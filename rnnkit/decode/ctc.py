"""Decoding the per-frame label distributions of a CTC model (Graves et al. 2006): greedy (best
path) and prefix beam search (Hannun et al. 2014, "First-pass large vocabulary continuous speech
recognition using bi-directional recurrent DNNs", Algorithm 1, without a language model).

A CTC model outputs, for each of T frames, log-probabilities over C classes: the blank (``blank``,
0 in rnnkit) and the K labels. An alignment a_1..a_T reads as a label sequence through B:
merge runs of the same class, then drop blanks (``aa-b`` -> ``ab``, ``a-ab`` -> ``aab``).
The probability of a label sequence y sums over its alignments:

    p(y | x) = Σ_{a : B(a) = y} Π_t p_t(a_t)

Greedy decoding takes the single most probable alignment and collapses it; it is not always the
most probable labelling, since many weak alignments can outweigh one strong one. The prefix beam
search keeps, for each prefix y, the total probability of the alignments of frames 1..t that
collapse to y, split by how they end: in a blank, p_b(y), or in y's last label, p_nb(y). Extending
by a label c at frame t+1 (p = p_{t+1}(c)):

    c = blank:           p_b(y)      += (p_b(y) + p_nb(y)) · p
    c = last label of y: p_nb(y)     += p_nb(y) · p         (the run goes on: still y)
                         p_nb(y + c) += p_b(y) · p          (a blank separated them: a new c)
    otherwise:           p_nb(y + c) += (p_b(y) + p_nb(y)) · p

and keeps the ``beam_size`` prefixes of highest p_b + p_nb. With a beam as wide as the number of
prefixes it is exact: p_b + p_nb of a prefix after frame T is p(y | x). Everything runs in log
space. Shapes: T frames, C classes (blank included), B batch.
"""
import math

import numpy as np
import torch

NEG_INF = -math.inf


def collapse(path, blank=0):
    """An alignment (class ids) -> its label sequence: runs merged, then blanks dropped."""
    out, prev = [], None
    for a in path:
        if a != prev and a != blank:
            out.append(a)
        prev = a
    return out


def _whole(value, name, least):
    """``value`` as an int of at least ``least``: any integer (numpy's, a tensor's) or a whole
    float; a bool, a fraction or text refused."""
    try:
        number = float(value) if not isinstance(value, (bool, str, bytes)) else math.nan
    except (TypeError, ValueError, RuntimeError):
        number = math.nan
    if not number.is_integer() or isinstance(value, np.bool_):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if number < least:
        raise ValueError(f"{name} must be >= {least}, got {int(number)}")
    return int(number)


def checked(log_probs, lengths, blank, dims=(3,)):
    """The frames of each sequence of ``log_probs`` (B, T, C), ``lengths`` (B,) or None (all T),
    after checking the three: a wrong count of lengths was zipped short (fewer results than
    sequences), a length past T clipped, a negative one read from the end, a blank outside the
    classes made no class blank, and NaN scores decoded to nothing."""
    if not torch.is_tensor(log_probs) or not log_probs.is_floating_point() \
            or log_probs.dim() not in dims:
        shape = "(T, C)" if dims == (2,) else "(B, T, C)" + (" or (T, C)" if 2 in dims else "")
        got = (f"a {log_probs.dim()}-d tensor {tuple(log_probs.shape)} of {log_probs.dtype}"
               if torch.is_tensor(log_probs) else type(log_probs).__name__)
        raise ValueError(f"expected log_probs, a float tensor of shape {shape}, got {got}")
    if log_probs.isnan().any():
        raise ValueError("log_probs hold NaN: the model's output is not a distribution")
    C = log_probs.shape[-1]
    try:
        whole = _whole(blank, "blank", 0)
    except ValueError:
        whole = -1
    if not 0 <= whole < C:
        raise ValueError(f"blank must be a class id in [0, {C}), got {blank!r}")
    if log_probs.dim() == 2:
        return [log_probs.shape[0]]
    B, T = log_probs.shape[:2]
    if lengths is None:
        return [T] * B
    lengths = [_whole(n, "each length", 0) for n in lengths]
    if len(lengths) != B or max(lengths, default=0) > T:
        raise ValueError(f"expected {B} lengths of at most {T} frames (one per sequence), got "
                         f"{len(lengths)}: {lengths[:8]}")
    return lengths


def greedy_decode(log_probs, lengths=None, blank=0):
    """Best-path decoding. ``log_probs`` (B, T, C) (or (T, C): one sequence), ``lengths`` (B,)
    frames of each sequence (default: all T) -> a list of B label id lists (one list for (T, C))."""
    lengths = checked(log_probs, lengths, blank, dims=(2, 3))
    if log_probs.dim() == 2:
        return greedy_decode(log_probs[None], None, blank)[0]
    best = log_probs.argmax(-1).tolist()                                      # (B, T)
    return [collapse(path[:n], blank) for path, n in zip(best, lengths)]


def _logadd(*xs):
    """log(Σ exp(x)) of a few floats, exact at -inf."""
    m = max(xs)
    if m == NEG_INF:
        return NEG_INF
    return m + math.log(sum(math.exp(x - m) for x in xs))


def prefix_beam_search(log_probs, beam_size=8, blank=0, n_best=1, prune=None):
    """The ``n_best`` most probable label sequences of one utterance under a CTC model, as
    ``[(label ids, log p(y | x)), ...]``, best first.

    ``log_probs`` (T, C): per-frame log-probabilities (log_softmax output). ``beam_size``: the
    prefixes kept after each frame. ``prune``: if given, a class whose log-probability at a frame
    is below it extends nothing there (a speed-up that makes the search inexact; None keeps
    every class). The scores are the summed probabilities of each prefix's alignments kept in the
    beam, so they equal p(y | x) when the beam holds every prefix."""
    checked(log_probs, None, blank, dims=(2,))
    beam_size, n_best = _whole(beam_size, "beam_size", 1), _whole(n_best, "n_best", 1)
    top = float(log_probs.detach().max()) if log_probs.numel() else 0.0
    if top > 1e-3:   # probabilities or logits: the sums below would mean nothing
        raise ValueError(f"log_probs must be log-probabilities (at most 0; log_softmax's "
                         f"output), got a value of {top:.4g}")
    lp = log_probs.detach().double().cpu().tolist()                         # T x [C]
    beams = {(): (0.0, NEG_INF)}                 # prefix -> (log p_b, log p_nb)
    for frame in lp:
        classes = [c for c, p in enumerate(frame) if prune is None or p >= prune or c == blank]
        nxt = {}

        def add(prefix, b=NEG_INF, nb=NEG_INF):
            old_b, old_nb = nxt.get(prefix, (NEG_INF, NEG_INF))
            nxt[prefix] = (_logadd(old_b, b), _logadd(old_nb, nb))

        for prefix, (pb, pnb) in beams.items():
            total = _logadd(pb, pnb)
            last = prefix[-1] if prefix else None
            for c in classes:
                p = frame[c]
                if c == blank:
                    add(prefix, b=total + p)
                elif c == last:
                    add(prefix, nb=pnb + p)            # the run of c goes on
                    if pb > NEG_INF:                   # a blank came between: a second c
                        add(prefix + (c,), nb=pb + p)
                else:
                    add(prefix + (c,), nb=total + p)
        ranked = sorted(nxt.items(), key=lambda kv: -_logadd(*kv[1]))
        beams = dict(ranked[:beam_size])
    ranked = sorted(((list(y), _logadd(*s)) for y, s in beams.items()), key=lambda r: -r[1])
    possible = [r for r in ranked if r[1] > NEG_INF]   # a labelling no alignment emits is none
    return (possible or ranked[:1])[:n_best]


def beam_decode(log_probs, lengths=None, beam_size=8, blank=0, prune=None):
    """Prefix beam search over a batch: ``log_probs`` (B, T, C), ``lengths`` (B,) -> a list of B
    (label ids, log p) pairs, the best of each sequence."""
    lengths = checked(log_probs, lengths, blank)
    return [prefix_beam_search(log_probs[i, :n], beam_size, blank, 1, prune)[0]
            for i, n in enumerate(lengths)]


def min_frames(labels):
    """The fewest frames CTC needs to emit ``labels``: one per label, plus a blank between two
    equal labels in a row (``aab`` needs ``a-ab``, 4 frames)."""
    return len(labels) + sum(a == b for a, b in zip(labels, labels[1:]))


def label_logprob(log_probs, labels, blank=0):
    """log p(labels | x) of one utterance, by torch's CTC loss (the forward algorithm): the
    reference the beam's scores are compared with. ``log_probs`` (T, C)."""
    T = log_probs.shape[0]
    targets = torch.tensor([labels], dtype=torch.long) if labels else torch.zeros(1, 0).long()
    nll = torch.nn.functional.ctc_loss(log_probs[:, None].double(), targets, [T], [len(labels)],
                                       blank=blank, reduction="sum")
    return -float(nll)
