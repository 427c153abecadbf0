"""The recurrent layer of any cell: stacking, directions, lengths, options, on rnnkit's BPTT.

The cell (:class:`rnnkit.cells.base.Cell`) declares its parameters, states and steps; the layer
makes each layer-direction's parameters as the cell declares them (``{name}_l{k}``,
``..._reverse``), runs the time loop and its gradient in rnnkit's hand-written BPTT
(:mod:`rnnkit.bptt`), one autograd node per layer and direction, and adds what is the same for
every cell. For torch's cells (RNN, LSTM, GRU: :mod:`rnnkit.layers.recurrent`) that is
``torch.nn.RNN/LSTM/GRU`` exactly: constructor arguments, parameter names and shapes, gate
order, initialisation, inputs and outputs, so a ``state_dict`` moves between them unchanged.

Shapes: T time, B batch, I input, H hidden, D directions (2 if bidirectional), L layers.
"""
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from rnnkit.bptt import telemetry
from rnnkit.bptt.cell_keys import cell_key
from rnnkit.bptt.function import run
from rnnkit.bptt.schedule import Schedule
from rnnkit.cells import CELLS
from rnnkit.cells.base import CellError
from rnnkit.cells.validate import (as_cell, check_class, check_params, check_state_sizes,
                                   init_parameter, trial, trusted)
from rnnkit.layers.errors import ArgumentError, InputError, InputTypeError, NotScriptable
from rnnkit.layers.inputs import (break_for_lengths, check_arguments, check_features, check_lengths,
                                  check_packed, check_reset, check_weights, initial_states)
from rnnkit.layers.options import LayerOptions, dropout_mask, input_half_ln, reset_keep, step_options
from rnnkit.layers.packing import Packing
from rnnkit.layers.sequences import Sequences
from rnnkit.layers.traced import autocasting, recording, traced_forward


