"""What each kind of trained run becomes as an inference program (the files:
:mod:`rnnkit.export.writers`).

A program is a module whose inputs and outputs are plain tensors (the recurrent state too, so
a caller can stream: feed the state it got back into the next call):

- ``lm``: ``tokens (B, T) int64, h (L, B, H)[, c (L, B, H)] -> logits (B, T, V), h', c'``
  (log-probabilities under the adaptive softmax);
- ``forecast``: ``window (B, W, F)[, smoothing (B, K, F)] -> forecast (B, K, F)`` (direct
  mode: the next K steps in standardised units; ``smoothing``, where the run's forecast uses
  exponential smoothing over the whole history, is that smoothing's forecast) or ``(B, W, F)``
  (autoregressive: the one-step prediction after every step);
- ``classify``: ``tokens (B, T) padded with 0, lengths (B,)[, grams (B, T, N)] -> logits (B, K)``;
- ``tag``: ``tokens (B, T), lengths (B,)[, chars (B, T, W), char_lengths (B, T)][, grams (B, T,
  G)] -> tag scores (B, T, K)``;
- ``seq2seq``: two files, ``-encoder`` (``src, lengths -> memory, mask, summary, feed, h[, c]``)
  and ``-decoder``, one step (``y_prev, memory, mask, summary, feed, h[, c] -> logits,
  feed', h'[, c'][, attention]``), for a caller's own greedy or beam loop;
- ``recognize``, ``image-to-text``, ``cond``: :mod:`rnnkit.export.tasks` (the recogniser's
  per-frame log-probabilities; the generators' encoder and one-step decoder);

B is dynamic, and so is T (W for an autoregressive forecaster). Runs of other kinds are
refused with a message naming what can be exported.
"""
from dataclasses import dataclass, field

import torch
from torch import nn

from rnnkit.export import ExportError



@dataclass
class Program:
    """One exported module and its signature."""
    name: str              # file suffix ("" for a run that exports one program)
    module: nn.Module      # with rnnkit's layers (pt2); onnx swaps them for torch.nn's
    args: tuple            # example inputs
    inputs: list           # input names
    outputs: list          # output names
    dynamic: dict          # input name -> {dim: name} (the dynamic dimensions)
    about: str             # one line: what it computes
    minimum: dict = field(default_factory=dict)   # dimension name -> its least size (else 1)
    oblivious: bool = False    # trace with size-oblivious shapes (see write_pt2)


class _LMProgram(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens, h, c=None):
        logits, state = self.model(tokens, h if c is None else (h, c))
        return (logits, *(state if isinstance(state, tuple) else (state,)))


class _Forward(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)


def lm_programs(model):
    c = model.config
    states = model.rnn.cell.STATES
    if len(states) > 2:
        raise ExportError(f"a language model whose cell has {len(states)} states cannot be "
                          f"exported yet")
    state = model.init_state(2)
    state = state if isinstance(state, tuple) else (state,)
    tokens = torch.zeros(2, 3, dtype=torch.long)
    dynamic = {"tokens": {0: "batch", 1: "time"}, **{s: {1: "batch"} for s in states}}
    return [Program("", _LMProgram(model), (tokens, *state), ["tokens", *states],
                    ["logits", *(f"{s}_out" for s in states)], dynamic,
                    f"language model: tokens (B, T), {', '.join(states)} ({c.layers}, B, "
                    f"{c.hidden}) -> logits (B, T, {c.vocab_size}) and the next state")]


class _ForecastHistory(_Forward):
    def forward(self, window, smoothing):
        return self.model(window, smoothing)


