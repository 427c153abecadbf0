"""rnnkit's layers and trained runs in the rest of PyTorch's toolchain.

- :func:`to_torch` gives the ``torch.nn.LSTM/GRU/RNN`` a layer stands for (same state_dict,
  same outputs), or refuses naming the option torch.nn lacks.
- :func:`export_run` writes a trained run as an inference program: ``onnx`` (the layers as
  ONNX's LSTM/GRU/RNN operators, through :func:`to_torch` and ``torch.onnx.export``; run it
  with onnxruntime) or ``pt2`` (``torch.export``'s program, rnnkit's layers as the custom
  operators of :mod:`rnnkit.bptt.ops`; load it with :func:`load`, and call
  ``.module()(...)``). Both take the batch and the sequence length as dynamic dimensions.

What each kind of run becomes is in :mod:`rnnkit.export.programs` (lm, forecast, classify, tag,
seq2seq) and :mod:`rnnkit.export.tasks` (recognize, image-to-text, cond).
"""
import copy
import os

from torch import nn

from rnnkit.cells.gru import GRUMath
from rnnkit.cells.lstm import LSTMMath
from rnnkit.cells.lstm_proj import ProjectedLSTMMath
from rnnkit.cells.rnn import VanillaMath
from rnnkit.config import ConfigError
from rnnkit.layers.base import RNNBase
from rnnkit.layers.options import LayerOptions

FORMATS = ("onnx", "pt2")

# rnnkit's options that change a layer's forward in evaluation too (no torch.nn equivalent)
_ALWAYS = ("layer_norm", "zoneout", "learn_init", "return_sequences")
# options that act only in training (an inference program may ignore them)
_TRAINING = ("recurrent_dropout", "input_dropout", "weight_dropout")


class ExportError(ConfigError):
    """A layer or run that the chosen format cannot express (the message names what, and the
    alternative)."""


def _torch_class(layer):
    """(torch.nn class, extra constructor keywords) for the layer's cell, or (None, what)."""
    cell = layer.cell
    kind = type(cell)
    if kind is LSTMMath:
        return nn.LSTM, {}
    if kind is ProjectedLSTMMath:
        return nn.LSTM, {"proj_size": layer.proj_size}
    if kind is GRUMath:
        return nn.GRU, {}
    if kind is VanillaMath:
        return nn.RNN, {"nonlinearity": cell.nonlinearity}
    if getattr(layer, "reset_after", True) is False:
        return None, "reset_after=False"
    if layer.options.layer_norm:
        return None, "layer_norm=True"
    return None, f"cell {getattr(layer, 'cell_name', None) or getattr(cell, 'name', kind.__name__)}"


def unsupported(layer, inference=False):
    """What in ``layer`` torch.nn cannot express ("layer_norm=True", "cell indrnn", ...), or
    None. ``inference``: options that act in training only do not count."""
    if not isinstance(layer, RNNBase):
        return f"{type(layer).__name__} (not an rnnkit layer)"
    cls, what = _torch_class(layer)
    if cls is None:
        return what
    default = LayerOptions(zoneout=(0.0,) * len(layer.options.zoneout))
    for name in _ALWAYS + (() if inference else _TRAINING):
        value = getattr(layer.options, name)
        if value != getattr(default, name):
            return f"{name}={value!r}"
    return None


def to_torch(layer, inference=False):
    """torch.nn's equivalent of ``layer``, with its state_dict and training mode.

    - An rnnkit RNN, LSTM, GRU (or a ``Recurrent`` of those cells) gives the
      ``torch.nn.LSTM/GRU/RNN`` of the same constructor arguments.
    - An rnnkit ``RNNCell/LSTMCell/GRUCell`` gives torch.nn's cell.
    - Any other module gives a copy of it with each rnnkit layer and cell inside replaced so
      (for ``torch.jit.script``, a gradient of a gradient, or tools that look for torch.nn's
      classes by type); the module itself is left as it was.

    Raises :class:`ExportError` naming the layer and the option torch.nn lacks (layer_norm,
    zoneout, learn_init, return_sequences='all', reset_after=False, another cell; and the
    dropout options unless ``inference``: they act only in training)."""
    from rnnkit.layers.cells import _CellBase
    if isinstance(layer, _CellBase):
        return _torch_cell(layer)
    if not isinstance(layer, RNNBase) and isinstance(layer, nn.Module):
        for name, m in layer.named_modules():
            if isinstance(m, RNNBase):
                what = unsupported(m, inference)
                if what is not None:
                    raise ExportError(f"{name} is a {type(m).__name__} with {what}, which has "
                                      f"no torch.nn equivalent")
        return _replace(layer, lambda m: _own(to_torch(m, inference), m, share=True),
                        (RNNBase, _CellBase))
    what = unsupported(layer, inference)
    if what is not None:
        raise ExportError(f"{type(layer).__name__} with {what} has no torch.nn equivalent")
    cls, extra = _torch_class(layer)
    w = layer.weight_ih_l0
    out = cls(layer.input_size, layer.hidden_size, layer.num_layers, bias=layer.bias,
              batch_first=layer.batch_first, dropout=layer.dropout,
              bidirectional=layer.bidirectional, device=w.device, dtype=w.dtype, **extra)
    _parametrized_like(out, layer)
    out.load_state_dict(layer.state_dict())
    return _own(out.train(layer.training), layer)


def _parametrized_like(out, layer):
    """``out`` given ``layer``'s parametrizations (weight_norm, spectral_norm, one's own:
    copies of its modules), so that its state_dict's keys are ``layer``'s."""
    from torch.nn.utils import parametrize
    for name, chain in getattr(layer, "parametrizations", {}).items():
        for module in chain:
            parametrize.register_parametrization(out, name, copy.deepcopy(module), unsafe=True)


