"""Attention over an encoder's memory: additive (Bahdanau et al. 2015) and multiplicative
(Luong et al. 2015, "dot" and "general").

Given a decoder query q (B, Q) and the encoder memory m_s (B, S, M) with a padding mask (B, S):

    additive:  e_s = v^T tanh(W_q q + W_k m_s)        (Bahdanau's score)
    dot:       e_s = q^T m_s                          (needs Q == M)
    general:   e_s = q^T W_a m_s
    a_s = softmax_s(e_s) over the unmasked positions  (B, S)
    c   = sum_s a_s m_s                               (B, M)  the context vector

The parts of the score that depend on the memory only (W_k m_s, W_a m_s) are computed once per
source by :meth:`keys`, not at every decoder step. Shapes: B batch, S source length, Q query
size, M memory size, A attention size.
"""
import torch
from torch import nn


class _Attention(nn.Module):
    def keys(self, memory):
        """What the score needs from the memory (B, S, M), computed once per source."""
        return memory

    def forward(self, query, keys, memory, mask):
        """query (B, Q) — or (B, T, Q), all decoder steps at once —, keys from :meth:`keys`,
        memory (B, S, M), mask (B, S) True where valid -> (context (B, [T,] M), weights
        (B, [T,] S))."""
        q = query if query.dim() == 3 else query[:, None]                     # (B, T, Q)
        e = self.score(q, keys).masked_fill(~mask[:, None], float("-inf"))   # (B, T, S)
        a = torch.softmax(e, dim=-1)                                         # (B, T, S)
        ctx = torch.bmm(a, memory)                                           # (B, T, M)
        return (ctx, a) if query.dim() == 3 else (ctx[:, 0], a[:, 0])


class DotAttention(_Attention):
    """Luong's dot score, e_s = q^T m_s; the query and memory sizes must agree."""

    def __init__(self, query_size, memory_size):
        super().__init__()
        if query_size != memory_size:
            raise ValueError(f"dot attention needs the decoder size ({query_size}) to equal the "
                             f"memory size ({memory_size}); use 'general' or 'additive' instead")

    def score(self, query, keys):
        return torch.bmm(query, keys.transpose(1, 2))                        # (B, T, S)


class GeneralAttention(_Attention):
    """Luong's general score, e_s = q^T W_a m_s."""

    def __init__(self, query_size, memory_size):
        super().__init__()
        self.W_a = nn.Linear(memory_size, query_size, bias=False)

    def keys(self, memory):
        return self.W_a(memory)                                              # (B, S, Q)

    def score(self, query, keys):
        return torch.bmm(query, keys.transpose(1, 2))                        # (B, T, S)


class AdditiveAttention(_Attention):
    """Bahdanau's additive score, e_s = v^T tanh(W_q q + W_k m_s)."""

    def __init__(self, query_size, memory_size, attn_size=None):
        super().__init__()
        A = attn_size or query_size
        self.W_q = nn.Linear(query_size, A, bias=False)
        self.W_k = nn.Linear(memory_size, A)
        self.v = nn.Linear(A, 1, bias=False)

    def keys(self, memory):
        return self.W_k(memory)                                              # (B, S, A)

    def score(self, query, keys):
        e = torch.tanh(self.W_q(query)[:, :, None] + keys[:, None])          # (B, T, S, A)
        return self.v(e)[..., 0]                                             # (B, T, S)


ATTENTION = {"additive": AdditiveAttention, "dot": DotAttention, "general": GeneralAttention}
