"""The tagger's linear term alone, fitted as a linear-chain CRF over its window features: the
tagger a user would write instead (a CRF over hand-made templates, fitted by L-BFGS), which
validation weighs against the trained network, as the classifier does with its bag
(:mod:`rnnkit.models.bag_fit`).

The model is the tagger's linear term and CRF layer with the recurrent part silent:

    E[t] = Σ_f U[f(t)]                  (N, K)  f over the token's window buckets (U row 0: none)
    score(x, y) = start[y_1] + Σ_t E[t, y_t] + Σ_{t>1} A[y_{t-1}, y_t] + end[y_n]

fitted by L-BFGS to the mean negative log-likelihood per token with an L2 penalty λ/2 ||U||²,
λ from LAMBDAS by the validation loss (the path stops at the first that validates worse, each
fit starting at the one before). The gradient is the CRF layer's, written out
(:func:`rnnkit.models.crf.chain_nll`: scaled forward-backward recursions, no autograd graph over
the time loop). The features are a sparse (N, F) matrix: E = X U, dU = Xᵀ dE (an embedding
bag's backward took ten times as long, timed by hand). float64 throughout. Shapes: N tokens, B
sentences, T steps, K tags, S window slots a token, F features seen in training.
"""
import torch
from torch.nn import functional as F

from rnnkit.models.bag_fit import ITERATIONS, PathClock, sparse_matrix
from rnnkit.models.crf import CRF, chain_nll

LAMBDAS = (1e-6, 1e-7, 1e-8)   # L2 penalties tried, per token, largest first (on People's
        # Daily segmentation 1e-5, 1e-6 and 1e-7 validated at 0.080, 0.053 and 0.054, each fit
        # 150 L-BFGS iterations; 1e-5 is left out, so that under a time limit the penalties
        # that validate best get its time)
BUCKET_SCORES = 400_000     # scores (padded tokens x K) of the sentences run as one batch
MAX_COST = 50_000_000       # N·K² above which the fit is skipped: an L-BFGS iteration costs about
        # N·K² (People's Daily segmentation, 25 M: 50 iterations in 80 s, one thread; its tags,
        # 954,545 tokens x 44², 1.8 G: 10 iterations in 120 s, a fit of no use in a time limit)


