"""``lengths=`` as two gathers: padded to packed and back, one ``index_select`` each way.

torch's ``pack_padded_sequence`` / ``pad_packed_sequence`` give the same values, but the
backward of ``pad_packed_sequence`` copies the whole padded gradient once for every distinct
length in the batch (the output is written slice by slice, and autograd keeps a full-size copy
per slice): B·T·H times the number of distinct lengths. On a tagger batch of 64 sentences up to
765 characters that backward took most of a training step (``python
benchmarks/packing_speed.py``). Here the backward of each gather is one ``index_add``: O(N·H),
N the valid steps.

Packed order is torch's: time-major, within a step the sequences by decreasing length
(``torch.sort(lengths, descending=True)``, as ``pack_padded_sequence`` sorts them), so the
PackedSequence is the one torch would make, ``sorted_indices`` and ``unsorted_indices`` included.
"""
import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence


class Packing:
    """The index maps of one batch's lengths (B,) padded to T steps, on ``device``:

    - ``source`` (N,): for each packed row, its position in the flattened padded input
      ((B·T) rows if batch_first, else (T·B));
    - ``target`` (B, T) (or (T, B)): for each padded position its packed row, N at padding.
    """

    def __init__(self, lengths, T, batch_first, device):
        lengths = torch.as_tensor(lengths, device="cpu").long()   # under any default device
        cpu = {"device": "cpu"}
        B = len(lengths)
        sorted_lengths, sorted_idx = torch.sort(lengths, descending=True)
        steps = torch.arange(T, **cpu)
        self.batch_sizes = (sorted_lengths[None] > steps[:int(sorted_lengths[0]), None]).sum(1)
        self.sorted_indices = sorted_idx
        self.unsorted_indices = torch.empty_like(sorted_idx)
        self.unsorted_indices[sorted_idx] = torch.arange(B, **cpu)
        offsets = torch.zeros(T, dtype=torch.long, **cpu)
        offsets[1:len(self.batch_sizes)] = self.batch_sizes.cumsum(0)[:-1]
        self.rows = int(self.batch_sizes.sum())                              # N
        valid = steps[None] < lengths[:, None]                               # (B, T)
        packed_row = offsets[None] + self.unsorted_indices[:, None]          # (B, T)
        if batch_first:
            flat = torch.arange(B * T, **cpu).view(B, T)
        else:
            flat = torch.arange(T * B, **cpu).view(T, B).T                          # (B, T)
        source = torch.empty(self.rows, dtype=torch.long, **cpu)
        source[packed_row[valid]] = flat[valid]
        target = torch.where(valid, packed_row, self.rows)                   # (B, T)
        self.source = source.to(device)
        self.target = (target if batch_first else target.T).contiguous().to(device)
        self.device = device

    def pack(self, padded):
        """(B, T, ·) (time-major: (T, B, ·)) -> PackedSequence."""
        flat = padded.reshape(-1, *padded.shape[2:])
        data = flat.index_select(0, self.source)
        return PackedSequence(data, self.batch_sizes, self.sorted_indices.to(self.device),
                              self.unsorted_indices.to(self.device))

    def unpack(self, data):
        """Packed rows (N, ·) -> padded (B, T, ·) (time-major: (T, B, ·)), zeros at padding."""
        table = torch.cat([data, data.new_zeros(1, *data.shape[1:])])
        out = table.index_select(0, self.target.reshape(-1))
        return out.view(*self.target.shape, *data.shape[1:])


def with_lengths(rnn, x, lengths):
    """``rnn(x, lengths=lengths)`` for an rnnkit layer (or an exporter's stand-in for one); for a
    torch.nn layer, which takes no ``lengths=`` (a model after :func:`rnnkit.to_torch`), the
    same by ``pack_padded_sequence`` and ``pad_packed_sequence``: (output, final state)."""
    if not isinstance(rnn, torch.nn.RNNBase):
        return rnn(x, lengths=lengths)
    T = x.shape[1 if rnn.batch_first else 0]
    packed = pack_padded_sequence(x, torch.as_tensor(lengths).cpu(), rnn.batch_first,
                                  enforce_sorted=False)
    out, state = rnn(packed)
    return pad_packed_sequence(out, rnn.batch_first, total_length=T)[0], state


def initial_state(rnn, h):
    """``rnn.initial_state(h)`` for an rnnkit layer; for a torch.nn layer (a model after
    :func:`rnnkit.to_torch`) the same: h (L·D, B, ·), or (h, zeros (L·D, B, hidden_size)) for
    an LSTM."""
    if not isinstance(rnn, torch.nn.RNNBase):
        return rnn.initial_state(h)
    return (h, h.new_zeros(*h.shape[:-1], rnn.hidden_size)) if rnn.mode == "LSTM" else h
