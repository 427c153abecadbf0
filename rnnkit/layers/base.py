"""RNN, LSTM and GRU layers, drop-in compatible with ``torch.nn.RNN/LSTM/GRU``.

Same constructor arguments, parameter names and shapes (``weight_ih_l{k}``, ``weight_hh_l{k}``,
``bias_ih_l{k}``, ``bias_hh_l{k}``, ``..._reverse``), gate order, initialisation, inputs and
outputs, so a ``state_dict`` moves between them unchanged. The time loop and its gradient run in
rnnkit's hand-written BPTT (:mod:`rnnkit.bptt`), one autograd node per layer and direction.

Shapes: T time, B batch, I input, H hidden, D directions (2 if bidirectional), L layers.
"""
import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit.bptt.function import run
from rnnkit.bptt.schedule import Schedule
from rnnkit.cells import CELLS, LN_CELLS
from rnnkit.layers.options import LayerOptions, dropout_mask, input_half_ln, reset_keep, step_options


class Sequences(NamedTuple):
    """Every layer-direction's per-step values (``return_sequences="all"``), shaped (L·D, T, B, ·)
    ((L·D, B, T, ·) if batch_first; (L·D, N, ·) in packed order for a PackedSequence input).

    h and c are differentiable (a loss on them back-propagates through the BPTT); gates holds the
    gate activations (LSTM i, f, g, o; GRU r, z, n; RNN h) and is detached.
    """
    h: torch.Tensor
    c: torch.Tensor
    gates: torch.Tensor


