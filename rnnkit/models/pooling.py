"""Masked pooling of a padded sequence of RNN outputs into one vector per sequence (N-to-1).

``attention`` is additive self-attention pooling (Bahdanau et al. 2015; Yang et al. 2016):

    u_t = v^T tanh(W o_t + b),   a = softmax_t(u)  over valid steps,   s = Σ_t a_t o_t

Every pooling looks only at steps t < length, so padding never changes the result.
Shapes: B batch, T time, H features.
"""
import torch
from torch import nn


def mean_pool(out, mask):
    """out (B, T, H), mask (B, T) bool -> (B, H): the average over valid steps."""
    m = mask.unsqueeze(-1).to(out.dtype)                                      # (B, T, 1)
    return (out * m).sum(1) / m.sum(1).clamp_min(1)


def max_pool(out, mask):
    """(B, T, H) -> (B, H): the element-wise maximum over valid steps."""
    return out.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)


class AttentionPool(nn.Module):
    def __init__(self, size, attn_size=None):
        super().__init__()
        self.proj = nn.Linear(size, attn_size or size)
        self.v = nn.Linear(attn_size or size, 1, bias=False)

    def forward(self, out, mask):
        """(B, T, H), (B, T) -> pooled (B, H); the weights are kept in ``self.last_weights``."""
        u = self.v(torch.tanh(self.proj(out))).squeeze(-1)                    # (B, T)
        a = torch.softmax(u.masked_fill(~mask, float("-inf")), dim=1)         # (B, T)
        self.last_weights = a.detach()
        return torch.bmm(a.unsqueeze(1), out).squeeze(1)                      # (B, H)


def length_mask(lengths, T):
    """lengths (B,) -> mask (B, T), True at steps t < length."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]
