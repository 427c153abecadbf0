"""The classifier's bag of n-grams alone, fitted as a regularised linear model: a candidate that
validation weighs against the trained network.

The bag scores a text as a linear model does (:class:`rnnkit.models.classifier.BagOfNgrams`):

    z_bag(x) = Σ_f c_f(x) U[f]       f over the text's tokens and n-gram buckets, c_f its weight:
               (1 + log n_f) / ||1 + log n|| (bag_counts "log"), n_f / √T ("all") or 1 / √T
               ("once") for a feature seen n_f times in a text of T tokens

so it can be set to the multinomial logistic regression over exactly those features, with an L2
penalty weighted by inverse document frequency and chosen on the validation part:

    U*, b* = argmin  mean_i CE(X_i U + b, y_i) + λ/2 Σ_f ||U[f]||² / idf_f²     X (N, F): c_f
    idf_f = 1 + log((1 + N) / (1 + df_f))          df_f: the training texts that hold feature f
    λ = argmin over LAMBDAS of the validation loss of (U*, b*)

(the plain L2 fit over tf-idf features X_f·idf_f, whose weights are U[f] / idf_f: rare n-grams
may weigh more than common ones before the penalty bites. Against the unweighted penalty it
lowered the validation loss on Chinese reviews from 0.350 to 0.328, and on two sets held out
from that choice, news titles from 0.476 to 0.434 (accuracy 84.7 -> 86.7%) and news sentiment
from 0.611 to 0.606: ``python benchmarks/bag_fit_penalty.py``)

(the convex fit a user would run instead of the network: L-BFGS over the features seen in
training; every other row stays zero, as the penalty would leave it). The classify task
validates this model at step 0 and trains the network from its initial weights all the same, so
best.pt is the linear model unless a trained step validates better: on short texts in many
classes the jointly trained bag and recurrent part fit the training texts and fall behind the
linear model, on longer reviews they are ahead of it. Starting the training at the fitted
model instead was tried: the bag fits the training texts (loss 0.09 on Chinese reviews), leaves
the recurrent part nothing to learn, and validation stayed at the linear model's loss (0.352 at
step 500 against 0.323 trained from zero).

The two are also mixed: each evaluation validates the logits share·z_linear + (1 - share)·z_net
for the shares in BLENDS, and a mix that validates better than the network alone stands for that
evaluation (:func:`blended_state` writes it as one model of the same architecture, so best.pt,
prediction and export read it as any other). Two models that err differently: where the network
alone trails the linear model, a mix of the two may lead both. Shapes: N texts, F features seen
in training, K classes.
"""
import math
import warnings

import torch
from torch.nn import functional as F

from rnnkit.models.classifier import BagOfNgrams

LAMBDAS = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6)   # L2 penalties tried, per
        # text (the loss is a mean over texts), each fit starting at the one before; the path
        # stops at the first that validates worse (half decades: on Chinese news sentiment the
        # best, 3e-3, validated at 0.585 against 0.597 for 1e-2, the best of whole decades)
ITERATIONS = 150                # L-BFGS iterations per penalty
CHUNK_ITERATIONS = 10           # ... in calls of this many under a time limit (:class:`PathClock`)
TIME_SHARE = 0.5                # the share of a time limit's seconds left the fit may take
BLENDS = tuple(i / 10 for i in range(1, 10))   # shares of the linear model in the mixes of it
        # and the trained network that each evaluation validates (:func:`blended_state`)


LARGE = 50_000      # training texts from which the fit says what it starts (a minute or more)
CHUNK = 4_000_000   # feature occurrences counted at once by :func:`features` (memory bound)


