"""CTC decoding against brute force on tiny alphabets: every alignment enumerated, its probability
summed into the label sequence it collapses to; the beam's best and its scores must match."""
import itertools
import math
from collections import defaultdict

import pytest
import torch

from rnnkit.decode.ctc import (beam_decode, collapse, greedy_decode, label_logprob, min_frames,
                               prefix_beam_search)


def frames(T, C, seed, peak=2.0):
    """Random per-frame log-probabilities (T, C); ``peak`` scales the logits (higher: peakier)."""
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(peak * torch.randn(T, C, generator=g, dtype=torch.float64), -1)


def brute_force(log_probs, blank=0):
    """{label tuple: log p(labels | x)} summed over all C^T alignments."""
    T, C = log_probs.shape
    lp = log_probs.tolist()
    total = defaultdict(float)
    for path in itertools.product(range(C), repeat=T):
        total[tuple(collapse(path, blank))] += math.exp(sum(lp[t][a] for t, a in enumerate(path)))
    return {y: math.log(p) for y, p in total.items()}


def test_collapse_merges_runs_then_drops_blanks():
    assert collapse([1, 1, 0, 2]) == [1, 2]
    assert collapse([1, 0, 1, 2, 2]) == [1, 1, 2]
    assert collapse([0, 0, 0]) == []
    assert collapse([3, 3, 3], blank=3) == []


@pytest.mark.parametrize("T,C,seed", [(4, 3, 0), (5, 3, 1), (5, 4, 2), (6, 3, 3), (4, 4, 4)])
def test_exhaustive_beam_is_exact(T, C, seed):
    lp = frames(T, C, seed)
    exact = brute_force(lp)
    assert math.isclose(sum(math.exp(v) for v in exact.values()), 1.0, rel_tol=1e-9)
    got = prefix_beam_search(lp, beam_size=10_000, n_best=len(exact))
    assert len(got) == len(exact)                      # every reachable labelling, once
    for labels, score in got:
        assert score == pytest.approx(exact[tuple(labels)], abs=1e-9)
    ranked = sorted(exact.values(), reverse=True)
    assert [s for _, s in got] == pytest.approx(ranked, abs=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_narrow_beam_finds_the_best_labelling(seed):
    lp = frames(6, 3, seed, peak=1.0)                  # flat: many alignments per labelling
    exact = brute_force(lp)
    best = max(exact, key=exact.get)
    labels, score = prefix_beam_search(lp, beam_size=4)[0]
    assert tuple(labels) == best
    # a beam keeps fewer alignments than exist: its score is a lower bound of the true one
    assert score <= exact[best] + 1e-9


def test_beam_can_beat_greedy():
    """Two frames: 'a' at 0.4 each, blank at 0.6: the best path is blank-blank (empty, 0.36),
    but 'a' has the alignments a-, -a, aa (0.24 + 0.24 + 0.16 = 0.64)."""
    p = torch.tensor([[0.6, 0.4], [0.6, 0.4]], dtype=torch.float64).log()
    assert greedy_decode(p) == []
    labels, score = prefix_beam_search(p, beam_size=2)[0]
    assert labels == [1] and score == pytest.approx(math.log(0.64))


def test_greedy_is_the_collapsed_best_alignment():
    lp = frames(5, 4, 7)
    T, C = lp.shape
    best = max(itertools.product(range(C), repeat=T),
               key=lambda path: sum(float(lp[t, a]) for t, a in enumerate(path)))
    assert greedy_decode(lp) == collapse(best)


def test_batch_decoders_respect_lengths():
    a, b = frames(6, 4, 11), frames(6, 4, 12)
    batch = torch.stack([a, b])                                               # (2, 6, 4)
    assert greedy_decode(batch, torch.tensor([6, 3])) == [greedy_decode(a), greedy_decode(b[:3])]
    got = beam_decode(batch, torch.tensor([6, 3]), beam_size=50)
    assert got[1][0] == prefix_beam_search(b[:3], beam_size=50)[0][0]


def test_beam_scores_agree_with_torch_ctc_loss():
    """The forward algorithm (torch.nn.functional.ctc_loss) gives the same p(y | x) for each
    labelling the exhaustive beam returns, on a longer utterance than brute force can reach."""
    lp = frames(10, 3, 5)
    for labels, score in prefix_beam_search(lp, beam_size=100_000, n_best=5):
        assert score == pytest.approx(label_logprob(lp, labels), abs=1e-7)


def test_prune_skips_unlikely_classes_but_keeps_blank():
    lp = frames(6, 4, 9, peak=4.0)
    assert prefix_beam_search(lp, 16, prune=math.log(1e-3))[0][0] == \
        prefix_beam_search(lp, 16)[0][0]


def test_min_frames_counts_a_blank_between_repeats():
    assert min_frames([1, 2, 3]) == 3
    assert min_frames([1, 1, 2, 2, 2]) == 8
    assert min_frames([]) == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="shape"):
        prefix_beam_search(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="beam_size"):
        prefix_beam_search(torch.zeros(2, 3), beam_size=0)


