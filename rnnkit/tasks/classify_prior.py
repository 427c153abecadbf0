"""The classifier's class priors: the shift of its decision towards rare classes (chosen on the
validation part's macro-F1, :func:`prior_shift`) and the balanced class weights of its loss."""
import torch

from rnnkit.tasks.metrics import bootstrap_wins, macro_f1

PRIOR_SHIFTS = (0.5, 1.0)   # τ tried besides 0: logits - τ log(class share) (more rare classes)
SHIFT_EVIDENCE = 0.95       # ... taken where its macro-F1 leads in this share of resamples


def prior_shift(z, y, log_prior):
    """(τ, predictions (N,)) for logits ``z`` (N, K) of texts labelled ``y`` (N,): τ 0 (the
    argmax), or the τ from PRIOR_SHIFTS whose argmax of z - τ ``log_prior`` has the highest
    macro-F1 among those that beat the argmax's in at least SHIFT_EVIDENCE of the bootstrap
    resamples of the texts (:func:`rnnkit.tasks.metrics.bootstrap_wins`)."""
    gold, own = y.tolist(), z.argmax(1)
    tau, best, f1 = 0.0, own, macro_f1(gold, own.tolist(), labels=set(gold))
    for t in PRIOR_SHIFTS:
        shifted = (z - t * log_prior).argmax(1)
        score = macro_f1(gold, shifted.tolist(), labels=set(gold))
        if score > f1 and bootstrap_wins(y, own, shifted, z.shape[1]) >= SHIFT_EVIDENCE:
            tau, best, f1 = t, shifted, score
    return tau, best


def log_prior(y, K):
    """(K,) the log of each class's share of labels ``y`` (N,) (a class without any: one
    example's share, so that its shift stays finite)."""
    counts = torch.bincount(y, minlength=K).float()
    return (counts.clamp_min(1) / counts.sum()).log()


def shifted_bias(state, delta):
    """A classifier's state dict with ``delta`` (K,) added to its output bias, and to the moving
    average's where it keeps one (what validation and prediction read): logits + delta."""
    state = dict(state)
    for key in ("head.bias", "average.head_bias"):
        if key in state:
            state[key] = state[key] + delta.to(state[key].dtype)
    return state


def balanced_weights(y, K):
    """(K,) class weights N / (K n_k) of labels ``y`` (N,): each class weighs as much in the
    loss in all (scikit-learn's "balanced"); a class without examples weighs 1 (it is never
    learnt, and a validation part of only such examples still has a loss)."""
    counts = torch.bincount(y, minlength=K).double()
    return torch.where(counts > 0, len(y) / (K * counts.clamp_min(1)), 1.0).float()
