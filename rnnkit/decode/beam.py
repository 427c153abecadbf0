"""Beam search (Sutskever et al. 2014; length normalisation as in Wu et al. 2016, without the +5)
for any model exposing ``init_state(batch)`` and ``step(x_t, state) -> (logits, state)``.

The K live hypotheses of one sequence are the K rows of a batch. After each step the state is
cut down to the surviving rows with ``model.reorder_state(state, index)`` when the model has one
(seq2seq, whose state is a dict), else with ``index_select`` on dim 1 of each tensor: the
``(L, B, H)`` layout of torch.nn / rnnkit recurrent states (the language models).

A hypothesis y_1..y_n scores  log p(y_1..y_n) / n^alpha  (alpha = ``length_penalty``; n counts the
end token). Search stops when no live hypothesis can still beat the K-th finished one: a live
prefix with log-probability lp < 0 can at best reach lp / max_len^alpha, so the stop is exact.
Shapes: K beam, V vocabulary.
"""
import torch

from rnnkit.decode.sampling import prime


def reorder(model, state, index):
    """The state's rows ``index`` (K,), through the model's own hook if it has one."""
    if hasattr(model, "reorder_state"):
        return model.reorder_state(state, index)
    if isinstance(state, tuple):
        return tuple(s.index_select(1, index) for s in state)
    return state.index_select(1, index)


def _normalised(logp, n, alpha):
    return logp / (n ** alpha) if alpha else logp


@torch.no_grad()
def beam_search(model, prime_ids, beam_size=5, max_len=100, eos_id=None, length_penalty=1.0,
                state=None, n_best=1):
    """The ``n_best`` best continuations of ``prime_ids`` (1-D ids, at least one; for seq2seq the
    BOS id with ``state=model.encode(...)``), as a list of (ids, score), best first. ids exclude
    the end token. Hypotheses that reach ``max_len`` tokens without the end token are kept as
    they are (with no ``eos_id``, every hypothesis runs to ``max_len``)."""
    if beam_size < 1 or max_len < 1:
        raise ValueError(f"beam_size and max_len must be >= 1, got {beam_size}, {max_len}")
    was_training = model.training
    model.eval()
    try:
        logits, state = prime(model, torch.as_tensor(prime_ids, dtype=torch.long)[None], state)
        device = logits.device
        seqs = [[]]                                                               # K prefixes
        scores = torch.zeros(1, device=device)                                    # (K,) log p
        finished = []                                                             # (score, ids)
        for n in range(1, max_len + 1):
            logp = scores[:, None] + torch.log_softmax(logits.float(), -1)        # (K, V)
            V = logp.shape[1]
            top, flat = logp.flatten().topk(min(2 * beam_size, logp.numel()))     # best 2K
            keep = []
            for lp, i in zip(top.tolist(), flat.tolist()):
                row, tok = divmod(i, V)
                if tok == eos_id or n == max_len:
                    ids = seqs[row] + ([] if tok == eos_id else [tok])
                    finished.append((_normalised(lp, n, length_penalty), ids))
                elif len(keep) < beam_size:
                    keep.append((row, tok, lp))
            finished.sort(key=lambda f: -f[0])
            finished = finished[:max(beam_size, n_best)]
            if not keep or _done(finished, keep, beam_size, max_len, length_penalty):
                break
            seqs = [seqs[row] + [tok] for row, tok, _ in keep]
            rows, toks = torch.tensor([[k[0] for k in keep], [k[1] for k in keep]],
                                      device=device)                              # (K,) each
            scores = torch.tensor([k[2] for k in keep], device=device)
            logits, state = model.step(toks, reorder(model, state, rows))         # (K, V)
        return [(ids, s) for s, ids in finished[:n_best]]
    finally:
        model.train(was_training)


def _done(finished, keep, beam_size, max_len, alpha):
    """True when the K-th best finished score beats every live prefix's best reachable score."""
    if len(finished) < beam_size:
        return False
    best_live = max(lp for _, _, lp in keep)
    return finished[beam_size - 1][0] >= _normalised(best_live, max_len, alpha)
