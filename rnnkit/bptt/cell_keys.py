"""The names the custom operators give cells (:mod:`rnnkit.bptt.ops`), kept apart from the
operators so that a layer names its cell when it is made, without importing them (a second of
every command's start): a layer keeps its cell's key, which a traced graph reads as a string
(dynamo guards it by its value; the cell itself it would guard by identity, and each new layer
of a cell of its own, layer norm, a projection, a cell named or given by class, compiled again,
the 9th failing under fullgraph)."""
import json

_CELLS = {}          # key -> cell instance (every cell traced in this process)


def cell_key(cell):
    """A string naming ``cell``, registered so the operators find the cell again. rnnkit's own
    cells (and any cell whose attributes are JSON values) get ``module:class:attributes``, which
    :func:`rnnkit.bptt.ops.lookup` rebuilds in a fresh process; others are named by id (this
    process only).
    Runs for real while tracing (its result is a constant of the graph)."""
    cls = type(cell)
    try:
        attrs = json.dumps(vars(cell), sort_keys=True)
        key = f"{cls.__module__}:{cls.__qualname__}:{attrs}"
        held = _CELLS.get(key)
        if held is not None and type(held) is not cls:   # another class of the same name: a
            raise TypeError                               # factory's, or a redefined one
    except TypeError:
        key = f"{cls.__module__}:{cls.__qualname__}@{id(cell):x}"
    _CELLS.setdefault(key, cell)
    return key


# torch.compiler.assume_constant_result(cell_key), without the import of torch._dynamo it makes
# (a second of every command's start): the decorator sets this one attribute, as
# tests/test_compile.py checks against torch's own
cell_key._dynamo_marked_constant = True