def test_the_decoders_take_integers_of_any_kind():
    """numpy's integers, tensors of lengths and whole floats are numbers of frames too."""
    import numpy as np
    lp = torch.randn(3, 10, 5).log_softmax(-1)
    want = greedy_decode(lp, [10, 5, 3])
    for lengths in (np.array([10, 5, 3]), [np.int32(10), np.int64(5), 3],
                    torch.tensor([10, 5, 3], dtype=torch.int32), torch.tensor([10.0, 5.0, 3.0])):
        assert greedy_decode(lp, lengths, blank=np.int64(0)) == want
    assert beam_decode(lp, np.array([10, 5, 3]), np.int64(4)) == beam_decode(lp, [10, 5, 3], 4)


@pytest.mark.parametrize("call, message", [
    (lambda lp: greedy_decode(lp, [6]), r"expected 3 lengths of at most 6 frames .*got 1"),
    (lambda lp: beam_decode(lp, [6], 4), r"expected 3 lengths of at most 6 frames .*got 1"),
    (lambda lp: beam_decode(lp, [6, 6, 6, 6]), "expected 3 lengths"),
    (lambda lp: greedy_decode(lp, [10, 6, 6]), r"at most 6 frames .*got 3: \[10, 6, 6\]"),
    (lambda lp: beam_decode(lp, [-1, 6, 6]), "each length must be >= 0, got -1"),
    (lambda lp: greedy_decode(lp, [2.5, 6, 6]), "each length must be a whole number, got 2.5"),
    (lambda lp: greedy_decode(lp, blank=7), r"blank must be a class id in \[0, 4\), got 7"),
    (lambda lp: greedy_decode(lp.fill_(float("nan"))), "log_probs hold NaN"),
    (lambda lp: prefix_beam_search(lp[0], beam_size=2.5), "beam_size must be a whole number"),
    (lambda lp: prefix_beam_search(lp[0].exp()), "must be log-probabilities .*got a value"),
    (lambda lp: greedy_decode(lp[0, 0]), r"shape \(B, T, C\) or \(T, C\), got a 1-d tensor"),
    (lambda lp: beam_decode(lp[0]), r"shape \(B, T, C\), got a 2-d tensor \(6, 4\)"),
])
def test_the_decoders_refuse_what_they_would_decode_into_nonsense(call, message):
    """Lengths of another count were zipped short (one result for three sequences) or raised
    an IndexError; a length past T was clipped and a negative one read from the end; a blank
    outside the classes made none blank; NaN scores decoded to nothing; probabilities summed as
    if logs; a fractional beam ended in a TypeError of slices."""
    lp = torch.randn(3, 6, 4).log_softmax(-1)
    with pytest.raises(ValueError, match=message):
        call(lp)


def test_n_best_holds_no_labelling_that_no_alignment_emits():
    """Two frames cannot emit [1, 1] (a blank must come between): n_best listed it at -inf."""
    lp = torch.tensor([[0.0, -1.0], [0.0, -1.0]]).log_softmax(-1)
    got = prefix_beam_search(lp, 8, n_best=3)
    assert [y for y, _ in got] == [[], [1]] and all(math.isfinite(s) for _, s in got)
