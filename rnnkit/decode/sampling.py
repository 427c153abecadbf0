"""Greedy, temperature, top-k and nucleus (top-p; Holtzman et al. 2020) sampling, model-agnostic.

Works on any model with ``init_state(batch) -> state`` and ``step(x_t, state) -> (logits, state)``
where x_t is (B,) token ids and logits (B, V). The state is opaque here: a tensor, a tuple, or
anything the model likes (an encoder's memory for seq2seq). Shapes: B batch, V vocabulary.
"""
import torch


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


def pick(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    """Next token ids (B,) from logits (B, V): argmax at temperature 0, else a draw from
    softmax(logits / temperature) restricted by top-k / top-p."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(-1)                                             # (B,)
    probs = filter_logits(logits / temperature, top_k, top_p).softmax(-1)   # (B, V)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]           # (B,)


@torch.no_grad()
def prime(model, ids, state=None):
    """Feed the prime ids (B, P) through ``step``; returns (logits of the last step (B, V), state)."""
    ids = torch.as_tensor(ids, dtype=torch.long).to(_device(model))
    if ids.dim() == 1:
        ids = ids[None]                                                      # (1, P)
    if ids.shape[1] == 0:
        raise ValueError("prime must hold at least one token")
    state = model.init_state(ids.shape[0]) if state is None else state
    for t in range(ids.shape[1]):
        logits, state = model.step(ids[:, t], state)                         # (B, V)
    return logits, state


@torch.no_grad()
def sample(model, prime_ids, length, temperature=1.0, top_k=None, top_p=None, seed=None,
           stop_id=None, state=None):
    """Yield ``length`` generated token ids (each a (B,) tensor) after the prime, one at a time,
    so a caller can stream them. ``stop_id`` ends the generation once every sequence has emitted
    it; ``state`` starts from a given state (e.g. a conditioning encoder's) instead of zeros."""
    was_training = model.training
    model.eval()
    gen = None
    if seed is not None:
        gen = torch.Generator(device=_device(model)).manual_seed(seed)
    try:
        logits, state = prime(model, prime_ids, state)
        done = None
        for _ in range(length):
            x = pick(logits, temperature, top_k, top_p, gen)                 # (B,)
            yield x
            if stop_id is not None:
                done = (x == stop_id) if done is None else done | (x == stop_id)
                if bool(done.all()):
                    break
            logits, state = model.step(x, state)                             # (B, V)
    finally:
        model.train(was_training)


def _device(model):
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")
