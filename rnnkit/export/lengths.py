"""``layer(x, lengths=...)`` in a form each exporter can trace.

An rnnkit layer runs variable lengths by packing (``pack_padded_sequence``): the batch sizes
per step are data, which ``torch.export`` cannot make symbolic. The adapters here stand in for
a model's rnnkit layers while it is exported, so the model's own code (``self.rnn(e,
lengths=lengths)``) traces unchanged:

- :class:`MaskedLengths` (pt2) runs rnnkit's BPTT over the full padded length and holds each
  sequence's state past its end: the zoneout form s_t = m_t s_{t-1} + (1 - m_t) s̃_t with
  m_t = 1 on padding. The forward direction's state stops at the last valid step, the reverse
  direction starts there from h0, padded outputs are zeroed: what packing gives.
- :class:`TorchLengths` (onnx) is the layer's torch.nn equivalent, packing for ``lengths=``
  (the ONNX exporter turns a packed sequence into the operators' ``sequence_lens``).
"""
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.bptt.function import run
from rnnkit.bptt.options import StepOptions
from rnnkit.bptt.schedule import Schedule


def _states(state):
    return state if isinstance(state, tuple) else (state,)


def _pack(states):
    return states if len(states) > 1 else states[0]


class MaskedLengths(nn.Module):
    """An rnnkit layer whose ``lengths=`` calls run without packing (inference programs; a
    layer without in-loop options: :func:`rnnkit.export.unsupported` with inference=True)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, input, hx=None, lengths=None):
        if lengths is None:
            return self.layer(input, hx)
        L = self.layer
        x = input.transpose(0, 1) if L.batch_first else input                # (T, B, I)
        T, B = x.shape[0], x.shape[1]
        D = L.num_directions
        pad = (torch.arange(T, device=x.device)[:, None] >= lengths.to(x.device)[None, :])
        keep = pad.to(x.dtype).reshape(T * B, 1)                             # 1 on padding
        valid = 1 - keep
        h0 = [s if s.dim() == 3 else s.unsqueeze(1)
              for s in (_states(hx) if hx is not None else
                        [x.new_zeros(L.num_layers * D, B, n) for n in L.state_sizes])]
        zone = tuple(keep.expand(T * B, n) for n in L.state_sizes)
        opts = StepOptions(zoneout=zone)
        finals = [[] for _ in h0]
        layer_in = x.reshape(T * B, -1)
        for layer in range(L.num_layers):
            outs = []
            for d in range(D):
                i = layer * D + d
                w_ih, w_hh, b_ih, b_hh = L._weights(layer, d)
                sfx = f"l{layer}" + ("_reverse" if d else "")
                params = tuple(getattr(L, f"{n}_{sfx}") for n in L.cell.PARAMS)
                out, fin = run(L.cell, Schedule.full(T, B, bool(d)), layer_in, w_ih, w_hh, b_ih,
                               b_hh, tuple(s[i] for s in h0), opts=opts, params=params)
                outs.append(out * valid)
                for k, f in enumerate(fin):
                    finals[k].append(f)
            layer_in = outs[0] if D == 1 else torch.cat(outs, 1)
        output = layer_in.view(T, B, -1)
        if L.batch_first:
            output = output.transpose(0, 1).clone(memory_format=torch.contiguous_format)
        return output, _pack(tuple(torch.stack(f) for f in finals))


class TorchLengths(nn.Module):
    """A torch.nn recurrent layer that also takes rnnkit's ``lengths=`` (by packing)."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, input, hx=None, lengths=None):
        if lengths is None:
            return self.module(input, hx)
        packed = pack_padded_sequence(input, lengths, self.module.batch_first,
                                      enforce_sorted=False)
        out, state = self.module(packed, hx)
        out, _ = pad_packed_sequence(out, self.module.batch_first, total_length=input.shape[
            1 if self.module.batch_first else 0])
        # the exporter fails on a packed output nothing reads (a model that uses only the
        # final state): make the state read it, adding an empty sum (exactly 0)
        zero = out[..., :0].sum()
        state = tuple(s + zero for s in state) if isinstance(state, tuple) else state + zero
        return out, state
