"""What each kind of trained run becomes as an inference program, and the writers.

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
import contextlib
import os
import re
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.fx.experimental._config as _fx_config
from torch import nn

from rnnkit.export import FORMATS, ExportError, swap_layers
from rnnkit.train.checkpoint import load_checkpoint


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
    from rnnkit.data.labelled import char_gram_slots
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


def _for_format(module, fmt, where):
    """The program's module with rnnkit's layers swapped as the format needs."""
    from rnnkit.export import mask_lengths
    if fmt == "onnx":
        return swap_layers(module, "onnx", where)
    return mask_lengths(module, where) if getattr(module, "lengths", False) else module


def _load(path):
    ckpt = load_checkpoint(path)
    kind = ckpt.get("kind")
    if kind == "lm":
        from rnnkit.tasks.lm import load_lm
        return kind, lm_programs(load_lm(path, ckpt)[0])
    if kind == "forecast":
        from rnnkit.tasks.forecast_trained import Forecast
        f = Forecast.load(path)
        return kind, forecast_programs(f.model.eval(), f.window)
    if kind == "classify":
        from rnnkit.tasks.classify import Classifier
        return kind, classify_programs(Classifier.load(path).model.eval())
    if kind == "tag":
        from rnnkit.tasks.tag_trained import Tagger
        return kind, tag_programs(Tagger.load(path).model.eval())
    if kind == "seq2seq":
        from rnnkit.tasks.seq2seq import load_seq2seq
        return kind, seq2seq_programs(load_seq2seq(path)[0])
    from rnnkit.export import tasks
    programs = tasks.load(kind, path)
    if programs is None:
        raise ExportError(f"{path}: runs of kind {kind!r} cannot be exported (lm, forecast, "
                          f"classify, tag, seq2seq, recognize, image-to-text and cond runs can)")
    return kind, programs


def write_onnx(program, out, where="model"):
    """``program`` as an ONNX file: rnnkit's layers become ONNX LSTM/GRU/RNN operators."""
    module = _for_format(program.module, "onnx", where).eval()
    with warnings.catch_warnings(), torch.no_grad(), _without_shape_notices():
        warnings.simplefilter("ignore")        # the TorchScript-based exporter's notices
        torch.onnx.export(module, program.args, str(out), dynamo=False, opset_version=17,
                          input_names=program.inputs, output_names=program.outputs,
                          dynamic_axes={**program.dynamic,
                                        **{o: {} for o in program.outputs}})


# The TorchScript exporter's C++ notice for every packed sequence it meets: ONNX's recurrent
# operators take the lengths themselves, the shapes of the graph come out right (the tests run
# the files in onnxruntime), so the notice says nothing a user can act on.
_SHAPE_NOTICE = re.compile(rb"Warning: The shape inference of prim::Pa(ckPadded|dPacked) type "
                           rb"is missing")


@contextlib.contextmanager
def _without_shape_notices():
    """Run the block with the process's stderr (file descriptor 2, where C++ prints) caught,
    then print what it caught but the packed-sequence shape notices."""
    fd = 2
    try:
        saved = os.dup(fd)
    except OSError:                                  # no stderr at all: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        os.dup2(caught.fileno(), fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            caught.seek(0)
            lines = [line for line in caught.read().splitlines(keepends=True)
                     if not _SHAPE_NOTICE.search(line)]
            if lines:
                os.write(fd, b"".join(lines))


def write_pt2(program, out, where="model"):
    """``program`` as a ``torch.export`` program (rnnkit's custom operators inside)."""
    module = _for_format(program.module, "pt2", where)
    _importable_cells(module, where)
    dims = {}
    shapes = []
    for name, arg in zip(program.inputs, program.args):
        spec = {d: dims.setdefault(n, torch.export.Dim(n, min=program.minimum.get(n, 1),
                                                      max=1 << 20))
                for d, n in program.dynamic.get(name, {}).items()}
        shapes.append(spec or None)
    # size-oblivious shapes where a program asks: a model's reshape of a permuted tensor can
    # guard on a size != 1 (a size of 1 needs no copy) that no least size can prove otherwise
    with torch.no_grad(), warnings.catch_warnings(), \
            _fx_config.patch(backed_size_oblivious=program.oblivious):
        # an attribute a module keeps for inspection (attention weights) is not the program's
        warnings.filterwarnings("ignore", message=".*was assigned during export")
        ep = torch.export.export(module.eval(), program.args,
                                 dynamic_shapes=tuple(shapes))
    torch.export.save(ep, str(out))


def _importable_cells(module, where):
    """A saved program names each cell by module and class and imports it when loaded: a cell
    class defined in a file loaded by path (not importable by its module name) would make a
    program that fails only when it runs. ExportError says so first."""
    import importlib
    from rnnkit.cells.base import Cell
    for m in module.modules():
        cell = getattr(m, "cell", None)
        if not isinstance(cell, Cell):
            continue
        cls = type(cell)
        try:
            found = importlib.import_module(cls.__module__)
            for part in cls.__qualname__.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError):
            found = None
        if found is not cls:
            raise ExportError(f"{where}: its cell {cls.__qualname__} comes from module "
                              f"{cls.__module__!r}, which cannot be imported by that name; a "
                              f"program saved with it would fail when loaded. Put the cell's "
                              f"file on the Python path and import it as a module")


def _need_onnx():
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401  (torch.onnx imports it)
    except ModuleNotFoundError as e:
        raise ExportError(f"--format onnx needs the package {e.name!r}: pip install "
                          f"'rnnkit[export]' (or use --format pt2)") from None


def export_run(path, fmt, out):
    """Write the run's programs; returns [(file, about), ...]."""
    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "onnx":
        _need_onnx()
    out = Path(out)
    if not out.parent.is_dir():
        raise ExportError(f"--out {out}: the folder {out.parent} does not exist")
    if out.is_dir():
        raise ExportError(f"--out {out}: a folder; give a file name (e.g. {out / ('model.' + fmt)}"
                          f"; runs of two programs add -encoder and -decoder to its stem)")
    kind, programs = _load(path)
    written, temporary = [], []
    try:   # each program to a hidden file beside its place; all moved there once all are written
        for p in programs:
            file = out if not p.name else out.with_name(f"{out.stem}-{p.name}{out.suffix}")
            fd, tmp = tempfile.mkstemp(prefix=f".{file.stem}.", suffix=f".tmp{file.suffix}",
                                       dir=file.parent)        # the suffix torch looks for
            os.close(fd)
            temporary.append(Path(tmp))
            if fmt == "onnx":
                write_onnx(p, tmp, str(path))
            else:
                write_pt2(p, tmp, str(path))
            written.append((file, p.about))
        for tmp, (file, _) in zip(temporary, written):
            os.chmod(tmp, 0o644)
            os.replace(tmp, file)
    finally:
        for tmp in temporary:
            tmp.unlink(missing_ok=True)
    return written