class RNNBase(NotScriptable, nn.Module):
    """A stack of recurrent layers over a cell; subclasses choose the cell (``_make_cell``)."""
    mode = None  # torch.nn's name of the cell (a key of rnnkit.cells.CELLS); None for other cells

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None, proj_size=0, **options):
        super().__init__()
        input_size, hidden_size, num_layers, dropout, bidirectional = check_arguments(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.bidirectional = dropout, bidirectional
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or not 0 <= proj_size < hidden_size:
            raise ArgumentError(f"proj_size must be an int in [0, hidden_size={hidden_size}), got {proj_size!r}")
        if proj_size and self.mode != "LSTM":
            raise ArgumentError(f"proj_size argument is only supported for LSTM, not "
                                f"{type(self).__name__} (got proj_size={proj_size})")
        self.proj_size = proj_size
        base = as_cell(self._make_cell(), type(self).__name__)
        unknown = sorted(set(options) - set(LayerOptions.__dataclass_fields__))
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown option(s) {', '.join(unknown)}; "
                            f"rnnkit's options are {', '.join(LayerOptions.__dataclass_fields__)}")
        self.options = LayerOptions.build(base.N_STATES, **options)
        self.cell = self._variant(base)       # the cell the steps run: base, or its layer norm
        self._keep_cell_key()
        self._make_parameters(base, {"device": device, "dtype": dtype})
        self.reset_parameters()
        if not trusted(self.cell):            # a user's cell: every method once, on these weights
            trial(self.cell, {k: getattr(self, f"{k}_l0") for k in self._cell_params})
        telemetry.register_layer(self)        # a compiled backward's records name it

    def __deepcopy__(self, memo):             # also for a parametrized layer's class
        return telemetry.deep_copy(self, memo)

    def __setstate__(self, state):            # a copy (deepcopy, pickle) is a layer of its own
        super().__setstate__(state)
        telemetry.register_layer(self)
        self._keep_cell_key()

    def _keep_cell_key(self):
        """The key of a cell made here (not a user's instance, whose key is taken while tracing,
        as its attributes are then): what the traced operators name the cell by
        (:mod:`rnnkit.bptt.cell_keys`). Changing such a cell's attributes afterwards is not
        seen by a compiled graph."""
        mine = self.cell is not self.__dict__.get("_users_cell")
        self._cell_key = cell_key(self.cell) if mine else None

    def _make_cell(self):
        """The cell of this layer (a :class:`rnnkit.cells.base.Cell`); by default torch's
        cell of ``mode``."""
        return CELLS[self.mode]

    def _variant(self, base):
        """The cell the options ask for: with ``layer_norm``, the cell's normalised variant."""
        if not self.options.layer_norm:
            return base
        if self.proj_size:
            raise ValueError("layer_norm and proj_size cannot be combined yet")
        if self.hidden_size == 1 and self.mode in ("LSTM", "RNN_TANH", "RNN_RELU"):   # (c; h)
            raise ValueError("layer_norm=True with hidden_size=1: the norm of one unit is its "
                             "bias, whatever the input; give hidden_size >= 2")
        cell = base.layer_norm()
        if cell is None:
            raise CellError(f"{type(self).__name__}: layer_norm=True needs the cell's "
                            f"layer-normalised variant, and {base.name}.layer_norm() gives none")
        check_class(cell)
        return cell

    def _make_parameters(self, base, kw):
        """Each layer-direction's parameters as the cell declares them, in torch.nn's order;
        then (so that torch.nn's draws stay in order) the layer norm's gains and biases and the
        learned initial states."""
        H, D = self.hidden_size, self.num_directions
        self._flat_weights_names, self._param_kinds, self._param_shapes = [], {}, {}
        in_size = self.input_size
        for layer in range(self.num_layers):
            shapes = check_params(base, in_size, H, self.bias)
            for suffix in ("", "_reverse")[:D]:
                for kind, shape in shapes.items():
                    self._flat_weights_names.append(self._add(kind, suffix, layer, shape, "cell", kw))
            if layer == 0:
                self._cell_params = tuple(shapes)
                self._state_sizes = check_state_sizes(base, self.weight_hh_l0)
            in_size = self._state_sizes[0] * D      # the next layer reads every direction's h
        extra = {}                                  # kind -> (shape, whose initialisation)
        if self.cell is not base:                   # the input half's layer norm, the cell's own
            GH = self.cell.N_GATES * H
            extra = {"ln_ih_weight": ((GH,), "layer"), "ln_ih_bias": ((GH,), "layer")}
            extra.update((n, (s, "cell"))
                         for n, s in check_params(self.cell, 1, H, self.bias).items()
                         if n not in shapes)
        if self.options.learn_init:
            extra.update((f"init_{s}", ((n,), "layer"))
                         for s, n in zip(base.STATES, self._state_sizes))
        for layer in range(self.num_layers):
            for suffix in ("", "_reverse")[:D]:
                for kind, (shape, owner) in extra.items():
                    self._add(kind, suffix, layer, shape, owner, kw)

    def _add(self, kind, suffix, layer, shape, owner, kw):
        name = f"{kind}_l{layer}{suffix}"
        setattr(self, name, nn.Parameter(torch.empty(shape, **kw)))
        self._param_shapes[name] = tuple(shape)   # as the kernels read it
        self._param_kinds[name] = (owner, kind)
        return name

    def reset_parameters(self):
        """Every parameter as its cell initialises it (torch's cells: U(-1/√H, 1/√H) for every
        weight and bias, as torch.nn does; layer-norm gains 1, their biases 0); the input half's
        layer-norm gain 1, its bias 0; learned initial states 0."""
        with torch.no_grad():
            for name, w in self.named_parameters():
                owner, kind = self._param_kinds.get(name, (None, None))
                if owner == "cell":
                    init_parameter(self.cell, kind, w, self.hidden_size)
                elif owner == "layer":
                    (nn.init.ones_ if kind == "ln_ih_weight" else nn.init.zeros_)(w)

    def flatten_parameters(self):
        """No-op, for drop-in compatibility: rnnkit keeps no flat weight buffer."""

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    @property
    def state_sizes(self):
        """Width of each state: (H,), (H, H) for LSTM, (P, H) for LSTM with proj_size P."""
        return self._state_sizes

    def _weights(self, layer, direction):
        sfx = f"l{layer}" + ("_reverse" if direction else "")
        b_ih = getattr(self, f"bias_ih_{sfx}", None)
        b_hh = getattr(self, f"bias_hh_{sfx}", None)
        return getattr(self, f"weight_ih_{sfx}"), getattr(self, f"weight_hh_{sfx}"), b_ih, b_hh

    @property
    def all_weights(self):
        """Per layer-direction, the cell's parameters in the order it declares them."""
        sfx = lambda l, d: f"l{l}" + ("_reverse" if d else "")          # noqa: E731
        return [[getattr(self, f"{k}_{sfx(l, d)}") for k in self._cell_params]
                for l in range(self.num_layers) for d in range(self.num_directions)]

    @property
    def _all_weights(self):
        """torch.nn's list of parameter names per layer-direction (scripts loop over it, e.g. to
        set the LSTM's forget-gate bias)."""
        n = len(self._cell_params)
        names = self._flat_weights_names
        return [names[i:i + n] for i in range(0, len(names), n)]

    @property
    def _flat_weights(self):
        """torch.nn's flat list of the recurrent weights, in ``_flat_weights_names`` order."""
        return [getattr(self, name) for name in self._flat_weights_names]

    def initial_state(self, h):
        """The ``hx`` that starts the layer from h (L·D, B, H): h itself for a cell of one
        state, else (h, zeros for every other state)."""
        if self.cell.N_STATES == 1:
            return h
        return (h, *(h.new_zeros(*h.shape[:-1], n) for n in self._state_sizes[1:]))

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:                     # where torch.nn prints it
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)!r}"
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
        recorder = recording()
        if recorder:
            return traced_forward(self, input, hx, lengths, reset, recorder)
        where = (input.data if isinstance(input, PackedSequence) else input)
        if isinstance(where, torch.Tensor) and autocasting(where):
            return self._without_autocast(input, hx, lengths, reset, where.device.type)
        if lengths is not None:
            if reset is not None:
                raise InputError(f"{type(self).__name__}: reset= works on full-length batches; "
                                 f"it cannot be combined with lengths=")
            return self._forward_lengths(input, hx, lengths)
        packed = isinstance(input, PackedSequence)
        if packed:
            if reset is not None:
                raise InputError(f"{type(self).__name__}: reset= needs a padded tensor input, "
                                 f"got a PackedSequence")
            x, batch_sizes, sorted_idx, unsorted_idx = input
            check_features(self, x, 2)
            sizes = check_packed(self, x, batch_sizes, sorted_idx, unsorted_idx)
            B, batched = sizes[0], True
        else:
            if not isinstance(input, torch.Tensor):
                raise InputTypeError(f"input must be a Tensor or PackedSequence, got "
                                     f"{type(input).__name__}")
            if input.dim() not in (2, 3):
                raise InputError(f"{type(self).__name__}: expected input of 2 (unbatched) or 3 "
                                 f"dimensions, got {input.dim()} (shape {tuple(input.shape)})")
            batched = input.dim() == 3
            x = input if batched else input.unsqueeze(1)
            if batched and self.batch_first:
                x = x.transpose(0, 1)
            check_features(self, x, 3, input.shape)
            T, B = x.shape[:2]
            if T == 0:
                raise InputError(f"{type(self).__name__}: input has zero time steps (shape "
                                 f"{tuple(input.shape)})")
            if B == 0:
                raise InputError(f"{type(self).__name__}: a batch of 0 sequences (input of "
                                 f"shape {tuple(input.shape)}); give at least one")
            x = x.reshape(T * B, -1)                                          # (N, I)
            sizes, sorted_idx, unsorted_idx = None, None, None
        states = initial_states(self, hx, B, x, batched, sorted_idx)
        if reset is not None:
            reset = check_reset(self, reset, B, T, batched)

        scheds = [Schedule(sizes, reverse=bool(d)) if packed else Schedule.full(T, B, bool(d))
                  for d in range(self.num_directions)]   # full: T may stay symbolic (export)
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
            if self.batch_first and batched:   # unbatched (T, I) input has no batch axis
                output = output.transpose(0, 1)
            if not batched:
                output = output.squeeze(1)
                h_n = [h.squeeze(1) for h in h_n]
        state = tuple(h_n) if len(h_n) > 1 else h_n[0]
        if not seqs:
            return output, state
        return output, state, self._sequences(seqs, None if packed else (T, B), batched)

    def _without_autocast(self, input, hx, lengths, reset, device):
        """Under ``torch.autocast`` the layer runs in its weights' dtype (its kernels and
        hand-written backward are per dtype): inputs and states are cast to it, and so are the
        outputs (float32 for a float32 layer, where torch.nn's would be bfloat16)."""
        dtype = next(self.parameters()).dtype
        cast = lambda t: t.to(dtype) if isinstance(t, (torch.Tensor, PackedSequence)) \
            and _floating(t) else t                                           # noqa: E731
        with torch.autocast(device, enabled=False):   # ids or flags stay: refused as without
            h = tuple(map(cast, hx)) if isinstance(hx, tuple) else cast(hx)
            return self.forward(cast(input), h, lengths, reset)

    def _run_direction(self, layer, d, sched, x, h0, keep):
        """One layer-direction through the BPTT node, with this layer's options applied."""
        opt = self.options
        w_ih, w_hh, b_ih, b_hh = self._weights(layer, d)
        sfx = f"l{layer}" + ("_reverse" if d else "")
        if opt.input_dropout and self.training:
            mask = dropout_mask((sched.B, x.shape[1]), opt.input_dropout, x)    # (B, I)
            if sched.uniform:     # the rows of T steps: no index list (T, B stay symbolic)
                x = x * mask.repeat(x.shape[0] // sched.B, 1)
            else:
                x = x * mask[sched.batch_rows(x.device)]
        if opt.weight_dropout and self.training:
            w_hh = nn.functional.dropout(w_hh, opt.weight_dropout, True)
        params = tuple(getattr(self, f"{n}_{sfx}") for n in self.cell.PARAMS)
        check_weights(self, zip((f"{k}_{sfx}" for k in ("weight_ih", "weight_hh", "bias_ih",
                                                         "bias_hh", *self.cell.PARAMS)),
                                (w_ih, w_hh, b_ih, b_hh, *params)))
        if opt.layer_norm:
            x = input_half_ln(x, w_ih, b_ih, b_hh if self.cell.FOLD_HH_BIAS else None,
                              getattr(self, f"ln_ih_weight_{sfx}"), getattr(self, f"ln_ih_bias_{sfx}"))
            w_ih, b_ih = None, None
            b_hh = None if self.cell.FOLD_HH_BIAS else b_hh
        inits = ()
        if keep is not None:
            inits = tuple(getattr(self, f"init_{k}_{sfx}") if opt.learn_init else x.new_zeros(n)
                          for k, n in zip(self.cell.STATES, self._state_sizes))
        opts = step_options(opt, self.training, sched, sched.B, self._state_sizes, x, keep)
        return run(self.cell, sched, x, w_ih, w_hh, b_ih, b_hh, h0, tag=(self, layer, d),
                   opts=opts, inits=inits, params=params)

    def _sequences(self, seqs, TB, batched):
        """Stack per-layer-direction token tensors into (L·D, T, B, ·) (packed: (L·D, N, ·))."""
        def shape(t):
            if TB is None:
                return t
            t = t.unflatten(1, TB)                                           # (L·D, T, B, ·)
            if self.batch_first and batched:   # unbatched input has no batch axis to move
                t = t.transpose(1, 2)
            return t if batched else t.squeeze(2)
        parts = list(zip(*seqs))
        h, gates = torch.stack(parts[0]), torch.stack(parts[-1])
        c = torch.stack(parts[1]) if len(parts) > 2 else None      # the second state, if any
        return Sequences(shape(h), None if c is None else shape(c), shape(gates))

    def _forward_lengths(self, input, hx, lengths):
        if isinstance(input, PackedSequence) or not isinstance(input, torch.Tensor) or input.dim() != 3:
            raise InputError(f"{type(self).__name__}: lengths= needs a padded 3-D input tensor")
        T, B = (input.shape[1], input.shape[0]) if self.batch_first else input.shape[:2]
        if B == 0:
            raise InputError(f"{type(self).__name__}: a batch of 0 sequences (input of shape "
                             f"{tuple(input.shape)}); give at least one")
        if torch.compiler.is_exporting():   # packing reads the lengths' values: data-dependent
            raise InputError(f"{type(self).__name__}: lengths= packs the batch by the lengths' "
                             f"values, which torch.export cannot trace; export "
                             f"rnnkit.export.mask_lengths(model), which runs lengths= with "
                             f"masks (rnnkit export does)")
        break_for_lengths(self)   # under torch.compile: a graph break that says why
        check_features(self, input, 3)                       # before packing: the shape given
        lengths = check_lengths(self, lengths, B, T)
        packing = Packing(lengths, T, self.batch_first, input.device)
        out, state, *seqs = self.forward(packing.pack(input), hx)
        out = packing.unpack(out.data)
        if not seqs:
            return out, state
        # return_sequences="all": each layer-direction's per-step values, padded like the output

        def padded(t):
            return None if t is None else torch.stack([packing.unpack(d) for d in t])
        return out, state, Sequences(*(padded(t) for t in seqs[0]))


def _floating(t):
    """Whether a tensor (or a PackedSequence's data) holds floating-point numbers."""
    return (t.data if isinstance(t, PackedSequence) else t).is_floating_point()