def features(encoded, vocab_size, counts="all", word_slots=None):
    """[(ids, grams (T, N) or None), ...] -> (rows, columns, values) of X, one entry per distinct
    (text, feature): token t is column t, n-gram bucket g is column vocab_size + g (0s are
    padding and skipped). ``counts`` as the bag's ``bag_counts``: "all", each occurrence 1/√T;
    "once", each distinct feature 1/√T; "log", each distinct feature seen n times
    (1 + log n) / ||1 + log n|| (the text's vector of unit length). ``word_slots``: the grams'
    slots past the first word_slots are the words' characters, a block of their own under
    "log": each block is scaled to unit length apart (the text's vector of length √2, as a union
    of two tf-idf vectorisers), n counting over the whole text. Counted with tensors, a chunk of
    texts at a time: an occurrence o of feature f in text i carries (1 + log n)/n / ||block||
    ("log"), so the occurrences of (i, f) sum to its value."""
    parts, chunk, size = [], [], 0
    for i, (ids, grams) in enumerate(encoded):
        ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1)                # (T,)
        if grams is not None:
            grams = torch.as_tensor(grams, dtype=torch.long)                    # (T, N)
            if grams.dim() < 2:   # an empty text's empty list
                grams = grams.reshape(len(ids), 0)
        chunk.append((i, ids, grams))
        size += ids.numel() + (0 if grams is None else grams.numel())
        if size >= CHUNK:
            parts.append(_chunk_features(chunk, vocab_size, counts, word_slots))
            chunk, size = [], 0
    if chunk or not parts:
        parts.append(_chunk_features(chunk, vocab_size, counts, word_slots))
    rows, cols, vals = (torch.cat(p) for p in zip(*parts))
    return rows, cols, vals


