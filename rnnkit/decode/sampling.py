"""Greedy, temperature, top-k and nucleus (top-p; Holtzman et al. 2020) sampling, model-agnostic.

Works on any model with ``init_state(batch) -> state`` and ``step(x_t, state) -> (logits, state)``
where x_t is (B,) token ids and logits (B, V). The state is opaque here: a tensor, a tuple, or
anything the model likes (an encoder's memory for seq2seq). Shapes: B batch, V vocabulary.
"""
import numbers
import operator

import torch

from rnnkit.config import MAX_SEED


def filter_logits(logits, top_k=None, top_p=None):
    """Mask with -inf all but the k most likely tokens and/or the smallest set of tokens whose
    probability reaches p. logits (B, V) -> (B, V)."""
    if top_k is not None and top_k > 0 and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]               # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0 < top_p < 1:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)   # (B, V)
        cum = sorted_logits.softmax(-1).cumsum(-1)                           # (B, V)
        drop = cum - sorted_logits.softmax(-1) >= top_p    # mass before this token already ≥ p
        drop = drop.scatter(-1, order, drop)                                 # back to vocab order
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def pick(logits, temperature=1.0, top_k=None, top_p=None, generator=None, u=None):
    """Next token ids (B,) from logits (B, V): argmax at temperature 0, else a draw from
    softmax(logits / temperature) restricted by top-k / top-p.

    The draw inverts the distribution's cumulative sum (taken in float64) at u · its total,
    u (B,) uniform in [0, 1) (drawn from ``generator`` where not given): the first token whose
    cumulative probability exceeds it. The compiled sampling loop
    (:func:`rnnkit.layers.fast_lm.lm_sample`) draws the same way, so one seed gives one text
    with or without it."""
    check_options(temperature, top_k, top_p)
    return _draw(logits, greedy_below(temperature), top_k, top_p, generator, u)


TINY = 1e-30   # a temperature below it is 0: logits / it overflow float32 (inf, NaN softmax)


HUGE = 1e30   # a temperature above it is it: logits / a float32 inf are all 0, so top-k and
# top-p kept every token, where at 1e30 they still rank them (the draw is uniform either way)


def greedy_below(temperature):
    """``temperature``, or 0 (the most likely token) where it is below :data:`TINY`, the limit
    its exact draw tends to and the only one float32 can compute; at most :data:`HUGE`."""
    return 0.0 if float(temperature) < TINY else min(temperature, HUGE)


def _draw(logits, temperature, top_k, top_p, generator, u):
    """:func:`pick` of options already checked (sampling's per-token loop checks them once)."""
    if temperature == 0:
        return logits.argmax(-1)                                             # (B,)
    probs = filter_logits(logits / temperature, top_k, top_p).softmax(-1)   # (B, V)
    if u is None:
        u = torch.rand(logits.shape[0], generator=generator, dtype=torch.float64,
                       device=logits.device)                                 # (B,)
    cdf = probs.double().cumsum(-1)                                          # (B, V)
    ids = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True)     # (B, 1)
    return ids[:, 0].clamp_(max=logits.shape[-1] - 1)                        # (B,)


def token_ids(ids, name):
    """``ids`` as a long tensor; TypeError for ids that are not integers (1.5 was searched from
    token 1). An empty list passes, as long, for the model to refuse."""
    ids = torch.as_tensor(ids)
    if ids.numel() and (ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool):
        raise TypeError(f"{name} must be integer token ids, got {ids.dtype}")
    return ids.long()


@torch.no_grad()
def prime(model, ids, state=None):
    """Feed the prime ids (B, P) through ``step``; returns (logits of the last step (B, V), state)."""
    ids = token_ids(ids, "prime_ids").to(_device(model))
    if ids.dim() == 1:
        ids = ids[None]                                                      # (1, P)
    if ids.shape[1] == 0:
        raise ValueError("prime must hold at least one token")
    state = model.init_state(ids.shape[0]) if state is None else state
    for t in range(ids.shape[1]):
        logits, state = model.step(ids[:, t], state)                         # (B, V)
    return logits, state


CHUNK = 64    # tokens per draw of uniforms (and per call of a model's compiled loop)


def count(v):
    """``v`` as an int where it is an integer (Python's, numpy's, a 0-d integer tensor), else
    None (a bool, a float, anything else)."""
    if isinstance(v, bool):
        return None
    try:
        return operator.index(v)
    except TypeError:
        return None


