"""A trained run's inference programs (:mod:`rnnkit.export.programs`,
:mod:`rnnkit.export.tasks`) written as ONNX or ``torch.export`` files, each first to a hidden
file beside its place and all moved there once all are written.
"""
import contextlib
import io
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

import torch
import torch.fx.experimental._config as _fx_config

from rnnkit import outputs
from rnnkit.export import FORMATS, ExportError, swap_layers
from rnnkit.export.programs import (classify_programs, forecast_programs, lm_programs,
                                    seq2seq_programs, tag_programs)
from rnnkit.outputs import named, put, target
from rnnkit.train.checkpoint import load_checkpoint


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
        from rnnkit.tasks.classify_trained import Classifier
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
    # into memory first, then to the file from Python: torch's zip writer, given the file,
    # writes it from C++, where a full disk aborts the process in the writer's destructor
    # instead of raising "no space left on device"
    data = io.BytesIO()
    torch.export.save(ep, data)
    with open(out, "wb") as f:
        f.write(data.getbuffer())


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
    if str(out).endswith(("/", os.sep)):   # Path() drops the slash: a folder was meant
        raise ExportError(f"--out {out}: a folder; give a file name (e.g. "
                          f"{Path(out) / ('model.' + fmt)})")
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"--out {out}: a folder; give a file name (e.g. {out / ('model.' + fmt)}"
                          f"; runs of two programs add -encoder and -decoder to its stem)")
    other = {"onnx": ".pt2", "pt2": ".onnx"}[fmt]
    if out.suffix.lower() == other or (fmt == "pt2" and out.suffix.lower() != ".pt2"):
        raise ExportError(f"--out {out}: a {fmt} program is a .{fmt} file (torch reads pt2 "
                          f"archives by their suffix), got {out.suffix or 'no suffix'!r}; name "
                          f"it {out.with_suffix('.' + fmt).name}")
    if not out.parent.is_dir():
        raise ExportError(f"--out {out}: " + (f"{out.parent} is a file, not a folder" if
                                               out.parent.exists() else
                                               f"the folder {out.parent} does not exist"))
    kind, programs = _load(path)
    written, temporary = [], []
    try:   # each program to a hidden file beside its place; all moved there once all are written
        for p in programs:
            file = out if not p.name else out.with_name(f"{out.stem}-{p.name}{out.suffix}")
            place = target(file)   # a link's file; None: a device or a pipe, written in place
            beside = place or Path(tempfile.gettempdir()) / file.name
            fd, tmp = outputs.temporary(beside, suffix=f".tmp{file.suffix}")   # (torch reads
            os.close(fd)                                                       # the suffix)
            temporary.append(Path(tmp))
            try:
                if fmt == "onnx":
                    write_onnx(p, tmp, str(path))
                else:
                    write_pt2(p, tmp, str(path))
            except BaseException as e:   # named by --out, not by the hidden file beside it (a
                named(e, file, tmp)      # full disk inside torch's writer: the OSError it
                raise                    # closed the file on)
            written.append((file, place, p.about))
        for tmp, (file, place, _) in zip(temporary, written):
            put(tmp, file, place)
    finally:
        for tmp in temporary:
            tmp.unlink(missing_ok=True)
    return [(file, about) for file, _, about in written]
