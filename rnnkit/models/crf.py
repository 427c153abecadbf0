"""Linear-chain conditional random field output layer (Lafferty et al. 2001; Lample et al. 2016).

    score(x, y) = start[y_1] + Σ_t E[t, y_t] + Σ_{t>1} A[y_{t-1}, y_t] + end[y_n]
    p(y | x) = exp(score(x, y)) / Z(x),   log Z by the forward algorithm, argmax by Viterbi

E are the per-step emission scores from the RNN, A the learned tag-transition matrix.
Shapes: B batch, T time, K tags; mask (B, T) is True at valid steps (a prefix of each row).

The gradient of the negative log-likelihood is written out (:func:`chain_nll`), not left to
autograd over the time loop: with the scaled forward-backward recursions (in probabilities, each
step rescaled to sum 1; Rabiner 1989)

    a_t = (a_{t-1} Â) ⊙ ê_t / s_t,   ê_t = exp(E_t - max E_t),  Â = exp(A),  a_1 ∝ exp(start) ⊙ ê_1
    b_t = Â (ê_{t+1} ⊙ b_{t+1}) / s_{t+1},   b_n = exp(end)
    log Z = Σ_t (log s_t + max E_t) + log(a_n · exp(end))

the token marginals are p_t ∝ a_t ⊙ b_t and the pair marginals ξ_t(i, j) ∝ a_{t-1}(i) Â(i, j)
ê_t(j) b_t(j), so dE_t = p_t - onehot(y_t), dA = Σ_t ξ_t - (gold transitions), dstart = p_1 -
onehot(y_1), dend = p_n - onehot(y_n): two passes of (B, K) x (K, K) products per step. Autograd
through the forward algorithm's loop costs more than its arithmetic: each step's emissions
E[:, t] get a backward of their own that writes a (B, T, K) gradient, T² B K in all (a pass over
People's Daily's 1.6 M training characters: ``python benchmarks/crf_fit_speed.py``).
"""
import torch
from torch import nn
from torch.nn import functional as F


class CRF(nn.Module):
    def __init__(self, num_tags):
        super().__init__()
        self.trans = nn.Parameter(torch.zeros(num_tags, num_tags))            # (K, K) from -> to
        self.start = nn.Parameter(torch.zeros(num_tags))                      # (K,)
        self.end = nn.Parameter(torch.zeros(num_tags))                        # (K,)

    def nll(self, emissions, tags, mask):
        """Summed negative log-likelihood of the gold tags (B, T) over the batch; its gradient by
        :func:`chain_nll` (rows in any order), or without one, the forward algorithm alone."""
        params = (emissions, self.trans, self.start, self.end)
        if torch.is_grad_enabled() and any(p.requires_grad for p in params):
            return ChainNLL.apply(*params, tags, mask)
        nll = self.log_partition(emissions, mask) - self.score(emissions, tags, mask)   # (B,)
        return nll.clamp_min(0).sum()   # (>= 0: float32 rounding made a sure path's -7e-4)

    def score(self, emissions, tags, mask):
        """(B,) unnormalised score of the tag paths."""
        m = mask.to(emissions.dtype)                                          # (B, T)
        emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)              # (B, T)
        trans = self.trans[tags[:, :-1], tags[:, 1:]] * m[:, 1:]              # (B, T-1)
        last = tags.gather(1, (mask.sum(1, keepdim=True) - 1)).squeeze(1)     # (B,)
        return self.start[tags[:, 0]] + (emit * m).sum(1) + trans.sum(1) + self.end[last]

    def log_partition(self, emissions, mask):
        """(B,) log Z(x) by the forward algorithm: alpha_t = logsumexp(alpha_{t-1} + A) + E_t."""
        alpha = self.start + emissions[:, 0]                                  # (B, K)
        for t in range(1, emissions.shape[1]):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + self.trans, dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t, None], nxt, alpha)                 # (B, K)
        return torch.logsumexp(alpha + self.end, dim=1)

    @torch.no_grad()
    def marginals(self, emissions, mask):
        """(B, T, K) each token's tag probabilities p(y_t = k | x) by forward-backward (0 past a
        row's end): what the chain says of one token, where a softmax of its emissions leaves
        the transitions out."""
        n = check_mask(mask)                                                   # (B,)
        order = torch.sort(n, stable=True).indices                             # shortest first
        dt, K = torch.float64, emissions.shape[2]
        tags = torch.zeros(mask.shape, dtype=torch.long, device=mask.device)   # (B, T) any path
        _, dE, *_ = chain_nll(emissions[order].to(dt), self.trans.to(dt), self.start.to(dt),
                              self.end.to(dt), tags, mask[order])
        p = torch.empty_like(dE)
        p[order] = dE + F.one_hot(tags, K).to(dt) * mask[order, :, None]       # dE = p - onehot
        return p.to(emissions.dtype)

    @torch.no_grad()
    def viterbi(self, emissions, mask):
        """The best tag path of each sequence, as B lists of tag ids (each its own length)."""
        check_mask(mask)
        score = self.start + emissions[:, 0]                                  # (B, K)
        back = []
        for t in range(1, emissions.shape[1]):
            best, arg = (score.unsqueeze(2) + self.trans).max(1)              # (B, K) each
            back.append(arg)
            score = torch.where(mask[:, t, None], best + emissions[:, t], score)
        tag = (score + self.end).argmax(1)                                    # (B,)
        lengths = mask.sum(1).tolist()
        paths = [[int(tag[b])] for b in range(len(lengths))]
        for t in range(emissions.shape[1] - 1, 0, -1):
            for b, n in enumerate(lengths):
                if t < n:
                    paths[b].append(int(back[t - 1][b, paths[b][-1]]))
        return [p[::-1] for p in paths]


