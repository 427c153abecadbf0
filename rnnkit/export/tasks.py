"""Inference programs of the recogniser (N→M, CTC) and of the two conditional generators (1→N):
image-to-text and cond (label or feature vector → text).

- ``recognize``: ``features (B, F, T), lengths (B,) -> log_probs (B, T', K+1), frames (B,)``:
  the per-frame log-probabilities log p_t(k) (class 0 the blank) and each sequence's count of
  output frames T'_b = ⌊T_b / time_stride⌋. Decoding stays on the host: greedy (the most
  probable class per frame, repeats merged, blanks dropped) or prefix beam search over these
  log-probabilities, :mod:`rnnkit.decode.ctc`. T is dynamic from 2·time_stride columns (two
  output frames): the model's reshape of its permuted conv features guards on T' != 1 (a
  size of 1 would make it a view), which pt2 traces size-obliviously to hold for every T' >= 2.
- ``image-to-text`` and ``cond``: two files, as seq2seq's. ``-encoder`` gives the generator's
  initial state from the condition,

      z = image vector W_v flatten(CNN(x)) + b_v  (image-to-text)  or  E_c[label] / W_f f + b_f
      h_0 = tanh(W_init z + b_init)  (zeros where the condition enters only the input), c_0 = 0

  (``images (B, F, W)`` at the model's size: pad with 0 or cut first; or ``labels (B,)`` /
  ``features (B, F)`` ``-> z (B, C), h (L, B, H)[, c (L, B, H)]``), and ``-decoder`` is one
  step with the state in and out, ``y_prev (B,), z, h[, c] -> logits (B, V), h'[, c']``:
  start from y_prev = <s> (id 1), feed back the chosen token and the state until </s> (id 2).
"""
import torch
from torch import nn

from rnnkit.export import ExportError
from rnnkit.export.programs import Program


class _Recognizer(nn.Module):
    """forward(features, lengths) -> (log_probs, frames): the recogniser's forward (its rnnkit
    layer swapped per format for one that runs ``lengths=`` traceably)."""
    lengths = True

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, features, lengths):
        return self.model(features, lengths)


def recognize_programs(model):
    c = model.config
    T = 4 * c.time_stride
    args = (torch.zeros(2, c.features, T), torch.tensor([T, T - 1]))
    return [Program("", _Recognizer(model), args, ["features", "lengths"], ["log_probs", "frames"],
                    {"features": {0: "batch", 2: "time"}, "lengths": {0: "batch"}},
                    f"CTC recogniser: features (B, {c.features}, T) zero-padded, T >= "
                    f"{2 * c.time_stride}, lengths (B,) -> log-probabilities (B, T', "
                    f"{c.num_classes}) (class 0 the blank; decode them on the host), frames "
                    f"(B,) = lengths // {c.time_stride}", minimum={"time": 2 * c.time_stride},
                    oblivious=True)]


def _states(rnn):
    return rnn if isinstance(rnn, tuple) else (rnn,)


def _initial(layer, h):
    """The stack's initial state from h: rnnkit's ``initial_state``, or for the torch.nn layer
    that ONNX export puts in its place (:class:`rnnkit.export.lengths.TorchLengths`) the same:
    (h, zeros) for an LSTM."""
    if hasattr(layer, "initial_state"):
        return layer.initial_state(h)
    if isinstance(layer.module, nn.LSTM):
        return h, torch.zeros_like(h)
    return h


class _Condition(nn.Module):
    """forward(cond) -> z, h[, c]: a ConditionalGenerator's (or ImageToText's) initial state
    through ``condition_tensors``, without the argument checks (a check on the labels' values
    would be data in the program)."""

    def __init__(self, model, image=False):
        super().__init__()
        self.model, self.image = model, image

    def forward(self, cond):
        g = self.model.generator if self.image else self.model
        z, h = g.condition_tensors(self.model.encode(cond) if self.image else cond)
        return (z, *_states(_initial(g.rnn, h)))


class _GeneratorStep(nn.Module):
    """forward(y_prev, z, h[, c]) -> logits, h'[, c']: one step of the generator through its
    forward on a sequence of one token (what tracing follows; ``step`` is the fast path)."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def forward(self, y_prev, z, h, c=None):
        logits, state = self.generator(y_prev[:, None], {"z": z, "rnn": h if c is None else (h, c)})
        # a generator conditioned at its start only (init) reads no z in a step: the ONNX
        # exporter dropped the input the signature names; an empty sum (exactly 0) keeps it
        logits = logits + z[:, :0].sum()
        return (logits[:, 0], *_states(state["rnn"]))                             # (B, V)


def generator_programs(model, kind):
    """Encoder and one-step decoder of a ConditionalGenerator (kind "cond") or an ImageToText
    (kind "image-to-text")."""
    image = kind == "image-to-text"
    g = model.generator if image else model
    c = g.config
    states = list(g.rnn.cell.STATES)
    if len(states) > 2:
        raise ExportError(f"a {kind} generator whose cell has {len(states)} states cannot be "
                          f"exported yet")
    if image:
        m = model.config
        cond, name = torch.zeros(2, m.height, m.width), "images"
        what = f"images (B, {m.height}, {m.width}) standardised, padded with 0 or cut to width"
        dynamic = {0: "batch"}
    elif c.n_classes:
        cond, name = torch.tensor([0, c.n_classes - 1]), "labels"
        what = f"labels (B,) in [0, {c.n_classes})"
        dynamic = {0: "batch"}
    else:
        cond, name = torch.zeros(2, c.features), "features"
        what = f"features (B, {c.features})"
        dynamic = {0: "batch"}
    encoder_module = _Condition(model, image)
    with torch.no_grad():
        start = encoder_module(cond)
    sizes = f"({c.layers}, B, {c.hidden})"
    encoder = Program("encoder", encoder_module, (cond,), [name], ["z", *states], {name: dynamic},
                      f"{kind} encoder: {what} -> the generator's initial state z (B, "
                      f"{c.cond_size}), {', '.join(states)} {sizes}")
    decoder = Program("decoder", _GeneratorStep(g), (torch.ones(2, dtype=torch.long), *start),
                      ["y_prev", "z", *states], ["logits", *(f"{s}_out" for s in states)],
                      {"y_prev": {0: "batch"}, "z": {0: "batch"},
                       **{s: {1: "batch"} for s in states}},
                      f"{kind} decoder step: y_prev (B,) (<s> = 1 first), z, {', '.join(states)} "
                      f"-> logits (B, {c.vocab_size}) and the next {', '.join(states)} "
                      f"(stop at </s> = 2)")
    return [encoder, decoder]


def load(kind, path):
    """The programs of a run of one of these kinds, or None for another kind."""
    if kind == "recognize":
        from rnnkit.tasks.recognize import Recognizer
        return recognize_programs(Recognizer.load(path).model.eval())
    if kind == "image-to-text":
        from rnnkit.tasks.image_to_text import ImageReader
        return generator_programs(ImageReader.load(path).model.eval(), kind)
    if kind == "cond":
        from rnnkit.tasks.cond import load_cond
        return generator_programs(load_cond(path)[0], kind)
    return None
