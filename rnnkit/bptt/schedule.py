"""Which token rows each time step reads and writes, for full and variable-length batches.

Tokens are laid out time-major as in a ``PackedSequence``: step t owns rows
``off[t] : off[t] + b[t]`` of an (N, ·) matrix, and the batch rows active at step t are the first
b[t] (sequences sorted by decreasing length). A full (T, B) batch is the case b[t] = B for all t.

The state entering step t ("prev") comes from the state buffer S (N, H) written by the previous
step, or from the initial state h0 (B, H) for rows that start there:

- forward direction: prev(t) = S[off[t-1] : off[t-1] + b[t]], and h0[:b[0]] at t = 0;
- reverse direction (time runs T-1 → 0): prev(t) = S[off[t+1] : off[t+1] + b[t+1]] followed by
  h0[b[t+1] : b[t]] for the rows whose sequence ends at t (they start the reverse pass there).
"""
import functools

import torch


class Schedule:
    def __init__(self, batch_sizes, reverse=False):
        sizes = [int(b) for b in batch_sizes]
        if any(b2 > b1 for b1, b2 in zip(sizes, sizes[1:])):
            raise ValueError(f"batch sizes must not increase over time, got {sizes}")
        self.sizes = sizes
        self.reverse = reverse
        self.T = len(sizes)
        self.B = sizes[0]
        self.N = sum(sizes)
        self.uniform = sizes[-1] == sizes[0]
        self.offsets = [0] * self.T
        for t in range(1, self.T):
            self.offsets[t] = self.offsets[t - 1] + sizes[t - 1]
        self.order = range(self.T - 1, -1, -1) if reverse else range(self.T)
        # per step: list of (source, start, count); source 0 = S, 1 = h0
        self.segments = [self._segments(t) for t in range(self.T)]
        self._index_cache = {}
        self._step_at = {o: t for t, o in enumerate(self.offsets)}

    @classmethod
    def full(cls, T, B, reverse=False):
        return FullSchedule(T, B, reverse)

    def _segments(self, t):
        b = self.sizes[t]
        if not self.reverse:
            return [(1, 0, b)] if t == 0 else [(0, self.offsets[t - 1], b)]
        b_next = self.sizes[t + 1] if t + 1 < self.T else 0
        segs = [(0, self.offsets[t + 1], b_next)] if b_next else []
        if b > b_next:
            segs.append((1, b_next, b - b_next))
        return segs

    def prev(self, t, steps, h0):
        """The state entering step t, (b[t], H): a view where it is one piece, else a copy.

        steps: the state buffer split per step (``S.split(sizes)``); h0: (B, H).
        """
        segs = self.segments[t]
        if len(segs) == 1:
            return self._piece(segs[0], steps, h0)
        return torch.cat([self._piece(seg, steps, h0) for seg in segs])

    def prev_views(self, steps, h0):
        """For every step, the tuple of views its entering states are (or None where one is
        pieced together from two places): made once, before the loop.

        steps: per state, the buffer split per step; h0: per state, (B, H).
        """
        out = []
        for t in range(self.T):
            segs = self.segments[t]
            out.append(tuple(self._piece(segs[0], st, h) for st, h in zip(steps, h0))
                       if len(segs) == 1 else None)
        return out

    def prev_grad(self, t, steps, dh0):
        """Where step t adds dL/d(prev state): the view itself, or a zero buffer to scatter."""
        segs = self.segments[t]
        if len(segs) == 1:
            return self._piece(segs[0], steps, dh0)
        return dh0.new_zeros(self.sizes[t], dh0.shape[1])

    def scatter_prev_grad(self, t, d, steps, dh0):
        """Add a buffer from ``prev_grad`` to the pieces it stands for (multi-piece steps only)."""
        segs = self.segments[t]
        if len(segs) > 1:
            row = 0
            for seg in segs:
                self._piece(seg, steps, dh0).add_(d[row:row + seg[2]])
                row += seg[2]

    def _piece(self, seg, steps, h0):
        src, a, n = seg
        if src == 1:
            return h0 if (a == 0 and n == h0.shape[0]) else h0[a:a + n]
        step = steps[self._step_at[a]]
        return step if n == step.shape[0] else step[:n]

    def prev_matrix(self, S, h0):
        """prev(t) for every step stacked into (N, H), rows aligned with the tokens."""
        if not self.reverse and self.uniform:
            return torch.cat([h0, S[: self.N - self.B]])
        if self.reverse and self.uniform:
            return torch.cat([S[self.B:], h0])
        return torch.cat([S, h0]).index_select(0, self._index("prev", S.device))

    def final(self, S):
        """Each sequence's last state (B, H): where its direction's pass over it ends."""
        if self.reverse:
            return S[: self.B].clone()
        if self.uniform:
            return S[self.N - self.B:].clone()
        return S.index_select(0, self._index("final", S.device))

    def add_final_grad(self, dS, d_final):
        if self.reverse:
            dS[: self.B] += d_final
        elif self.uniform:
            dS[self.N - self.B:] += d_final
        else:
            dS.index_add_(0, self._index("final", dS.device), d_final)

    def batch_rows(self, device):
        """(N,) the batch row of each token."""
        return self._index("rows", device)

    def _index(self, kind, device):
        key = (kind, device)
        if key not in self._index_cache:
            if kind == "final":   # row of S holding batch row b's last step (forward direction)
                idx = [0] * self.B
                for t in range(self.T):
                    b_next = self.sizes[t + 1] if t + 1 < self.T else 0
                    for b in range(b_next, self.sizes[t]):
                        idx[b] = self.offsets[t] + b
            elif kind == "rows":
                idx = [b for n in self.sizes for b in range(n)]
            else:                 # row of cat([S, h0]) holding each token's prev state
                idx = []
                for t in range(self.T):
                    for s, a, n in self.segments[t]:
                        base = a + (self.N if s == 1 else 0)
                        idx.extend(range(base, base + n))
            self._index_cache[key] = torch.tensor(idx, dtype=torch.long, device=device)
        return self._index_cache[key]


class FullSchedule(Schedule):
    """A full (T, B) batch. The per-step lists are made when first read, so a trace that only
    needs T, B and N (``torch.export`` with the sequence length as a dynamic dimension, through
    :mod:`rnnkit.bptt.ops`) never turns T into a constant."""

    def __init__(self, T, B, reverse=False):
        self.T, self.B, self.N, self.reverse, self.uniform = T, B, T * B, reverse, True
        self._index_cache = {}

    @functools.cached_property
    def sizes(self):
        return [self.B] * self.T

    @functools.cached_property
    def offsets(self):
        return [t * self.B for t in range(self.T)]

    @functools.cached_property
    def order(self):
        return range(self.T - 1, -1, -1) if self.reverse else range(self.T)

    @functools.cached_property
    def segments(self):
        return [self._segments(t) for t in range(self.T)]

    @functools.cached_property
    def _step_at(self):
        return {o: t for t, o in enumerate(self.offsets)}