def check_mask(mask):
    """The valid lengths (B,) of a mask that is True on a non-empty prefix of each row, else
    ValueError (viterbi gave a row of no valid step a tag)."""
    n = mask.sum(1)
    if not bool((mask == (torch.arange(mask.shape[1], device=n.device) < n[:, None])).all()
                & (n > 0).all()):
        raise ValueError("CRF: mask must be True on a non-empty prefix of each row (the "
                         "valid steps), False after")
    return n


class ChainNLL(torch.autograd.Function):
    """The summed negative log-likelihood of :func:`chain_nll` with its written-out gradient, for
    rows in any order (sorted by length inside), computed in float64 and returned in the
    emissions' dtype (float32's exp underflows where a float64 score gap of 100 does not)."""

    @staticmethod
    def forward(ctx, emissions, trans, start, end, tags, mask):
        n = check_mask(mask)                                                   # (B,)
        order = torch.sort(n, stable=True).indices                             # shortest first
        dt = torch.float64
        loss, dE, dtrans, dstart, dend = chain_nll(
            emissions[order].to(dt), trans.to(dt), start.to(dt), end.to(dt), tags[order],
            mask[order])
        back = torch.empty_like(dE)
        back[order] = dE
        ctx.save_for_backward(back.to(emissions.dtype), dtrans.to(trans.dtype),
                              dstart.to(start.dtype), dend.to(end.dtype))
        return emissions.new_tensor(loss)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        dE, dtrans, dstart, dend = ctx.saved_tensors
        return dE * grad, dtrans * grad, dstart * grad, dend * grad, None, None


def chain_nll(E, trans, start, end, y, mask):
    """(summed negative log-likelihood, dE (B, T, K), dtrans (K, K), dstart (K,), dend (K,)) of
    the gold tags y (B, T) under a linear-chain CRF with emissions E (B, T, K); mask (B, T) True
    at the valid steps (a non-empty prefix of each row), rows sorted by length, shortest first
    (as :class:`rnnkit.models.crf_fit.Sentences` batches them), so each step works on the rows still going, a suffix of
    the batch. The gradients are of the summed loss."""
    B, T, K = E.shape
    m = mask.to(E.dtype)                                                   # (B, T)
    n = mask.sum(1)                                                        # (B,)
    if not bool((n[1:] >= n[:-1]).all()):
        raise ValueError("chain_nll needs the rows sorted by length, shortest first")
    first_row = torch.searchsorted(n, torch.arange(T, device=n.device), right=True).tolist()   # rows going at t
    top = E.max(2, keepdim=True).values                                    # (B, T, 1)
    e = torch.exp(E - top) * m[..., None] + (1 - m[..., None])             # (B, T, K) 1s past n
    Ahat = trans.exp()                                                     # (K, K)
    a = torch.zeros_like(E)
    s = E.new_ones(B, T)
    first = start.exp() * e[:, 0]                                          # (B, K)
    s[:, 0] = first.sum(1)
    a[:, 0] = first / s[:, 0, None]
    for t in range(1, T):
        r = first_row[t]
        nxt = (a[r:, t - 1] @ Ahat) * e[r:, t]                             # (B', K)
        s[r:, t] = nxt.sum(1)
        a[r:, t] = nxt / s[r:, t, None]
    rows = torch.arange(B, device=E.device)
    last = a[rows, n - 1]                                                  # (B, K)
    Eend = end.exp()
    log_z = (s.log() * m).sum(1) + (top[..., 0] * m).sum(1) + (last @ Eend).log()   # (B,)
    b = Eend.expand(B, T, K).clone()                                       # b_n = exp(end)
    for t in range(T - 2, -1, -1):
        r = first_row[t + 1]   # rows going on past t; for the others t is their last step
        b[r:, t] = ((e[r:, t + 1] * b[r:, t + 1]) @ Ahat.T) / s[r:, t + 1, None]   # (B', K)
    p = a * b
    p = p / (p.sum(2, keepdim=True) + (1 - m[..., None]))                  # (B, T, K) 0s past n
    Y = F.one_hot(y, K).to(E.dtype) * m[..., None]                         # (B, T, K)
    dE = (p - Y) * m[..., None]
    dtrans = torch.zeros_like(trans)
    if T > 1:   # ξ summed over the batch, one (K, B) x (B, K) product a step
        w = e[:, 1:] * b[:, 1:]                                            # (B, T-1, K)
        pre = torch.einsum("btk,kj->btj", a[:, :-1], Ahat)                 # (B, T-1, K)
        norm = (pre * w).sum(2, keepdim=True) + (1 - m[:, 1:, None])       # (B, T-1, 1)
        w = w / norm * m[:, 1:, None]
        dtrans = torch.einsum("bti,btj->ij", a[:, :-1], w) * Ahat
        gold = torch.bincount((y[:, :-1] * K + y[:, 1:])[mask[:, 1:]], minlength=K * K)
        dtrans = dtrans - gold.reshape(K, K).to(E.dtype)
    y_last = y[rows, n - 1]
    dstart = p[:, 0].sum(0) - torch.bincount(y[:, 0], minlength=K).to(E.dtype)
    dend = p[rows, n - 1].sum(0) - torch.bincount(y_last, minlength=K).to(E.dtype)
    score = ((E * Y).sum((1, 2)) + start[y[:, 0]] + end[y_last]
             + (trans[y[:, :-1], y[:, 1:]] * m[:, 1:]).sum(1))
    return float((log_z - score).sum()), dE, dtrans, dstart, dend
