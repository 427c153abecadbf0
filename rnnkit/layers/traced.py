"""Where rnnkit's autograd node cannot run: ``torch.jit.trace``, ``torch.onnx.export`` and
``torch.func``'s transforms see a layer as torch.nn's recurrent operator on the layer's own
parameters (:func:`traced_forward`); autocast is detected per device (:func:`autocasting`).
"""
import warnings

import torch


TRACE, FUNC = "torch.jit.trace or torch.onnx.export", "torch.func's transforms"
ALTERNATIVE = {TRACE: ": export the model with torch.export.export (rnnkit.export.load reads "
                      "the program back) or `rnnkit export RUN --format pt2`",
               FUNC: ": take gradients with torch.autograd.grad"}


def autocasting(t):
    """Whether autocast is on for ``t``'s device (never for devices autocast does not know,
    such as meta)."""
    try:
        return torch.is_autocast_enabled(t.device.type)
    except RuntimeError:
        return False


def recording():
    """Who is recording or transforming the forward where rnnkit's autograd node cannot go
    (:data:`TRACE` or :data:`FUNC`), or None: eager, ``torch.compile`` and ``torch.export``
    (which take rnnkit's custom operators) run it."""
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return TRACE
    if torch.compiler.is_compiling():
        return None
    return FUNC if torch._C._functorch.maybe_current_level() is not None else None


TWINS = {}


def uninitialised(cls):
    """``cls`` (torch.nn.LSTM, GRU or RNN) without its random initialisation: the stand-in whose
    weights are replaced by a layer's (a random draw is an error under ``torch.func.vmap``)."""
    if cls not in TWINS:
        TWINS[cls] = type(cls.__name__, (cls,), {"reset_parameters": lambda self: None,
                                                 "__module__": cls.__module__})
    return TWINS[cls]


def traced_forward(layer, input, hx, lengths, reset, recorder):
    """The forward as ``torch.jit.trace`` and ``torch.onnx.export`` record it, and as
    ``torch.func``'s transforms see it: torch.nn's recurrent operator on this layer's own
    parameters (rnnkit's autograd node is neither traceable nor transformable; torch's
    operator is both, and the ONNX exporters turn it into ONNX's LSTM/GRU/RNN). A layer that
    torch.nn cannot express is refused, naming what it has and what else can take it."""
    from rnnkit.export import _torch_class, unsupported
    from rnnkit.export.lengths import TorchLengths
    what = unsupported(layer, inference=not layer.training)
    if what is None and reset is not None:
        what = "reset="
    if what is not None:
        raise RuntimeError(f"{type(layer).__name__} with {what} cannot run under {recorder} "
                           f"(torch.nn has no such layer){ALTERNATIVE[recorder]}")
    cls, extra = _torch_class(layer)
    with torch.device("meta"), warnings.catch_warnings():  # no storage, no random draws
        warnings.simplefilter("ignore")                    # (the dropout notice, again)
        twin = uninitialised(cls)(layer.input_size, layer.hidden_size, layer.num_layers,
                                  bias=layer.bias, batch_first=layer.batch_first,
                                  dropout=layer.dropout, bidirectional=layer.bidirectional,
                                  **extra)
    for name in layer._flat_weights_names:  # the same tensors: traced as the layer's, and
        twin._parameters.pop(name)          # the plain ones torch.func's functional_call sets
        setattr(twin, name, getattr(layer, name))
    return TorchLengths(twin.train(layer.training))(input, hx, lengths)