def check_options(temperature, top_k, top_p):
    """ValueError, saying what was expected, for a temperature that is not a finite number >= 0,
    a top_k that is not a count (None or 0: off), or a top_p outside [0, 1] (None, 0 or 1: off).
    """
    def number(v):   # a Python or numpy number, or a one-element tensor; not a bool
        return (isinstance(v, numbers.Real) and not isinstance(v, bool)) or (
            isinstance(v, torch.Tensor) and v.numel() == 1 and not v.dtype == torch.bool)
    if not number(temperature) or not 0 <= float(temperature) < float("inf"):
        raise ValueError(f"temperature must be a finite number >= 0 (0: the most likely token), "
                         f"got {temperature!r}")
    if top_k is not None and (count(top_k) is None or top_k < 0):
        raise ValueError(f"top_k must be a count >= 0 (None or 0: off), got {top_k!r}")
    if top_p is not None and (not number(top_p) or not 0 <= float(top_p) <= 1):
        raise ValueError(f"top_p must be a number in [0, 1] (None, 0 or 1: off), got {top_p!r}")


def sample(model, prime_ids, length, temperature=1.0, top_k=None, top_p=None, seed=None,
           stop_id=None, state=None):
    """Yield ``length`` generated token ids (each a (B,) tensor) after the prime, one at a time,
    so a caller can stream them. ``stop_id`` ends the generation once every sequence has emitted
    it; ``state`` starts from a given state (e.g. a conditioning encoder's) instead of zeros.
    The options are checked here, before the first token (:func:`check_options`)."""
    check_options(temperature, top_k, top_p)
    if count(length) is None or length < 0:
        raise ValueError(f"length must be a count of tokens >= 0, got {length!r}")
    if seed is not None and count(seed) is None:
        raise ValueError(f"seed must be an integer (None: unseeded), got {seed!r}")
    if stop_id is not None and count(stop_id) is None:
        raise ValueError(f"stop_id must be a token id (None: no stop), got {stop_id!r}")
    seed = None if seed is None else count(seed)
    stop_id = None if stop_id is None else count(stop_id)
    return _sampled(model, prime_ids, length, greedy_below(temperature), top_k, top_p, seed,
                    stop_id, state)


def check_scores(logits, step):
    """A CheckpointError where the model's next-token scores are NaN or +inf (its weights or
    its state overflow): a draw from NaN scores wrote the same token over and over."""
    if bool((torch.isnan(logits) | torch.isposinf(logits)).any()):   # -inf: a masked token
        from rnnkit.train.checkpoint import CheckpointError
        raise CheckpointError(f"the model's next-token scores are not finite (NaN or +inf) by "
                              f"step {step} of the text: its weights or its state overflow "
                              f"there, so no text follows from them")


@torch.no_grad()
def _sampled(model, prime_ids, length, temperature, top_k, top_p, seed, stop_id, state):
    was_training = model.training
    model.eval()
    gens = None
    try:
        refresh = getattr(model, "refresh_steps", None)   # a compiled step's cached weights
        if refresh is not None:
            refresh()
        logits, state = prime(model, prime_ids, state)
        check_scores(logits, 0)
        if stop_id is not None and not 0 <= stop_id < logits.shape[-1]:
            raise ValueError(f"stop_id must be a token id in [0, {logits.shape[-1]}) (the "
                             f"model's vocabulary), got {stop_id}")
        if seed is not None:   # row b draws from seed + b: its text is the one a batch of it
            gens = [torch.Generator(device=_device(model)).manual_seed(   # alone, seeded so,
                (seed + b) % (MAX_SEED + 1)) for b in range(logits.shape[0])]   # gives
        done = None if stop_id is None else torch.zeros(logits.shape[0], dtype=torch.bool)
        left = length
        while left > 0:
            n = min(CHUNK, left)
            u = (torch.rand(n, logits.shape[0], dtype=torch.float64, device=logits.device)
                 if not gens else   # (none, or a batch of no rows)
                 torch.stack([torch.rand(n, generator=g, dtype=torch.float64,
                                         device=logits.device) for g in gens], 1))   # (n, B)
            fast = getattr(model, "sample_steps", None)
            got = fast(logits, state, u, temperature, top_k, top_p, stop_id, done) if fast else None
            if got is not None:                              # the model's compiled loop
                xs, logits, state, done = got                                # xs (n', B)
                check_scores(logits, length - left + len(xs))
                yield from xs
                if done is not None and bool(done.all()):
                    return
            else:
                for t in range(n):
                    check_scores(logits, length - left + t)
                    x = _draw(logits, temperature, top_k, top_p, None, u[t])  # (B,)
                    yield x
                    if done is not None:
                        done = done | (x == stop_id)
                        if bool(done.all()):
                            return
                    logits, state = model.step(x, state)                     # (B, V)
            left -= n
    finally:
        model.train(was_training)


def _device(model):
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")
