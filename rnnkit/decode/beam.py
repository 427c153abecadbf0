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

from rnnkit.decode.sampling import check_scores, prime, token_ids


def reorder(model, state, index):
    """The state's rows ``index`` (K,), through the model's own hook if it has one."""
    if hasattr(model, "reorder_state"):
        return model.reorder_state(state, index)
    if isinstance(state, tuple):
        return tuple(s.index_select(1, index) for s in state)
    return state.index_select(1, index)


def state_rows(model, state):
    """The batch rows of a decoding state whose layout is known: rnnkit's models' (a dict whose
    "rnn" is (L, B, H) or a pair of them), or the (L, B, H) tensor or pair that :func:`reorder`
    reorders for a model without a ``reorder_state`` of its own; else None."""
    if isinstance(state, dict):
        rnn = state.get("rnn")
    elif hasattr(model, "reorder_state") or state is None:
        return None
    else:
        rnn = state
    if isinstance(rnn, (tuple, list)) and rnn:
        rnn = rnn[0]
    return rnn.shape[1] if torch.is_tensor(rnn) and rnn.dim() == 3 else None


def check_n_best(n_best, beam_size):
    """A search keeps beam_size hypotheses: it cannot return more (it returned fewer, unsaid)."""
    if n_best > beam_size:
        raise ValueError(f"n_best must be at most beam_size (the hypotheses a search keeps), "
                         f"got n_best {n_best} with beam_size {beam_size}")


def _normalised(logp, n, alpha):
    return logp / (n ** alpha) if alpha else logp


@torch.no_grad()
def beam_search(model, prime_ids, beam_size=5, max_len=100, eos_id=None, length_penalty=1.0,
                state=None, n_best=1):
    """The ``n_best`` best continuations of ``prime_ids`` (1-D ids, at least one; for seq2seq the
    BOS id with ``state=model.encode(...)``), as a list of (ids, score), best first. ids exclude
    the end token. Hypotheses that reach ``max_len`` tokens without the end token are kept as
    they are (with no ``eos_id``, every hypothesis runs to ``max_len``)."""
    if beam_size < 1 or max_len < 1 or n_best < 1:
        raise ValueError(f"beam_size, max_len and n_best must be >= 1, got {beam_size}, "
                         f"{max_len}, {n_best}")
    check_n_best(n_best, beam_size)
    prime_ids = token_ids(prime_ids, "prime_ids")
    rows = state_rows(model, state)
    if rows is not None and rows != 1:
        raise ValueError(f"beam_search searches one sequence, but the state holds {rows} rows "
                         f"(a batch of sources or conditions): search each from its own state, "
                         f"or all at once with beam_search_batch")
    was_training = model.training
    model.eval()
    _refresh(model)
    try:
        logits, state = prime(model, prime_ids[None], state)
        device, dt = logits.device, score_dtype(logits)
        seqs = [None]                                                 # K prefixes (_ids)
        scores = torch.zeros(1, device=device, dtype=dt)                          # (K,) log p
        finished = []                                                       # (score, prefix)
        for n in range(1, max_len + 1):
            check_scores(logits, n - 1)
            logp = scores[:, None] + torch.log_softmax(logits.to(dt), -1)         # (K, V)
            V = logp.shape[1]
            top, flat = logp.flatten().topk(min(2 * beam_size, logp.numel()))     # best 2K
            keep = _candidates(top.tolist(), flat.tolist(), V, n, max_len, eos_id, beam_size,
                               seqs, finished, length_penalty)
            finished.sort(key=lambda f: -f[0])
            finished = finished[:max(beam_size, n_best)]
            if not keep or _done(finished, keep, beam_size, n, max_len, length_penalty):
                break
            seqs = [(seqs[row], tok) for row, tok, _ in keep]
            rows, toks = torch.tensor([[k[0] for k in keep], [k[1] for k in keep]],
                                      device=device)                              # (K,) each
            scores = torch.tensor([k[2] for k in keep], device=device, dtype=dt)
            logits, state = model.step(toks, reorder(model, state, rows))         # (K, V)
        return [(_ids(prefix), s) for s, prefix in finished[:n_best]]
    finally:
        model.train(was_training)