class RNNBase(nn.Module):
    mode = None  # set by subclasses: key of rnnkit.cells.CELLS

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None, proj_size=0, **options):
        super().__init__()
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"dropout must be a number in [0, 1], got {dropout!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or not 0 <= proj_size < hidden_size:
            raise ValueError(f"proj_size must be an int in [0, hidden_size={hidden_size}), got {proj_size!r}")
        self.proj_size = proj_size
        P = proj_size or hidden_size            # width of h (and of each direction's output)
        D, G = (2 if bidirectional else 1), CELLS[self.mode].N_GATES
        kw = {"device": device, "dtype": dtype}
        self._flat_weights_names = []
        for layer in range(num_layers):
            for suffix in ("", "_reverse")[:D]:
                in_size = input_size if layer == 0 else P * D
                shapes = {"weight_ih": (G * hidden_size, in_size),
                          "weight_hh": (G * hidden_size, P)}
                if bias:
                    shapes.update(bias_ih=(G * hidden_size,), bias_hh=(G * hidden_size,))
                if proj_size:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                for kind, shape in shapes.items():
                    name = f"{kind}_l{layer}{suffix}"
                    setattr(self, name, nn.Parameter(torch.empty(shape, **kw)))
                    self._flat_weights_names.append(name)
        n_states = CELLS[self.mode].N_STATES
        self.options = LayerOptions.build(n_states, **options)
        if self.options.layer_norm and proj_size:
            raise ValueError("layer_norm and proj_size cannot be combined yet")
        for layer in range(num_layers):          # after torch.nn's, so its draws stay in order
            for suffix in ("", "_reverse")[:D]:
                extra = {}
                if self.options.layer_norm:
                    extra = {"ln_ih_weight": G * hidden_size, "ln_ih_bias": G * hidden_size}
                    extra.update({n: (G * hidden_size if "hh" in n else hidden_size)
                                  for n in LN_CELLS[self.mode].PARAMS})
                if self.options.learn_init:
                    extra.update({k: n for k, n in zip(("init_h", "init_c"), self.state_sizes)})
                for kind, size in extra.items():
                    setattr(self, f"{kind}_l{layer}{suffix}", nn.Parameter(torch.empty(size, **kw)))
        self.reset_parameters()

    def reset_parameters(self):
        """U(-1/√H, 1/√H) for every weight and bias, as torch.nn does; layer-norm gains 1, their
        biases 0; learned initial states 0."""
        k = 1.0 / math.sqrt(self.hidden_size)
        for name, w in self.named_parameters():
            if name in self._flat_weights_names:
                nn.init.uniform_(w, -k, k)
            elif "_weight_l" in name:
                nn.init.ones_(w)
            else:
                nn.init.zeros_(w)

    def flatten_parameters(self):
        """No-op, for drop-in compatibility: rnnkit keeps no flat weight buffer."""

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    @property
    def cell(self):
        if self.options.layer_norm:
            return LN_CELLS[self.mode]
        return CELLS["LSTM_PROJ"] if self.proj_size else CELLS[self.mode]

    @property
    def state_sizes(self):
        """Width of each state: (H,), (H, H) for LSTM, (P, H) for LSTM with proj_size P."""
        P = self.proj_size or self.hidden_size
        return (P, self.hidden_size)[:CELLS[self.mode].N_STATES]

    def _weights(self, layer, direction):
        sfx = f"l{layer}" + ("_reverse" if direction else "")
        b_ih = getattr(self, f"bias_ih_{sfx}") if self.bias else None
        b_hh = getattr(self, f"bias_hh_{sfx}") if self.bias else None
        return getattr(self, f"weight_ih_{sfx}"), getattr(self, f"weight_hh_{sfx}"), b_ih, b_hh

    @property
    def all_weights(self):
        sfx = lambda l, d: f"l{l}" + ("_reverse" if d else "")          # noqa: E731
        return [[p for p in self._weights(l, d) if p is not None]
                + ([getattr(self, f"weight_hr_{sfx(l, d)}")] if self.proj_size else [])
                for l in range(self.num_layers) for d in range(self.num_directions)]

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False), ("proj_size", 0)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s + self.options.extra_repr()

    # ---------------------------------------------------------------- forward
    def forward(self, input, hx=None, lengths=None, reset=None):
        """input: (T, B, I), (B, T, I) if batch_first, (T, I) unbatched, or a PackedSequence.

        hx: initial state(s) (L·D, B, H) (or (L·D, H) unbatched); None means zeros (or the
        learned initial state). For LSTM a tuple (h_0, c_0). Returns ``output, h_n``
        (``output, (h_n, c_n)`` for LSTM), where output is (T, B, D·H) (batch_first: (B, T, D·H))
        or a PackedSequence like the input.

        rnnkit only:

        - lengths (B,): the valid length of each padded sequence, in any order. The same as
          packing the input first; the output comes back padded with zeros and h_n holds each
          sequence's state at its own last step.
        - reset (B, T) bool: restart the state of batch row b before step t (zeros, or the
          learned initial state), so a stateful stream can begin a new sequence mid-batch.
        - with ``return_sequences="all"`` a third value :class:`Sequences` holds every layer's
          per-step states and gate activations.
        """
        if lengths is not None:
            if reset is not None:
                raise ValueError(f"{type(self).__name__}: reset= works on full-length batches; "
                                 f"it cannot be combined with lengths=")
            return self._forward_lengths(input, hx, lengths)
        packed = isinstance(input, PackedSequence)
        if packed:
            if reset is not None:
                raise ValueError(f"{type(self).__name__}: reset= needs a padded tensor input, "
                                 f"got a PackedSequence")
            x, batch_sizes, sorted_idx, unsorted_idx = input
            self._check_features(x, 2)
            sizes = batch_sizes.tolist()
            B, batched = sizes[0], True
        else:
            if not isinstance(input, torch.Tensor):
                raise TypeError(f"input must be a Tensor or PackedSequence, got {type(input).__name__}")
            if input.dim() not in (2, 3):
                raise ValueError(f"{type(self).__name__}: expected input of 2 (unbatched) or 3 "
                                 f"dimensions, got {input.dim()} (shape {tuple(input.shape)})")
            batched = input.dim() == 3
            x = input if batched else input.unsqueeze(1)
            if batched and self.batch_first:
                x = x.transpose(0, 1)
            self._check_features(x, 3)
            T, B = x.shape[:2]
            if T == 0:
                raise ValueError("input has zero time steps")
            x = x.reshape(T * B, -1)                                          # (N, I)
            sizes, sorted_idx, unsorted_idx = [B] * T, None, None
        states = self._initial_states(hx, B, x, batched, sorted_idx)
        if reset is not None:
            reset = self._check_reset(reset, B, T, batched)

        scheds = [Schedule(sizes, reverse=bool(d)) for d in range(self.num_directions)]
        finals = [[] for _ in states]   # per state kind: L·D tensors (B, H)
        seqs = []                       # per layer-direction: (per-step states, gates)
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                i = layer * self.num_directions + d
                keep = None if reset is None else reset_keep(reset, T, B, bool(d)).to(x.dtype)
                res = self._run_direction(layer, d, scheds[d], layer_in,
                                          tuple(s[i] for s in states), keep)
                outs.append(res[0])
                for k, f in enumerate(res[1]):
                    finals[k].append(f)
                if len(res) > 2:
                    seqs.append((res[0],) + tuple(res[2]) + (res[3],))
            layer_in = outs[0] if len(outs) == 1 else torch.cat(outs, 1)      # (N, D·H)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = nn.functional.dropout(layer_in, self.dropout, True)
        h_n = [torch.stack(f) for f in finals]                                # (L·D, B, H)
        if packed:
            if unsorted_idx is not None:
                h_n = [h.index_select(1, unsorted_idx) for h in h_n]
            output = PackedSequence(layer_in, batch_sizes, sorted_idx, unsorted_idx)
        else:
            output = layer_in.view(T, B, -1)
            if self.batch_first:
                output = output.transpose(0, 1)
            if not batched:
                output = output.squeeze(1)
                h_n = [h.squeeze(1) for h in h_n]
        state = tuple(h_n) if len(h_n) > 1 else h_n[0]
        if not seqs:
            return output, state
        return output, state, self._sequences(seqs, None if packed else (T, B), batched)

    def _run_direction(self, layer, d, sched, x, h0, keep):
        """One layer-direction through the BPTT node, with this layer's options applied."""
        opt = self.options
        w_ih, w_hh, b_ih, b_hh = self._weights(layer, d)
        sfx = f"l{layer}" + ("_reverse" if d else "")
        if opt.input_dropout and self.training:
            x = x * dropout_mask((sched.B, x.shape[1]), opt.input_dropout, x)[sched.batch_rows(x.device)]
        if opt.weight_dropout and self.training:
            w_hh = nn.functional.dropout(w_hh, opt.weight_dropout, True)
        params = tuple(getattr(self, f"{n}_{sfx}") for n in self.cell.PARAMS)
        if opt.layer_norm:
            x = input_half_ln(x, w_ih, b_ih, b_hh if self.cell.FOLD_HH_BIAS else None,
                              getattr(self, f"ln_ih_weight_{sfx}"), getattr(self, f"ln_ih_bias_{sfx}"))
            w_ih, b_ih = None, None
            b_hh = None if self.cell.FOLD_HH_BIAS else b_hh
        inits = ()
        if keep is not None:
            inits = tuple(getattr(self, f"init_{k}_{sfx}") if opt.learn_init else x.new_zeros(n)
                          for k, n in zip(("h", "c"), self.state_sizes))
        opts = step_options(opt, self.training, sched, sched.B, self.state_sizes, x, keep)
        return run(self.cell, sched, x, w_ih, w_hh, b_ih, b_hh, h0, tag=(self, layer, d),
                   opts=opts, inits=inits, params=params)

    def _sequences(self, seqs, TB, batched):
        """Stack per-layer-direction token tensors into (L·D, T, B, ·) (packed: (L·D, N, ·))."""
        def shape(t):
            if TB is None:
                return t
            t = t.unflatten(1, TB)                                           # (L·D, T, B, ·)
            if self.batch_first:
                t = t.transpose(1, 2)
            return t if batched else t.squeeze(2)
        parts = list(zip(*seqs))
        h, gates = torch.stack(parts[0]), torch.stack(parts[-1])
        c = torch.stack(parts[1]) if len(parts) == 3 else None
        return Sequences(shape(h), None if c is None else shape(c), shape(gates))

    def _check_reset(self, reset, B, T, batched):
        reset = torch.as_tensor(reset)
        want = (B, T) if batched else (T,)
        if tuple(reset.shape) != want:
            raise ValueError(f"{type(self).__name__}: reset must have shape {want} (batch, time), "
                             f"got {tuple(reset.shape)}")
        return reset if batched else reset.unsqueeze(0)

    def _forward_lengths(self, input, hx, lengths):
        if isinstance(input, PackedSequence) or not isinstance(input, torch.Tensor) or input.dim() != 3:
            raise ValueError(f"{type(self).__name__}: lengths= needs a padded 3-D input tensor")
        T, B = (input.shape[1], input.shape[0]) if self.batch_first else input.shape[:2]
        lengths = torch.as_tensor(lengths)
        if tuple(lengths.shape) != (B,):
            raise ValueError(f"{type(self).__name__}: lengths must have shape ({B},) (one per "
                             f"sequence), got {tuple(lengths.shape)}")
        bad = ((lengths < 1) | (lengths > T)).nonzero()
        if len(bad):
            b = int(bad[0])
            raise ValueError(f"{type(self).__name__}: lengths must lie in [1, {T}] (the padded "
                             f"length), got {int(lengths[b])} at batch row {b}")
        packed = pack_padded_sequence(input, lengths.cpu(), self.batch_first, enforce_sorted=False)
        out, state = self.forward(packed, hx)
        out, _ = pad_packed_sequence(out, self.batch_first, total_length=T)
        return out, state

    def _check_features(self, x, dims):
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: input.size(-1) must be input_size="
                             f"{self.input_size}, got {x.shape[-1]} (input shape {tuple(x.shape)})")
        w = self.weight_ih_l0
        if not x.is_floating_point() or x.dtype != w.dtype:
            raise TypeError(f"{type(self).__name__}: input dtype must match the weights' "
                            f"{w.dtype}, got {x.dtype}")
        if x.device != w.device:
            raise ValueError(f"{type(self).__name__}: input is on {x.device} but the weights "
                             f"are on {w.device}")

    def _initial_states(self, hx, B, x, batched, sorted_idx):
        """List of the cell's states, each (L·D, B, H), in the sorted batch order."""
        n = self.cell.N_STATES
        LD, sizes = self.num_layers * self.num_directions, self.state_sizes
        if hx is None:
            if self.options.learn_init:
                return [torch.stack([getattr(self, f"init_{k}_l{i // self.num_directions}"
                                             + ("_reverse" if i % self.num_directions else ""))
                                     for i in range(LD)]).unsqueeze(1).expand(LD, B, H)
                        for k, H in zip(("h", "c"), sizes)]
            return [x.new_zeros(LD, B, H) for H in sizes]
        if n > 1:
            if not isinstance(hx, (tuple, list)) or len(hx) != n:
                raise TypeError(f"{type(self).__name__}: hx must be a tuple (h_0, c_0), got "
                                f"{type(hx).__name__}")
            hx = list(hx)
        else:
            if not isinstance(hx, torch.Tensor):
                raise TypeError(f"{type(self).__name__}: hx must be a Tensor, got {type(hx).__name__}")
            hx = [hx]
        out = []
        for k, h in enumerate(hx):
            name = ("h_0", "c_0")[k] if n > 1 else "hx"
            want = (LD, B, sizes[k]) if batched else (LD, sizes[k])
            if tuple(h.shape) != want:
                raise ValueError(f"{type(self).__name__}: expected {name} of shape {want}, got "
                                 f"{tuple(h.shape)}")
            if h.dtype != x.dtype:
                raise TypeError(f"{type(self).__name__}: {name} dtype {h.dtype} does not match "
                                f"input dtype {x.dtype}")
            if h.device != x.device:
                raise ValueError(f"{type(self).__name__}: {name} is on {h.device}, input on {x.device}")
            if not batched:
                h = h.unsqueeze(1)
            if sorted_idx is not None:
                h = h.index_select(1, sorted_idx)
            out.append(h)
        return out
