"""Cells by name: what the task models' ``--cell``, ``rnnkit gradflow --cells`` and
``rnnkit.Recurrent("name", ...)`` accept.

    rnnkit.cells.register("mycell", MyCell)         # or @rnnkit.cells.register("mycell")

rnnkit's own cells are the ``BUILTIN`` lines below, one per cell, as "module:attribute" (a Cell
subclass, or an instance where the cell takes arguments), imported when first asked for.
"""
import importlib
import re

import torch

from rnnkit.cells.base import CellError
from rnnkit.cells.validate import as_cell
from rnnkit.config import ConfigError

BUILTIN = {
    "rnn": "rnnkit.cells.rnn:RNN_TANH",
    "rnn-tanh": "rnnkit.cells.rnn:RNN_TANH",
    "rnn-relu": "rnnkit.cells.rnn:RNN_RELU",
    "lstm": "rnnkit.cells.lstm:LSTMMath",
    "gru": "rnnkit.cells.gru:GRUMath",
    "peephole-lstm": "rnnkit.cells.peephole_lstm:PeepholeLSTM",
    "indrnn": "rnnkit.cells.indrnn:IndRNN",
    "mgu": "rnnkit.cells.mgu:MGU",
}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

_cells = dict(BUILTIN)          # name -> "module:attribute", a Cell subclass or a Cell instance


def register(name, cell=None):
    """Make ``cell`` (a Cell subclass that takes no arguments, or an instance) known as
    ``name``; without ``cell``, a class decorator. Registering a name again replaces it (a
    notebook may redefine its cell); rnnkit's own names cannot be taken."""
    if cell is None:
        return lambda c: register(name, c)
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise CellError(f"a cell name is letters, digits, '-', '_' or '.', got {name!r}")
    if name in BUILTIN:
        raise CellError(f"{name!r} is rnnkit's own cell; register {_label(cell)} under "
                        f"another name")
    as_cell(cell, f"register({name!r})")        # the contract's checks, now rather than later
    _cells[name] = cell
    return cell


def get(name):
    """The Cell instance registered as ``name``."""
    if name not in _cells:
        raise ConfigError(f"unknown cell {name!r}; the registered cells are "
                          f"{', '.join(_cells)} (rnnkit.cells.register adds one)")
    cell = _cells[name]
    if isinstance(cell, str):
        module, attr = cell.split(":")
        cell = _cells[name] = getattr(importlib.import_module(module), attr)
    return as_cell(cell, f"cell {name!r}")


def names():
    """Every registered name, rnnkit's first."""
    return tuple(_cells)


def is_registered(name):
    return name in _cells


def _label(cell):
    return cell.__name__ if isinstance(cell, type) else type(cell).__name__


def source_digests(config):
    """{name: SHA-256 of its class's source} for the cells of one's own that a model config
    (a dict: ``cell``, ``*_cell``) names: what a checkpoint records, so that loading it under an
    edited cell says so (:func:`changed_cells`). rnnkit's own cells, and a class whose source
    cannot be read (defined at a prompt), are left out."""
    out = {}
    for key, name in (config or {}).items():
        if not (key == "cell" or key.endswith("_cell")) or not isinstance(name, str) \
                or name in BUILTIN or name not in _cells:
            continue
        digest = _source_digest(get(name))
        if digest:
            out[name] = digest
    return out


def changed_cells(recorded):
    """The names of ``recorded`` (:func:`source_digests`) registered now with another source."""
    return [name for name, digest in (recorded or {}).items()
            if name in _cells and _source_digest(get(name)) not in (None, digest)]


def _source_digest(cell):
    """SHA-256 of the source of the cell's class and of every class of one's own it inherits
    from (an edited base class is an edited cell), and of the instance's attributes (a cell
    registered with other arguments is another cell)."""
    import hashlib
    import inspect
    import json
    h = hashlib.sha256()
    for cls in type(cell).__mro__:
        if cls.__module__ == "rnnkit" or cls.__module__.startswith(("rnnkit.", "builtins")):
            continue
        try:
            h.update(inspect.getsource(cls).encode("utf-8"))
        except (OSError, TypeError):
            return None
    def named(value):   # a tensor by its values; a function or class by its name; another
        if isinstance(value, torch.Tensor):   # object by its type's (a repr has addresses)
            t = value.detach().cpu().contiguous()
            return f"tensor {t.dtype} {tuple(t.shape)} " + hashlib.sha256(
                t.reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()
        kind = value if isinstance(value, type) or callable(value) else type(value)
        return f"{getattr(kind, '__module__', '')}.{getattr(kind, '__qualname__', '')}"
    attrs = json.dumps(vars(cell), sort_keys=True, default=named)
    if attrs != "{}":   # a class's digest stays what it was before attributes counted
        h.update(attrs.encode("utf-8"))
    return h.hexdigest()