def forecast_programs(model, W):
    """W: the run's window (what the direct model was trained on; an autoregressive one takes
    any length). A forecaster whose forecast uses exponential smoothing run over the whole
    history takes that smoothing's forecast as a second input (``smoothing``, (B, K, F),
    standardised: what :func:`rnnkit.tasks.forecast_trained.history_part` gives at the window's
    end, the parameters refitted there after the validation part), since the program sees only
    the window."""
    c = model.config
    direct = c.mode == "direct"
    window = torch.zeros(2, W, c.features)
    dynamic = {"window": {0: "batch"} if direct else {0: "batch", 1: "time"}}
    what = (f"the next {c.horizon} steps (B, {c.horizon}, {c.features})" if direct else
            f"the one-step prediction after every step (B, T, {c.features})")
    if direct and model.uses_history():
        smoothing = torch.zeros(2, c.horizon, c.features)
        return [Program("", _ForecastHistory(model), (window, smoothing), ["window", "smoothing"],
                        ["forecast"], {**dynamic, "smoothing": {0: "batch"}},
                        f"forecaster ({c.mode}): standardised window (B, {W}, {c.features}) and "
                        f"the smoothing's forecast over the whole history before its end (B, "
                        f"{c.horizon}, {c.features}) -> {what}")]
    return [Program("", _Forward(model), (window,), ["window"], ["forecast"], dynamic,
                    f"forecaster ({c.mode}): standardised window (B, "
                    f"{W if direct else 'T'}, {c.features}) -> {what}")]


class _Lengths(nn.Module):
    """forward(tokens, lengths[, grams]) -> model(tokens, lengths[, grams]): a model that reads
    variable lengths (its rnnkit layers swapped per format by :func:`_for_format`)."""
    lengths = True

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens, lengths, grams=None):
        if grams is None:
            return self.model(tokens, lengths)
        return self.model(tokens, lengths, grams)


def classify_programs(model):
    from rnnkit.data.text_tokens import char_gram_slots
    from rnnkit.models.classifier import needs_grams
    c = model.config
    tokens, lengths = torch.ones(2, 4, dtype=torch.long), torch.tensor([4, 2])
    args, inputs = (tokens, lengths), ["tokens", "lengths"]
    dynamic = {"tokens": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}
    N = c.ngrams - 1 + char_gram_slots(c.char_grams)   # token n-grams, then characters'
    if needs_grams(c):
        args += (torch.zeros(2, 4, N, dtype=torch.long),)
        inputs.append("grams")
        dynamic["grams"] = {0: "batch", 1: "time"}
    return [Program("", _Lengths(model), args, inputs, ["logits"], dynamic,
                    f"classifier: tokens (B, T) padded with 0, lengths (B,)"
                    f"{', n-gram buckets (B, T, ' + str(N) + ')' if needs_grams(c) else ''}"
                    f" -> logits (B, {c.num_classes})")]


class _Tagger(nn.Module):
    """forward(tokens, lengths): a tagger on words alone; the subclasses add what it reads, by
    name (torch.export matches the dynamic dimensions to the parameters' names). A char BiGRU
    runs over every position (no data-dependent shapes)."""
    lengths = True

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens, lengths):
        return self.model(tokens, lengths)


class _CharTagger(_Tagger):
    def forward(self, tokens, lengths, chars, char_lengths):
        return self.model(tokens, lengths, chars, char_lengths, dense_chars=True)


class _GramTagger(_Tagger):
    def forward(self, tokens, lengths, grams):
        return self.model(tokens, lengths, grams=grams)


class _CharGramTagger(_Tagger):
    def forward(self, tokens, lengths, chars, char_lengths, grams):
        return self.model(tokens, lengths, chars, char_lengths, grams, dense_chars=True)


def tag_programs(model):
    c = model.config
    tokens, lengths = torch.ones(2, 4, dtype=torch.long), torch.tensor([4, 2])
    crf = "; decode them with the CRF's transitions in the checkpoint" if c.crf else ""
    inputs, args = ["tokens", "lengths"], (tokens, lengths)
    dynamic = {"tokens": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}
    what = "tokens (B, T) padded with 0, lengths (B,)"
    if c.use_chars:
        inputs += ["chars", "char_lengths"]
        args += (torch.ones(2, 4, 3, dtype=torch.long), torch.full((2, 4), 3))
        dynamic.update(chars={0: "batch", 1: "time", 2: "word"},
                       char_lengths={0: "batch", 1: "time"})
        what += ", chars (B, T, W) padded with 0, char_lengths (B, T)"
    if c.input_grams:
        inputs.append("grams")
        args += (torch.ones(2, 4, c.input_grams, dtype=torch.long),)
        dynamic["grams"] = {0: "batch", 1: "time"}
        what += f", n-gram buckets (B, T, {c.input_grams})"
    module = {(False, False): _Tagger, (True, False): _CharTagger, (False, True): _GramTagger,
              (True, True): _CharGramTagger}[c.use_chars, c.input_grams > 0](model)
    return [Program("", module, args, inputs, ["scores"], dynamic,
                    f"tagger: {what} -> tag scores (B, T, {c.num_tags}){crf}")]