def _chunk_features(chunk, vocab_size, counts, word_slots):
    """:func:`features` of some texts [(row, ids (T,), grams (T, N) or None), ...]."""
    f, r, blocks, length = [], [], [], []
    for i, ids, grams in chunk:
        fs, block = [ids], [torch.zeros(len(ids), dtype=torch.bool)]
        if grams is not None:
            g = grams + vocab_size
            if counts == "log" and word_slots is not None:   # the words' characters apart
                fs += [g[:, :word_slots].reshape(-1), g[:, word_slots:].reshape(-1)]
                block += [torch.zeros(g[:, :word_slots].numel(), dtype=torch.bool),
                          torch.ones(g[:, word_slots:].numel(), dtype=torch.bool)]
            else:
                fs.append(g.reshape(-1))
                block.append(torch.zeros(g.numel(), dtype=torch.bool))
            fs[1:] = [torch.where(x > vocab_size, x, 0) for x in fs[1:]]   # bucket 0: none
        fs = torch.cat(fs)
        f.append(fs)
        r.append(torch.full_like(fs, i))
        blocks.append(torch.cat(block))
        length.append(max(len(ids), 1))
    if not f:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), \
            torch.zeros(0, dtype=torch.float64)
    f, r, blocks = torch.cat(f), torch.cat(r), torch.cat(blocks)                 # (M,)
    keep = f > 0
    f, r, blocks = f[keep], r[keep], blocks[keep]
    first = chunk[0][0]
    length = torch.tensor(length, dtype=torch.float64)[r - first]               # (M,) T
    width = int(f.max()) + 1 if len(f) else 1
    keys, where, n = torch.unique(r * width + f, return_inverse=True, return_counts=True)
    n = n.double()[where]                                                      # (M,) n_f
    if counts == "log":
        share = (1 + n.log()) / n                                               # (M,)
        part = share * (1 + n.log())
        slot = (r - first) * 2 + blocks.long()                                  # (text, block)
        norm = torch.zeros(2 * len(chunk), dtype=torch.float64).index_add_(0, slot, part)
        value = share / norm.sqrt()[slot]
    elif counts == "once":
        value = 1 / (n * length.sqrt())
    else:
        value = 1 / length.sqrt()
    vals = torch.zeros(len(keys), dtype=torch.float64).index_add_(0, where, value)
    index = _index_dtype(width, chunk[-1][0] + 1)
    return (keys // width).to(index), (keys % width).to(index), vals


def idf(cols, columns, n):
    """(F,) 1 + log((1 + n) / (1 + df)) of each of ``columns`` (sorted), df counting the entries
    of ``cols`` that hold it (each (row, column) once, as :func:`features` gives them: the rows
    in which it occurs); n rows in all."""
    df = torch.bincount(torch.searchsorted(columns, cols), minlength=len(columns)).double()
    return 1 + torch.log((1 + n) / (1 + df))


def _index_dtype(*sizes):
    """int32 where every index below ``sizes`` fits it (half the memory of int64 for the
    entries' rows and columns; torch's sparse products take either), else int64."""
    return torch.int32 if max(sizes) < 2 ** 31 else torch.int64


def sparse_matrix(rows, cols, vals, n, columns):
    """The sparse (n, len(columns)) matrix of the entries whose column is in ``columns`` (sorted),
    renumbered 0..len-1, and its transpose; both compressed by rows (two products, no autograd
    through sparse tensors: the gradient below is written out). Entries in row-major order,
    each (row, column) once (as :func:`features` gives them), are laid out as they are, with
    int32 indices where they fit; others (repeated or out of order) are summed and sorted."""
    keep = torch.isin(cols, columns)
    if not bool(keep.all()):
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
    del keep
    index = _index_dtype(n, len(columns), len(vals) + 1)
    cols = torch.searchsorted(columns, cols).to(index)
    rows = rows.to(index)
    dr, dc = rows.diff(), cols.diff()
    ordered = bool(((dr > 0) | ((dr == 0) & (dc > 0))).all())
    del dr, dc
    with warnings.catch_warnings():   # torch calls its sparse compressed layouts beta
        warnings.simplefilter("ignore", UserWarning)
        if not ordered:
            idx = torch.stack([rows.long(), cols.long()])
            X = torch.sparse_coo_tensor(idx, vals, (n, len(columns)), check_invariants=True)
            XT = torch.sparse_coo_tensor(idx.flip(0), vals, (len(columns), n),
                                         check_invariants=True)
            return X.coalesce().to_sparse_csr(), XT.coalesce().to_sparse_csr()
        X = torch.sparse_csr_tensor(_compressed(rows, n, index), cols, vals, (n, len(columns)))
        order = torch.sort(cols, stable=True).indices    # by column, rows ascending within
        XT = torch.sparse_csr_tensor(_compressed(cols, len(columns), index), rows[order],
                                     vals[order], (len(columns), n))
        return X, XT


def _compressed(rows, n, index):
    """(n + 1,) the compressed row pointers of entries in rows ``rows`` (sorted)."""
    crow = torch.zeros(n + 1, dtype=index)
    crow[1:] = torch.bincount(rows, minlength=n).cumsum(0)
    return crow


class PathClock:
    """The penalty path's time under a run's time limit. Without one (``time_left`` None or
    inf) each penalty's L-BFGS runs its ITERATIONS in one call. With one, the whole fit (its
    features included) may take TIME_SHARE of the seconds left when it starts, the rest being
    the network's: each penalty runs in calls of CHUNK_ITERATIONS until it has ITERATIONS or
    its share of what is left of that budget (the budget left over the penalties not yet
    fitted: a path that stops early leaves more to each), and the path stops once the budget is
    spent (the first penalty always fits one call). ``time_left`` is asked between calls, so
    under torchrun every rank (asking the same agreed clock) stops alike."""

    def __init__(self, time_left, budget=None):
        self.time_left = time_left
        left = time_left() if time_left is not None else math.inf
        self.limited = math.isfinite(left)
        self.left0 = left
        if not self.limited:
            self.budget = math.inf
        else:   # ``budget``: seconds given by the caller (a share of a larger fit's budget)
            self.budget = TIME_SHARE * max(left, 0.0) if budget is None else max(budget, 0.0)

    def spent(self):
        return self.left0 - self.time_left() if self.limited else 0.0

    def iterate(self, opt, closure, penalties_left):
        """Run ``opt`` on ``closure``; returns the iterations run where the time limit cut
        them short, else 0."""
        if not self.limited:
            opt.step(closure)
            return 0
        start = self.spent()
        allowed = (self.budget - start) / penalties_left
        done = 0
        while done < ITERATIONS:
            before = opt.state[opt._params[0]].get("n_iter", 0)
            opt.param_groups[0]["max_iter"] = min(CHUNK_ITERATIONS, ITERATIONS - done)
            opt.step(closure)
            ran = opt.state[opt._params[0]].get("n_iter", 0) - before
            done += ran
            if ran < opt.param_groups[0]["max_iter"]:   # converged (or no progress): done
                return 0
            if done < ITERATIONS and self.spent() - start >= allowed:
                return done
        return 0


def fit(train, y, val, y_val, vocab_size, K, counts="all", log=print, weighted=True,
        class_weight=None, word_slots=None, time_left=None, budget=None):
    """(columns (F,), U (F, K), b (K,), λ, validation loss): the L2-regularised multinomial
    logistic regression over the bag's features of the training texts; λ from LAMBDAS by the
    loss on the validation texts, trying them from the largest down until one validates worse
    than the best so far (smaller penalties fit the training texts closer still). float64
    throughout. The gradient, for P = softmax(XU + b):
    dU = Xᵀ S(P - Y)/ΣS + λU/idf², db = Σ_i S_i(P - Y)_i / ΣS, S_i = 1 or, given
    ``class_weight`` (K,), the weight of text i's class (in the validation loss too: the means
    ``F.cross_entropy(weight=...)`` takes). ``weighted=False``: the plain penalty λ/2 ||U||²
    (for comparison). ``time_left``: a function giving the seconds left of the run's time
    limit (:class:`PathClock`: the fit takes at most TIME_SHARE of them, or ``budget``
    seconds where given)."""
    clock = PathClock(time_left, budget)
    r, c, v = features(train, vocab_size, counts, word_slots)
    columns = torch.unique(c)                                                # (F,) sorted
    weight = idf(c, columns, len(train)).pow(-2)[:, None] if weighted else 1.0    # (F, 1)
    X, XT = sparse_matrix(r, c, v, len(train), columns)                       # (N, F), (F, N)
    del r, c, v
    Xv = sparse_matrix(*features(val, vocab_size, counts, word_slots), len(val),
                       columns)[0]                                           # (N_val, F)
    Y = F.one_hot(y, K).double()                                             # (N, K)
    w = None if class_weight is None else class_weight.double()              # (K,)
    S = torch.ones(len(y), 1, dtype=torch.float64) if w is None else w[y][:, None]   # (N, 1)
    best = None
    U = torch.zeros(len(columns), K, dtype=torch.float64)
    b = torch.zeros(K, dtype=torch.float64)
    for i, lam in enumerate(LAMBDAS):
        if i and clock.spent() >= clock.budget:
            log(f"bag fit: the path stops before λ {lam:g}: its share of the time limit, "
                f"{clock.budget:.0f} s, is spent")
            break
        U, b = U.clone(), b.clone()
        opt = torch.optim.LBFGS([U, b], lr=1, max_iter=ITERATIONS, history_size=10,
                                line_search_fn="strong_wolfe", tolerance_grad=1e-9)

        def closure():
            z = X @ U + b                                                    # (N, K)
            loss = F.cross_entropy(z, y, weight=w) + lam / 2 * (weight * U.pow(2)).sum()
            G = S * (z.softmax(1) - Y) / S.sum()                             # (N, K)
            U.grad, b.grad = XT @ G + lam * weight * U, G.sum(0)
            return loss
        cut = clock.iterate(opt, closure, len(LAMBDAS) - i)
        z = Xv @ U + b
        val_loss = float(F.cross_entropy(z, y_val, weight=w))
        val_acc = float((z.argmax(1) == y_val).double().mean())
        log(f"bag fit: λ {lam:g}, validation loss {val_loss:.4f}, accuracy {val_acc:.4f}"
            + (f" ({cut} L-BFGS iterations: the time limit)" if cut else ""))
        if best is None or val_loss < best[4]:
            best = (columns, U, b, lam, val_loss)
        else:
            break
    return best


@torch.no_grad()
def start_bag(model, train, y, val, y_val, log=print, weight=None, time_left=None):
    """Make ``model`` :func:`fit`'s linear model: its bag and output bias set to it, the output
    weights of the recurrent part zero; the text for the log. The bag's token n-gram order is
    the config's ``bag_ngrams`` or, where that is 0, the one of :func:`bag_orders` whose fit
    validates best (set in the config and the bag, so the model saves and reads it). ``weight``:
    the class weights; ``time_left``: as :func:`fit`'s (the orders share one fit's budget)."""
    bag, config = model.bag, model.config
    V, K = config.vocab_size, config.num_classes
    orders = [config.bag_ngrams] if config.bag_ngrams else bag_orders(config.ngrams)
    clock = PathClock(time_left)   # under a time limit the orders share one fit's budget
    best = None
    if len(train) >= LARGE:   # minutes before the first λ's line: say what they are spent on
        each = f" for each of {len(orders)} n-gram orders" if len(orders) > 1 else ""
        log(f"bag fit: the features of {len(train):,} texts, then up to {len(LAMBDAS)} "
            f"penalties{each} (--no-linear-start leaves the linear start out)")
    for i, order in enumerate(orders):
        bag.read_order(order)
        if len(orders) > 1:
            log(f"bag fit: token {order}-grams")
        budget = (clock.budget - clock.spent()) / (len(orders) - i) if clock.limited else None
        found = fit(_slots(bag, train), y, _slots(bag, val), y_val, V, K, bag.counts, log,
                    class_weight=weight, word_slots=bag.word_slots, time_left=time_left,
                    budget=budget)
        if best is None or found[4] < best[1][4]:
            best = order, found
    order, (columns, U, b, lam, val_loss) = best
    bag.read_order(order)
    config.bag_ngrams = order     # saved with the model: prediction reads the same n-grams
    tokens, grams = columns[columns < V], columns[columns >= V] - V
    bag.tokens.weight[tokens] = U[:len(tokens)].to(bag.tokens.weight.dtype)
    if bag.grams is not None:
        bag.grams.weight[grams] = U[len(tokens):].to(bag.grams.weight.dtype)
    model.head.weight.zero_()                           # the recurrent part says nothing
    model.head.bias.copy_(b.to(model.head.bias.dtype))
    if model.average is not None:   # a moving average starts at the weights training starts at
        for a, p in zip(model.average.averages(), model.parameters(), strict=True):
            a.copy_(p)
    return (f"step 0 is the bag alone: the logistic regression of its {len(columns):,} features "
            f"(token {order}-grams, λ {lam:g}, validation loss {val_loss:.4f}); training starts "
            f"from the initial weights")


def bag_orders(ngrams):
    """The bag's token n-gram orders the linear start tries, the encoder's first: on long
    Chinese articles its 3-grams validated worse than 2-grams alone (inews 0.549 against 0.535),
    on news titles and Chinese reviews better, so validation chooses."""
    return list(range(ngrams, 1, -1)) or [ngrams]


def _slots(bag, encoded):
    """[(ids, grams), ...] with each text's grams cut to the slots ``bag`` reads."""
    if bag.cut[0] == bag.cut[1]:
        return encoded
    return [(ids, g if g is None or torch.as_tensor(g).dim() < 2 else bag.slots(torch.as_tensor(g)))
            for ids, g in encoded]


@torch.no_grad()
def linear_weights(model):
    """The linear model that :func:`start_bag` set ``model`` to, as plain tensors: the bag's token
    rows (V, K), the ids (G,) and rows (G, K) of its n-gram buckets that are not zero (those the
    training texts hold) and the output bias (K,)."""
    bag = model.bag
    out = {"tokens": bag.tokens.weight.detach().clone(), "bias": model.head.bias.detach().clone()}
    if bag.grams is not None:
        rows = bag.grams.weight.detach().abs().sum(1).nonzero().squeeze(1)
        out["gram_ids"], out["grams"] = rows, bag.grams.weight.detach()[rows].clone()
    return out


@torch.no_grad()
def linear_scorer(config, weights):
    """(x, lengths, grams) -> (B, K) logits of the linear model ``weights``
    (:func:`linear_weights`) alone: a bag of the model's ``config`` holding them, plus the bias."""
    bag = BagOfNgrams(config)
    bag.tokens.weight.copy_(weights["tokens"])
    if bag.grams is not None:
        bag.grams.weight[weights["gram_ids"]] = weights["grams"]
    bag.eval()
    return lambda x, lengths, grams=None: bag(x, lengths, grams) + weights["bias"]


@torch.no_grad()
def blended_state(model, weights, share):
    """``model``'s state dict with its logits mixed with the linear model's: logits
    share·z_linear + (1 - share)·z_model, exactly, within the same architecture:

        bag U = share·U_linear + (1 - share)·U,   head W = (1 - share)·W,
        head b = share·b_linear + (1 - share)·b

    (the recurrent part speaks only through the head, the bag is linear in U). The weights and,
    where the model keeps one, their moving average (what validation and prediction read) are
    mixed alike."""
    state = dict(model.state_dict())
    for prefix, sep in (("", "."), ("average.", "_")):
        def key(name):
            return prefix + name.replace(".", sep)
        if key("head.weight") not in state:
            continue
        state[key("head.weight")] = (1 - share) * state[key("head.weight")]
        state[key("head.bias")] = share * weights["bias"] + (1 - share) * state[key("head.bias")]
        state[key("bag.tokens.weight")] = (share * weights["tokens"]
                                           + (1 - share) * state[key("bag.tokens.weight")])
        if "gram_ids" in weights:
            grams = (1 - share) * state[key("bag.grams.weight")]
            grams[weights["gram_ids"]] += share * weights["grams"]
            state[key("bag.grams.weight")] = grams
    return state
