"""A layer's checks of its constructor arguments, input, lengths, initial states and reset mask:
what is expected and what came, in one line (:mod:`rnnkit.layers.errors`).

Shapes: T time, B batch, I input, H hidden, D directions, L layers.
"""
import numbers
import warnings

import numpy as np
import torch

from rnnkit.layers.errors import ArgumentError, InputError, InputTypeError


def check_features(layer, x, dims, shape=None):
    """``x`` (N, I) (a PackedSequence's data) or (T, B, I) against the layer: its dimensions,
    features, dtype and device. ``shape``: the input's as the caller gave it (x's otherwise)."""
    if x.dim() != dims:
        raise InputError(f"{type(layer).__name__}: a PackedSequence's data must be 2-D (rows, "
                         f"input_size={layer.input_size}), got shape {tuple(x.shape)}")
    if x.shape[-1] != layer.input_size:
        raise InputError(f"{type(layer).__name__}: input.size(-1) must be input_size="
                         f"{layer.input_size}, got {x.shape[-1]} (input shape "
                         f"{tuple(x.shape if shape is None else shape)})")
    w = layer.weight_ih_l0
    if not x.is_floating_point() or x.dtype != w.dtype:
        raise InputTypeError(f"{type(layer).__name__}: input dtype must match the weights' "
                             f"{w.dtype}, got {x.dtype}")
    for name, p in layer.named_parameters():
        if p.dtype != w.dtype:
            raise InputTypeError(f"{type(layer).__name__}: the parameters' dtypes differ "
                                 f"({name} is {p.dtype}, weight_ih_l0 {w.dtype}); convert "
                                 f"the layer with .to(dtype)")
    if x.device != w.device:
        raise InputError(f"{type(layer).__name__}: input is on {x.device} but the weights "
                         f"are on {w.device}")


def check_packed(layer, x, batch_sizes, sorted_idx, unsorted_idx):
    """A PackedSequence made by hand (or edited) against its data: batch sizes of at least 1
    that sum to the data's rows, indices of the first step's batch. The compiled kernels walk
    the data by the batch sizes: a sum past its rows read and wrote past its memory. Returns the
    batch sizes as a list."""
    name = type(layer).__name__
    if batch_sizes.dim() != 1 or len(batch_sizes) == 0 or batch_sizes.is_floating_point():
        raise InputError(f"{name}: a PackedSequence's batch_sizes must be a non-empty 1-D "
                         f"integer tensor, got {batch_sizes.dtype} of shape "
                         f"{tuple(batch_sizes.shape)}")
    sizes = batch_sizes.tolist()
    if min(sizes) < 1 or sum(sizes) != x.shape[0]:
        raise InputError(f"{name}: a PackedSequence's batch_sizes must be at least 1 each and "
                         f"sum to its data's {x.shape[0]} rows, got {clip_list(sizes)} (sum "
                         f"{sum(sizes)}); pack sequences with torch.nn.utils.rnn's pack_* "
                         f"functions")
    for what, idx in (("sorted_indices", sorted_idx), ("unsorted_indices", unsorted_idx)):
        if idx is not None and tuple(idx.shape) != (sizes[0],):
            raise InputError(f"{name}: a PackedSequence's {what} must hold one index per "
                             f"sequence ({sizes[0]}), got shape {tuple(idx.shape)}")
    return sizes


def clip_list(values, n=8):
    return str(values) if len(values) <= n else f"[{', '.join(map(str, values[:n]))}, ...]"


def check_weights(layer, named):
    """Each (name, tensor) the compiled kernels read, of the shape the layer (or cell) was
    built with (None passes): the kernels read a weight by the layer's sizes, so one of another
    shape (replaced by hand, or loaded around load_state_dict) was read past its end."""
    shapes = getattr(layer, "_param_shapes", None) or {}
    for name, w in named:
        want = shapes.get(name)
        if w is not None and want is not None and tuple(w.shape) != want:
            raise InputError(f"{type(layer).__name__}: {name} must have shape {want} (input_size="
                             f"{layer.input_size}, hidden_size={layer.hidden_size}), got "
                             f"{tuple(w.shape)}")


