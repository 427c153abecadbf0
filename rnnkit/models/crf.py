"""Linear-chain conditional random field output layer (Lafferty et al. 2001; Lample et al. 2016).

    score(x, y) = start[y_1] + Σ_t E[t, y_t] + Σ_{t>1} A[y_{t-1}, y_t] + end[y_n]
    p(y | x) = exp(score(x, y)) / Z(x),   log Z by the forward algorithm, argmax by Viterbi

E are the per-step emission scores from the RNN, A the learned tag-transition matrix.
Shapes: B batch, T time, K tags; mask (B, T) is True at valid steps (a prefix of each row).
"""
import torch
from torch import nn


class CRF(nn.Module):
    def __init__(self, num_tags):
        super().__init__()
        self.trans = nn.Parameter(torch.zeros(num_tags, num_tags))            # (K, K) from -> to
        self.start = nn.Parameter(torch.zeros(num_tags))                      # (K,)
        self.end = nn.Parameter(torch.zeros(num_tags))                        # (K,)

    def nll(self, emissions, tags, mask):
        """Summed negative log-likelihood of the gold tags (B, T) over the batch."""
        return (self.log_partition(emissions, mask) - self.score(emissions, tags, mask)).sum()

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
    def viterbi(self, emissions, mask):
        """The best tag path of each sequence, as B lists of tag ids (each its own length)."""
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
