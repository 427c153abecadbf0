"""``rnnkit check-cell FILE``: check a hand-written cell's backward against its own reference step.

Loads FILE as a Python module (this runs the file: only check files you trust, as with
``python FILE``; its folder is on the import path), takes the cells it defines (every one, or
``--class NAME``) and runs on each :func:`rnnkit.cells.check.check_cell`: float64 parity of the forward and of every gradient with
autograd through the cell's ``reference_step``, and gradcheck of the BPTT node. Prints the table.
Exit status 0 when everything agrees, 1 when a gradient is wrong (the table names it), 2 when the
file or the cell is malformed (it does not load, no cell class, a method missing or returning the
wrong shape).
"""
import argparse
import importlib.machinery
import importlib.util
import inspect
import sys
from pathlib import Path

from rnnkit.cli.options import given_path, ranged

small = ranged(int, (1, 64))

DESCRIPTION = """\
Check a hand-written cell's backward against its own reference step.

FILE is loaded as a Python module: this runs the file, as `python FILE` would, so check only
files you trust. Each cell it defines is checked (or --class NAME), in float64: the forward
and every gradient through rnnkit's BPTT node against autograd through the cell's
reference_step (one step, which names the wrong derivative, then a sequence), and gradcheck
of the node. Exit status: 0 everything agrees; 1 a gradient is wrong (the table names
it, with the step and unit where the error is largest); 2 the file or the cell is malformed."""


def add_parser(sub):
    p = sub.add_parser("check-cell", help="check a hand-written cell's backward (runs FILE)",
                       description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE", type=given_path,
                   help="Python file defining the cell (it is executed)")
    p.add_argument("--class", dest="cls", metavar="NAME",
                   help="check only this cell class (or instance) of FILE")
    p.add_argument("--input", type=small, metavar="I", default=3, help="input size I (default 3)")
    p.add_argument("--hidden", type=small, metavar="H", default=4, help="hidden size H (default 4)")
    p.add_argument("--batch", type=small, metavar="B", default=2, help="batch rows B (default 2)")
    p.add_argument("--steps", type=small, metavar="T", default=5, help="time steps T (default 5)")
    p.add_argument("--seed", type=ranged(int, (0, 2**32 - 1)), default=0, metavar="N",
                   help="seed of the random weights and inputs (default 0)")
    p.set_defaults(func=run)


def run(args):
    from rnnkit.cells.base import CellError
    from rnnkit.cells.check import check_cell
    from rnnkit.cli.main import fail
    try:
        cells = find_cells(load(args.file), args.file, args.cls)
        reports = []
        for label, cell in cells:
            reports.append((label, check_cell(cell, input_size=args.input,
                                              hidden_size=args.hidden, batch=args.batch,
                                              steps=args.steps, seed=args.seed)))
    except CellError as e:
        return fail(e, 2)
    for k, (label, report) in enumerate(reports):
        if len(reports) > 1:
            print(("\n" if k else "") + f"== {label} ({k + 1} of {len(reports)} cells in "
                  f"{args.file}) ==")
        print(report)
    return 0 if all(r.ok for _, r in reports) else 1


def load(path):
    """FILE as a module (executing it). A file that does not load is a CellError."""
    from rnnkit.cells.base import CellError
    p = Path(path)
    if p.is_dir():
        raise CellError(f"{path}: a folder; FILE is the Python file that defines the cell")
    if not p.is_file():
        raise CellError(f"{path}: not a regular file (a pipe, a device, ...); FILE is the "
                        f"Python file that defines the cell" if p.exists() else
                        f"{path}: no such file")
    name = f"rnnkit_user_cell_{p.stem}"
    p = p.resolve()                     # the frames of its code name it so
    loader = importlib.machinery.SourceFileLoader(name, str(p))   # Python whatever its suffix
    spec = importlib.util.spec_from_file_location(name, p, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module          # dataclasses and pickling look a module up by name
    sys.path.insert(0, str(p.parent))   # its own imports find the modules beside it, as with
    try:                                # `python FILE`
        spec.loader.exec_module(module)
    except BaseException as e:          # the user's code: SyntaxError, ImportError, SystemExit ...
        if isinstance(e, KeyboardInterrupt):
            raise
        line = getattr(e, "lineno", None) or _user_line(e, p)
        where = f"{path}:{line}" if line else path
        text = str(e).strip().splitlines()
        raise CellError(f"{where}: the file does not load: {type(e).__name__}"
                        + (f": {text[0]}" if text else "")) from None
    return module


def find_cells(module, path, cls=None):
    """[(label, cell)]: --class NAME, else every cell FILE defines: each subclass of
    rnnkit.Cell made without arguments, or where one takes arguments, the file's own instances
    of it (``RNN_TANH = VanillaMath("tanh")``)."""
    from rnnkit.cells.base import Cell, CellError
    if cls is not None:
        if not hasattr(module, cls):
            raise CellError(f"{path}: no {cls!r} in the file (its classes: "
                            f"{', '.join(_classes(module)) or 'none'})")
        return [(cls, getattr(module, cls))]
    found = [c for c in _classes(module).values() if issubclass(c, Cell)]
    if not found:
        raise CellError(f"{path}: no cell class in the file (a subclass of rnnkit.Cell with "
                        f"{', '.join(Cell.REQUIRED)})")
    # a helper base class of the file's cells that lacks a required method is no cell itself
    found = [c for c in found
             if not (any(d is not c and issubclass(d, c) for d in found)
                     and any(getattr(c, m) is getattr(Cell, m, None) for m in Cell.REQUIRED))]
    cells = []
    for c in found:
        instances = [(n, v) for n, v in vars(module).items() if type(v) is c]
        if instances and _needs_arguments(c):
            cells += instances
        else:
            cells.append((c.__name__, c))
    return cells


def _needs_arguments(cls):
    """Whether ``cls()`` needs arguments (its constructor has a required parameter)."""
    try:
        params = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return False
    return any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD,
                                                   p.KEYWORD_ONLY) for p in params)


def _classes(module):
    """Classes defined in the module itself (not imported into it)."""
    return {n: c for n, c in vars(module).items()
            if inspect.isclass(c) and c.__module__ == module.__name__}


def _user_line(e, path):
    """The line of FILE where the exception was raised (the innermost frame in FILE)."""
    line, tb = None, e.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve() == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