class Sentences:
    """A part's tokens in length-sorted batches: per batch, the flat token index (B, T) of each
    step (0 past a sentence's end), its mask and gold tags."""

    def __init__(self, lengths, tags, K):
        tokens = max(BUCKET_SCORES // max(K, 1), 1)
        starts = torch.tensor([0, *lengths]).cumsum(0)[:-1]
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        flat_tags = torch.tensor([t for s in tags for t in s], dtype=torch.long)
        self.batches, i = [], 0
        while i < len(order):
            j = i + 1
            while j < len(order) and (j - i + 1) * lengths[order[j]] <= tokens:
                j += 1
            idx = torch.tensor(order[i:j])
            lens = torch.tensor([lengths[k] for k in order[i:j]])
            pos = torch.arange(int(lens.max()))
            mask = pos[None] < lens[:, None]                                # (B, T)
            flat = torch.where(mask, starts[idx][:, None] + pos[None], 0)   # (B, T)
            self.batches.append((flat, mask, torch.where(mask, flat_tags[flat], 0)))
            i = j
        self.tokens = len(flat_tags)


def objective(E, sentences, trans, start, end):
    """(mean nll per token, dE (N, K), dtrans, dstart, dend) over all of a part's sentences."""
    total, dE = 0.0, torch.zeros_like(E)
    dtrans, dstart, dend = torch.zeros_like(trans), torch.zeros_like(start), torch.zeros_like(end)
    for flat, mask, y in sentences.batches:
        loss, g, gt, gs, ge = chain_nll(E[flat], trans, start, end, y, mask)
        total += loss
        dE.index_put_((flat[mask],), g[mask], accumulate=True)
        dtrans += gt
        dstart += gs
        dend += ge
    n = sentences.tokens
    return total / n, dE / n, dtrans / n, dstart / n, dend / n


@torch.no_grad()
def decode(E, sentences, trans, start, end):
    """(gold tag ids, Viterbi tag ids) of a part's tokens, flat, under the CRF (trans, start,
    end) with emissions E (N, K), batched as ``sentences`` holds them."""
    crf = CRF(E.shape[1]).to(E.dtype)
    for p, value in zip((crf.trans, crf.start, crf.end), (trans, start, end)):
        p.copy_(value)
    gold, pred = [], []
    for flat, mask, y in sentences.batches:
        gold += y[mask].tolist()
        pred += [t for path in crf.viterbi(E[flat], mask) for t in path]
    return gold, pred


def affordable(tokens, K):
    """Whether a fit over ``tokens`` training tokens and K tags is within MAX_COST."""
    return tokens * K * K <= MAX_COST


def fit(train, val, K, log=print, time_left=None):
    """Fit the CRF of the module docstring. ``train`` / ``val``: (features (N, S) window buckets,
    0: none, sentence lengths, per sentence its tag ids). Returns (columns (F,) the buckets seen
    in training, U (F, K), trans (K, K), start (K,), end (K,), λ, validation loss) (the caller
    asks :func:`affordable` first). ``time_left``: as :func:`rnnkit.models.bag_fit.fit`'s."""
    feats, lengths, tags = train
    clock = PathClock(time_left)
    columns = torch.unique(feats)
    columns = columns[columns > 0]

    def matrix(G):   # the (N, F) 0/1 matrix of a part's features seen in training, and its (F, N)
        rows = torch.arange(G.shape[0]).repeat_interleave(G.shape[1])
        return sparse_matrix(rows, G.reshape(-1), torch.ones(G.numel(), dtype=torch.float64),
                             G.shape[0], columns)

    X, XT = matrix(feats)                                                  # (N, F), (F, N)
    Xv = matrix(val[0])[0]
    parts, vparts = Sentences(lengths, tags, K), Sentences(val[1], val[2], K)
    dt = torch.float64
    params = [torch.zeros(len(columns), K, dtype=dt), torch.zeros(K, K, dtype=dt),
              torch.zeros(K, dtype=dt), torch.zeros(K, dtype=dt)]         # U, trans, start, end
    best = None
    for i, lam in enumerate(LAMBDAS):
        if i and clock.spent() >= clock.budget:
            log(f"linear fit: the path stops before λ {lam:g}: its share of the time limit, "
                f"{clock.budget:.0f} s, is spent")
            break
        params = [p.clone() for p in params]
        U, trans, start, end = params
        opt = torch.optim.LBFGS(params, lr=1, max_iter=ITERATIONS, history_size=10,
                                line_search_fn="strong_wolfe", tolerance_grad=1e-9)

        def closure():
            loss, dE, dtrans, dstart, dend = objective(X @ U, parts, trans, start, end)
            U.grad = XT @ dE + lam * U
            trans.grad, start.grad, end.grad = dtrans, dstart, dend
            return torch.tensor(loss + lam / 2 * float(U.pow(2).sum()), dtype=dt)
        cut = clock.iterate(opt, closure, len(LAMBDAS) - i)
        val_loss = objective(Xv @ U, vparts, trans, start, end)[0]
        log(f"linear fit: λ {lam:g}, validation loss {val_loss:.4f}"
            + (f" ({cut} L-BFGS iterations: the time limit)" if cut else ""))
        if best is None or val_loss < best[6]:
            best = (columns, U, trans, start, end, lam, val_loss)
        else:
            break
    return best


def linear_emissions(linear, feats):
    """(N, K) float64 emissions of the linear start's window term for window buckets (N, S)."""
    columns, U = linear["columns"], linear["window"]
    if not len(columns):
        return torch.zeros(feats.shape[0], U.shape[1], dtype=torch.float64)
    pos = torch.searchsorted(columns, feats).clamp(max=len(columns) - 1)
    rows = torch.where(columns[pos] == feats, pos + 1, 0)
    table = torch.cat([U.new_zeros(1, U.shape[1]), U]).double()
    return F.embedding_bag(rows, table, mode="sum", padding_idx=0)


@torch.no_grad()
def blended_state(model, linear, share):
    """``model``'s state dict with its scores mixed with the linear CRF's: emissions and
    transitions share·linear + (1 - share)·model, exactly, within the same architecture (the
    recurrent part speaks only through the head, the linear term is linear in its table)."""
    state = dict(model.state_dict())
    state["head.weight"] = (1 - share) * state["head.weight"]
    state["head.bias"] = (1 - share) * state["head.bias"]
    window = (1 - share) * state["window.weight"]
    window[linear["columns"]] += share * linear["window"].to(window.dtype)
    state["window.weight"] = window
    for name in ("trans", "start", "end"):
        key = f"crf.{name}"
        state[key] = share * linear[name].to(state[key].dtype) + (1 - share) * state[key]
    return state