def _own(out, layer, share=False):
    """``out`` (torch.nn's equivalent of ``layer``) with the parameters' ``requires_grad`` of
    ``layer``'s, or with ``share`` (``layer`` is in a copy of the model) ``layer``'s Parameter
    objects themselves: parameters tied to another module, or a layer under two names, stay
    one parameter."""
    for name, p in layer.named_parameters(recurse=False):
        if share:
            setattr(out, name, p)
        else:
            getattr(out, name).requires_grad_(p.requires_grad)
    for name, chain in getattr(layer, "parametrizations", {}).items():
        if share:   # the originals and the parametrizations' own state (spectral_norm's u, v)
            out.parametrizations[name] = chain
        else:
            for kind, p in chain.named_parameters(recurse=False):
                getattr(out.parametrizations[name], kind).requires_grad_(p.requires_grad)
    if share and hasattr(out, "_init_flat_weights"):   # torch.nn's RNNs keep a list of them
        out._init_flat_weights()
    return out


def _torch_cell(cell):
    """torch.nn's RNNCell/LSTMCell/GRUCell for an rnnkit cell."""
    cls = {"LSTM": nn.LSTMCell, "GRU": nn.GRUCell}.get(cell.mode, nn.RNNCell)
    extra = {"nonlinearity": cell.nonlinearity} if cls is nn.RNNCell else {}
    w = cell.weight_ih
    out = cls(cell.input_size, cell.hidden_size, bias=cell.bias, device=w.device,
              dtype=w.dtype, **extra)
    _parametrized_like(out, cell)
    out.load_state_dict(cell.state_dict())
    return _own(out.train(cell.training), cell)


def swap_layers(model, fmt="onnx", where="model"):
    """A copy of ``model`` with every rnnkit layer replaced by its torch.nn equivalent
    (inference: training-only options dropped); ExportError naming the layer, the option and
    the other format where one has none."""
    for name, m in model.named_modules():
        if isinstance(m, RNNBase):
            what = unsupported(m, inference=True)
            if what is None and m.proj_size and fmt == "onnx":   # ONNX's LSTM has no projection
                what = f"proj_size={m.proj_size}"
            if what is not None:
                raise ExportError(f"{where}: {name or 'the model'} is a {type(m).__name__} with "
                                  f"{what}, which the {fmt} format cannot express; export it "
                                  f"with --format pt2")
    from rnnkit.export.lengths import TorchLengths
    return _replace(model, lambda layer: TorchLengths(to_torch(layer, inference=True)))


def mask_lengths(model, where="model"):
    """A copy of ``model`` whose rnnkit layers run ``lengths=`` without packing, so
    ``torch.export`` can trace a model with variable lengths (:mod:`rnnkit.export.lengths`);
    ExportError for a layer with an in-loop option (layer_norm, zoneout, ...)."""
    from rnnkit.export.lengths import MaskedLengths
    for name, m in model.named_modules():
        if isinstance(m, RNNBase):
            cls, what = _torch_class(m)
            what = unsupported(m, inference=True) if cls is not None else (
                None if m.options == LayerOptions(zoneout=(0.0,) * len(m.options.zoneout))
                else m.options.extra_repr().lstrip(", "))
            if what is not None and not what.startswith("cell") and what != "reset_after=False":
                raise ExportError(f"{where}: {name} is a {type(m).__name__} with {what}; a "
                                  f"model that reads variable lengths exports only layers "
                                  f"without in-loop options yet")
    return _replace(model, MaskedLengths)


def _replace(model, make, kinds=RNNBase):
    """A copy of ``model`` with each module of ``kinds`` in it made anew by ``make``: the model
    itself too, where it is one (a bare layer was returned as it was)."""
    model = copy.deepcopy(model)
    if isinstance(model, kinds):
        return make(model)
    made = {}   # a module under two names is made once: it stays one module
    for m in list(model.modules()):
        for child_name, child in list(m._modules.items()):   # (named_children yields a
            if isinstance(child, kinds):                        # module under two names once)
                if id(child) not in made:
                    made[id(child)] = make(child)
                setattr(m, child_name, made[id(child)])
    return model


def load(path):
    """A pt2 file written by :func:`export_run` (as ``torch.export.load`` after ``import
    rnnkit``, which registers rnnkit's operators), read with tensors only: torch reads a pt2's
    weights and sample inputs with ``weights_only=False`` (a crafted file ran its code), so
    the load runs under TORCH_FORCE_WEIGHTS_ONLY_LOAD=1, and a file holding other objects is a
    CheckpointError naming it."""
    import pickle

    import torch
    from rnnkit.bptt import ops  # noqa: F401  (registers the operators the program calls)
    from rnnkit.train.checkpoint import CheckpointError
    before = os.environ.get(FORCE)
    os.environ[FORCE] = "1"
    try:
        return torch.export.load(str(path))
    except pickle.UnpicklingError as e:
        why = next((x for x in str(e).splitlines() if "GLOBAL" in x), "").rstrip(".")
        raise CheckpointError(f"{path}: holds pickled objects other than tensors, which only "
                              f"running code from the file could rebuild; refusing to load it"
                              + (f" ({why[:120]})" if why else "")) from None
    finally:
        if before is None:
            os.environ.pop(FORCE, None)
        else:
            os.environ[FORCE] = before


FORCE = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"   # torch.load reads it at each call


def export_run(path, fmt, out):
    """Write the run at ``path`` (a folder or a checkpoint file) as an inference program in
    ``fmt`` ("onnx" or "pt2") to ``out``; returns a list of the files written with what each
    holds."""
    from rnnkit.export.writers import export_run as _export
    return _export(path, fmt, out)