@torch.no_grad()
def beam_search_batch(model, bos_ids, state, beam_size=5, max_len=100, eos_id=None,
                      length_penalty=1.0, n_best=1):
    """:func:`beam_search` for N sequences at once, all K hypotheses of all of them one batch:
    ``bos_ids`` (N,) the first token of each, ``state`` the model's state for those N rows
    (e.g. ``model.encode`` of N sources; the model's ``expand_beams(state, K)`` makes K rows of
    each), ``max_len`` one limit or N. Returns N lists of (ids, score): for each sequence what
    :func:`beam_search` returns for it alone (the same search; only the batched products may
    round differently). A sequence leaves the batch when its search ends."""
    bos_ids = token_ids(bos_ids, "bos_ids")
    N, K = len(bos_ids), beam_size
    limits = [max_len] * N if isinstance(max_len, int) else list(max_len)
    if K < 1 or len(limits) != N or min(limits, default=1) < 1 or n_best < 1:
        raise ValueError(f"beam_size, max_len and n_best must be >= 1 (one max_len or one per "
                         f"sequence), got {beam_size}, {max_len}, {n_best}")
    check_n_best(n_best, K)
    if not hasattr(model, "expand_beams"):
        raise TypeError(f"{type(model).__name__} has no expand_beams(state, K): search one "
                        "sequence at a time with beam_search")
    was_training = model.training
    model.eval()
    _refresh(model)
    try:
        state = model.expand_beams(state, K)
        logits, state = model.step(bos_ids.repeat_interleave(K), state)           # (N·K, V)
        device, V, dt = logits.device, logits.shape[-1], score_dtype(logits)
        scores = torch.full((N, K), float("-inf"), device=device, dtype=dt)       # (A, K)
        scores[:, 0] = 0                                      # one live hypothesis to start
        seqs = [[None] for _ in range(N)]                     # per live sequence: K prefixes
        finished = [[] for _ in range(N)]
        active = list(range(N))                               # the sequences in the batch
        for n in range(1, max(limits) + 1):
            A = len(active)
            check_scores(logits, n - 1)
            logp = scores[:, :, None] + torch.log_softmax(logits.to(dt), -1).view(A, K, V)
            top, flat = logp.view(A, K * V).topk(min(2 * K, K * V), dim=1)        # (A, 2K)
            rows, toks, kept_scores, still, kept_seqs = [], [], [], [], []
            for a, (tops, flats) in enumerate(zip(top.tolist(), flat.tolist())):
                i = active[a]
                keep = _candidates(tops, flats, V, n, limits[i], eos_id, K, seqs[a],
                                   finished[i], length_penalty)
                finished[i].sort(key=lambda f: -f[0])
                finished[i] = finished[i][:max(K, n_best)]
                if not keep or _done(finished[i], keep, K, n, limits[i], length_penalty):
                    continue
                pad = K - len(keep)                           # dead rows: a copy, never chosen
                still.append(i)
                kept_seqs.append([(seqs[a][row], tok) for row, tok, _ in keep])
                rows += [a * K + row for row, _, _ in keep] + [a * K + keep[0][0]] * pad
                toks += [tok for _, tok, _ in keep] + [keep[0][1]] * pad
                kept_scores += [lp for _, _, lp in keep] + [float("-inf")] * pad
            if not still:
                break
            index = torch.tensor(rows, device=device)                             # (A'·K,)
            scores = torch.tensor(kept_scores, device=device, dtype=dt).view(len(still), K)
            active, seqs = still, kept_seqs
            logits, state = model.step(torch.tensor(toks, device=device),
                                       model.reorder_state(state, index))        # (A'·K, V)
        return [[(_ids(prefix), sc) for sc, prefix in f[:n_best]] for f in finished]
    finally:
        model.train(was_training)


def score_dtype(logits):
    """The dtype scores are summed in: the logits' own, float32 at least (a float64 model's
    hypotheses were scored and ranked in float32)."""
    return torch.promote_types(logits.dtype, torch.float32)


def _refresh(model):
    """A compiled step's cached weights see writes through ``.data`` since its last use, as
    sampling's do (``refresh_steps``; a model without one has nothing to refresh)."""
    refresh = getattr(model, "refresh_steps", None)
    if refresh is not None:
        refresh()


def _candidates(tops, flats, V, n, max_len, eos_id, K, seqs, finished, alpha):
    """One sequence's best 2K extensions (log p, flat index; best first) sorted into finished
    hypotheses (appended to ``finished`` as (score, prefix)) and up to K live ones, returned as
    (row, token, log p), as :func:`beam_search` does; impossible ones (log p = -inf) are
    skipped."""
    keep = []
    for lp, i in zip(tops, flats):
        if lp == float("-inf"):
            break
        row, tok = divmod(i, V)
        if tok == eos_id or n == max_len:
            prefix = seqs[row] if tok == eos_id else (seqs[row], tok)
            finished.append((_normalised(lp, n, alpha), prefix))
        elif len(keep) < K:
            keep.append((row, tok, lp))
    return keep


def _ids(prefix):
    """The token ids of a prefix: None (empty) or (its prefix, its last token). Prefixes share
    their beginnings, so a step extends each in O(1) (copied lists made a search of L tokens
    O(K·L²): 132 s for 128,000 tokens at beam 5)."""
    ids = []
    while prefix is not None:
        prefix, tok = prefix
        ids.append(tok)
    return ids[::-1]


def _done(finished, keep, beam_size, n, max_len, alpha):
    """True when the K-th best finished score beats every live prefix's best reachable score
    after step n: its log p (which only falls) over the longest length's penalty where α >= 0,
    the shortest's (n + 1 tokens) where α < 0 (a penalty that favours short hypotheses)."""
    if len(finished) < beam_size:
        return False
    best_live = max(lp for _, _, lp in keep)
    length = max_len if alpha >= 0 else n + 1
    return finished[beam_size - 1][0] >= _normalised(best_live, length, alpha)