class _Encoder(nn.Module):
    lengths = True

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, src, lengths):
        """Seq2Seq.encode without its argument checks (len(lengths) would fix the batch size
        in the program), the state as tensors."""
        memory, mask, summary, feed, rnn = self.model.encode_tensors(src, lengths)
        return (memory, mask, summary, feed, *(rnn if isinstance(rnn, tuple) else (rnn,)))


def _layer_step(layer, x, state):
    """The decoder stack's step through its forward (what tracing can follow)."""
    out, state = layer(x[:, None], state)                                     # (B, 1, H)
    return out[:, 0], state


class _DecoderStep(nn.Module):
    """Seq2Seq.step with its state as tensors (the attention's keys formed from the memory
    inside each step: the state passed in and out is what the encoder gives)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, y_prev, memory, mask, summary, feed, h, c=None):
        m = self.model
        keys = m.attn.keys(memory) if m.attn is not None else None
        logits, o, state, weights = m.decode_step(y_prev, feed, h if c is None else (h, c), keys,
                                                  memory, mask, summary, recur=_layer_step)
        state = state if isinstance(state, tuple) else (state,)
        # a model that does not read one of them (summary without its use, memory and mask
        # without attention) still takes every input: the ONNX exporter drops an input nothing
        # reads, and both formats then keep the signature documented above
        zero = (memory[:, 0, :1] * 0 + mask[:, :1].to(logits.dtype) * 0
                + summary[:, :1] * 0)                                         # (B, 1), exactly 0
        logits = logits + zero
        return (logits, o, *state) + ((weights,) if weights is not None else ())


def seq2seq_programs(model):
    c = model.config
    states = model.encoder.cell.STATES
    src, lengths = torch.ones(2, 4, dtype=torch.long), torch.tensor([4, 2])
    with torch.no_grad():
        enc = _Encoder(model)(src, lengths)
    memory, mask, summary, feed, *rnn = enc
    batch_time = {0: "batch", 1: "source"}
    encoder = Program("encoder", _Encoder(model), (src, lengths), ["src", "lengths"],
                      ["memory", "mask", "summary", "feed", *states],
                      {"src": batch_time, "lengths": {0: "batch"}},
                      f"seq2seq encoder: src (B, S) padded with 0, lengths (B,) -> the decoder's "
                      f"state: memory (B, S, M), mask (B, S), summary (B, M), feed (B, "
                      f"{c.hidden}), {', '.join(states)} ({c.dec_layers}, B, {c.hidden})")
    attn = ["attention"] if model.attn is not None else []
    decoder = Program("decoder", _DecoderStep(model),
                      (torch.ones(2, dtype=torch.long), memory, mask, summary, feed, *rnn),
                      ["y_prev", "memory", "mask", "summary", "feed", *states],
                      ["logits", "feed_out", *(f"{s}_out" for s in states), *attn],
                      {"y_prev": {0: "batch"}, "memory": batch_time, "mask": batch_time,
                       "summary": {0: "batch"}, "feed": {0: "batch"},
                       **{s: {1: "batch"} for s in states}},
                      f"seq2seq decoder step: y_prev (B,) and the state -> logits (B, "
                      f"{c.tgt_vocab}) and the next feed, {', '.join(states)}"
                      + (", attention weights (B, S)" if attn else ""))
    return [encoder, decoder]