def as_tensor(layer, name, value, expected):
    """``torch.as_tensor(value)``, or InputError naming the argument where it is not one (a
    string, a dict, ragged lists, None inside a list)."""
    if isinstance(value, torch.Tensor):       # as it is (torch.as_tensor under a default
        return value                          # device, meta say, would move it there)
    try:
        return torch.as_tensor(value, device="cpu")
    except (TypeError, ValueError, RuntimeError):
        what = type(value).__name__ + (" of rows of different lengths or non-numbers"
                                       if isinstance(value, (list, tuple)) else "")
        raise InputError(f"{type(layer).__name__}: {name}= must be {expected} (a tensor, array "
                         f"or nested list), got a {what}") from None


def check_reset(layer, reset, B, T, batched):
    """The reset mask as (B, T) bool, checked against the input's batch and time."""
    reset = as_tensor(layer, "reset", reset, "a (batch, time) bool mask")
    want = (B, T) if batched else (T,)
    if tuple(reset.shape) != want:
        raise InputError(f"{type(layer).__name__}: reset must have shape {want} "
                         f"({'batch, time' if batched else 'time: the input is unbatched'}), "
                         f"got {tuple(reset.shape)}")
    if reset.dtype != torch.bool and not ((reset == 0) | (reset == 1)).all():
        odd = reset[(reset != 0) & (reset != 1)][0].item()
        raise InputError(f"{type(layer).__name__}: reset must be a bool mask (True where a "
                         f"sequence starts), got a {reset.dtype} tensor holding {odd:g}")
    return reset if batched else reset.unsqueeze(0)


def initial_states(layer, hx, B, x, batched, sorted_idx):
    """List of the cell's states, each (L·D, B, H), in the sorted batch order."""
    n, states = layer.cell.N_STATES, layer.cell.STATES
    LD, sizes = layer.num_layers * layer.num_directions, layer._state_sizes
    if hx is None:
        if layer.options.learn_init:
            return [torch.stack([getattr(layer, f"init_{k}_l{i // layer.num_directions}"
                                         + ("_reverse" if i % layer.num_directions else ""))
                                 for i in range(LD)]).unsqueeze(1).expand(LD, B, H)
                    for k, H in zip(states, sizes)]
        return [x.new_zeros(LD, B, H) for H in sizes]
    if n > 1:
        if not isinstance(hx, (tuple, list)) or len(hx) != n:
            names = ", ".join(f"{s}_0" for s in states)
            got = (f"a {type(hx).__name__} of {len(hx)}" if isinstance(hx, (tuple, list))
                   else type(hx).__name__)
            raise InputTypeError(f"{type(layer).__name__}: hx must be a tuple ({names}), "
                                 f"got {got}")
        hx = list(hx)
    else:
        if not isinstance(hx, torch.Tensor):
            raise InputTypeError(f"{type(layer).__name__}: hx must be a Tensor, got "
                                 f"{type(hx).__name__}")
        hx = [hx]
    out = []
    for k, h in enumerate(hx):
        name = f"{states[k]}_0" if n > 1 else "hx"
        want = (LD, B, sizes[k]) if batched else (LD, sizes[k])
        if not isinstance(h, torch.Tensor):
            raise InputTypeError(f"{type(layer).__name__}: {name} must be a Tensor of shape "
                                 f"{want}, got {type(h).__name__}")
        if tuple(h.shape) != want:
            raise InputError(f"{type(layer).__name__}: expected {name} of shape {want}, got "
                             f"{tuple(h.shape)}")
        if h.dtype != x.dtype:
            raise InputTypeError(f"{type(layer).__name__}: {name} dtype {h.dtype} does not "
                                 f"match input dtype {x.dtype}")
        if h.device != x.device:
            raise InputError(f"{type(layer).__name__}: {name} is on {h.device}, input on {x.device}")
        if not batched:
            h = h.unsqueeze(1)
        if sorted_idx is not None:
            h = h.index_select(1, sorted_idx)
        out.append(h)
    return out


def break_for_lengths(layer):
    """Under torch.compile, a graph break before ``lengths=`` packs the batch by the lengths'
    values; under ``fullgraph=True`` its message, not a guard on those values, is what the
    user reads."""
    if torch.compiler.is_compiling():
        torch._dynamo.graph_break(msg=(
            f"{type(layer).__name__}: lengths= packs the batch by the lengths' values, a graph "
            f"break; compile without fullgraph=True, or compile "
            f"rnnkit.export.mask_lengths(model), which runs lengths= with masks"))


def check_lengths(layer, lengths, B, T):
    """``lengths=`` as a (B,) tensor of whole numbers in [1, T]; InputError otherwise (NaN, inf
    and 2.5 included: packing read NaN as an index and cut 2.5 to 2)."""
    name = type(layer).__name__
    lengths = as_tensor(layer, "lengths", lengths, f"({B},) whole numbers")
    if lengths.dtype in (torch.uint16, torch.uint32, torch.uint64):   # numpy's unsigned: no
        lengths = lengths.to(torch.int64)                             # comparisons in torch
    if tuple(lengths.shape) != (B,):
        raise InputError(f"{name}: lengths must have shape ({B},) (one per "
                         f"sequence), got {tuple(lengths.shape)}")
    if lengths.dtype == torch.bool or lengths.is_complex():
        raise InputError(f"{name}: lengths must be whole numbers, got a "
                         f"{lengths.dtype} tensor")
    if lengths.is_meta:   # a model moved to "meta" to check its shapes
        raise InputError(f"{name}: lengths= packs the batch by the lengths' values, and a meta "
                         f"tensor has none; check shapes with a padded batch and no lengths= "
                         f"(or lengths on the CPU)")
    whole = lengths.round() == lengths if lengths.is_floating_point() else \
        torch.ones_like(lengths, dtype=torch.bool)                      # NaN is not whole
    bad = (~whole | (lengths < 1) | (lengths > T)).nonzero()
    if len(bad):
        b = int(bad[0])
        v = lengths[b].item()
        raise InputError(f"{name}: lengths must lie in [1, {T}] (the padded "
                         f"length), whole numbers, got {v:g} at batch row {b}")
    return lengths


def check_arguments(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                    bidirectional):
    """A layer's constructor arguments checked as torch.nn checks them (numpy's numbers taken
    too; bias and batch_first bools, so "False" from a config file is no switch turned on):
    (input_size, hidden_size, num_layers, dropout, bidirectional) as plain Python values;
    ArgumentError otherwise."""
    for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                    ("num_layers", num_layers)):   # numpy's integers too, as torch.nn's
        if not isinstance(v, numbers.Integral) or isinstance(v, (bool, np.bool_)) or v <= 0:
            raise ArgumentError(f"{name} must be a positive int, got {v!r}")
    input_size, hidden_size, num_layers = int(input_size), int(hidden_size), int(num_layers)
    if isinstance(dropout, (bool, np.bool_)) or not isinstance(dropout, numbers.Real) \
            or not 0 <= dropout <= 1:
        raise ArgumentError(f"dropout must be a number in [0, 1], got {dropout!r}")
    if dropout > 0 and num_layers == 1:     # torch.nn's warning, word for word
        warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                      "non-zero dropout expects num_layers greater than 1, but got "
                      f"dropout={dropout} and num_layers={num_layers}")
    for name, v in (("bias", bias), ("batch_first", batch_first)):   # torch.nn's check
        if not isinstance(v, bool):
            raise ArgumentError(f"{name} should be of type bool, got: {type(v).__name__}")
    if not (isinstance(bidirectional, bool) or bidirectional in (0, 1)) \
            or isinstance(bidirectional, str):   # torch.nn takes 0 and 1 too
        raise ArgumentError(f"bidirectional should be of type bool, got: "
                            f"{type(bidirectional).__name__} {bidirectional!r}")
    return input_size, hidden_size, num_layers, float(dropout), bool(bidirectional)
