"""Python calls made from the kernels' own declarations.

Each kernel declares its arguments once, in its C++ file, by kind and name (``declare.h``)::

    #define RK_ARGS_lstm_fwd(X) X(i64, b) X(i64, H) X(out, acts) X(in, cp) ...

and the library exports the list as a manifest (``rk_manifest()``), one line per kernel::

    lstm_fwd i64:b i64:H out:acts in:cp i64:ld_cp out:c out:h out:tc

From that line come the ctypes argument types of ``rk_lstm_fwd_f32`` / ``_f64`` and a Python
function called by name, ``k.lstm_fwd(b=..., H=..., acts=tensor, ...)``, that hands over each
tensor's address after checking it: a missing, unknown or wrong-typed argument is a TypeError
naming the kernel and the argument (expected vs got), never a crash inside the kernel. The
function is generated as source once per kernel and dtype, so a call costs what the checks and
``data_ptr()`` cost, not a loop over a table (``tests/test_kernel_calls.py`` measures it).

Kinds, by name (what Python passes -> what C receives):

- ``i64``: an int -> int64_t;  ``real``: a float -> float / double (the kernel's type);
- ``in`` / ``out``: a CPU tensor of the kernel's dtype -> its address (read / written);
- ``opt`` / ``optout``: the same, or None -> a null pointer;
- ``plan``: an int64 CPU tensor (a time loop's plan, (n, 4)) -> its address;
- ``idx``: an int64 CPU tensor, or None;  ``iout``: an int64 CPU tensor (written);
- ``f64``: a float -> double;  ``din``: a float64 CPU tensor -> const double*;
- ``addr``: an address as ctypes takes it (an int, None, ``ctypes.byref(...)``, an array).

Positional calls (every argument, in the declared order, tensors as addresses) go straight to
ctypes, unchecked beyond its own argument types: for callers that already hold the addresses.
"""
import ctypes
import keyword

import torch

# kind -> ctypes type (real: per dtype)
CTYPES = {"i64": ctypes.c_int64, "f64": ctypes.c_double, "addr": ctypes.c_void_p,
          "plan": ctypes.c_void_p, "in": ctypes.c_void_p, "out": ctypes.c_void_p,
          "opt": ctypes.c_void_p, "optout": ctypes.c_void_p, "idx": ctypes.c_void_p,
          "iout": ctypes.c_void_p, "din": ctypes.c_void_p}
REALS = {torch.float32: ctypes.c_float, torch.float64: ctypes.c_double}
# kind -> the expression a by-name call passes for argument {a}
_TENSOR = "({a}.data_ptr() if {a}.dtype is {dt} and {a}.is_cpu else _BAD)"
EXPRS = {"i64": "{a}", "real": "{a}", "f64": "{a}", "addr": "{a}",
         "in": _TENSOR.format(a="{a}", dt="_DT"), "out": _TENSOR.format(a="{a}", dt="_DT"),
         "opt": "(None if {a} is None else " + _TENSOR.format(a="{a}", dt="_DT") + ")",
         "optout": "(None if {a} is None else " + _TENSOR.format(a="{a}", dt="_DT") + ")",
         "plan": _TENSOR.format(a="{a}", dt="_I64"),
         "idx": "(None if {a} is None else " + _TENSOR.format(a="{a}", dt="_I64") + ")",
         "iout": _TENSOR.format(a="{a}", dt="_I64"), "din": _TENSOR.format(a="{a}", dt="_F64")}
TENSOR_DTYPES = {"plan": torch.int64, "idx": torch.int64, "iout": torch.int64, "din": torch.float64}
_ERRORS = (AttributeError, TypeError, ctypes.ArgumentError)


class _Missing:
    def __repr__(self):
        return "missing"


_NO = _Missing()          # the default of every by-name argument: not given
_BAD = object()           # what a failed check hands to ctypes (which refuses it)


def read_manifest(lib):
    """{kernel: ((kind, argument), ...)} from the library's ``rk_manifest()``."""
    fn = lib.rk_manifest
    fn.argtypes, fn.restype = (), ctypes.c_char_p
    out = {}
    for line in fn().decode().splitlines():
        name, *args = line.split()
        pairs = tuple(tuple(a.split(":")) for a in args)
        for kind, arg in pairs:
            if kind not in CTYPES and kind != "real":
                raise RuntimeError(f"kernel {name}: unknown argument kind {kind!r} ({arg})")
            if not arg.isidentifier() or keyword.iskeyword(arg) or arg.startswith("_"):
                raise RuntimeError(f"kernel {name}: argument name {arg!r} is not usable")
        if name in out:
            raise RuntimeError(f"kernel {name} is declared twice")
        out[name] = pairs
    return out


def bind(fn, name, args, dtype):
    """``fn`` (a ctypes function) given its argument types from ``args`` ((kind, name), ...),
    wrapped in a function called by argument name (see the module's docstring)."""
    fn.argtypes = tuple(REALS[dtype] if kind == "real" else CTYPES[kind] for kind, _ in args)
    fn.restype = None
    names = [a for _, a in args]
    exprs = ", ".join(EXPRS[kind].format(a=a) for kind, a in args)
    src = (f"def {name}(*_pos, {', '.join(f'{a}=_NO' for a in names)}):\n"
           f"    if _pos:\n"
           f"        return _positional(_pos)\n"
           f"    try:\n"
           f"        return _fn({exprs})\n"
           f"    except _ERRORS:\n"
           f"        _explain({{{', '.join(f'{a!r}: {a}' for a in names)}}})\n"
           f"        raise\n")

    def positional(pos):
        if len(pos) != len(args):
            raise TypeError(f"kernel {name}: {len(args)} positional arguments "
                            f"({', '.join(names)}), got {len(pos)}")
        return fn(*pos)

    def explain(given):
        raise TypeError(f"kernel {name} ({str(dtype).replace('torch.', '')}): "
                        f"{_first_problem(args, given, dtype)}") from None

    scope = {"_fn": fn, "_DT": dtype, "_I64": torch.int64, "_F64": torch.float64, "_BAD": _BAD,
             "_NO": _NO,
             "_ERRORS": _ERRORS, "_positional": positional, "_explain": explain}
    exec(compile(src, f"<rnnkit kernel {name}>", "exec"), scope)
    made = scope[name]
    made.__doc__ = f"{name}({', '.join(f'{a}: {k}' for k, a in args)}) -> None (rnnkit kernel)"
    made.kinds = args
    return made


def _what(v):
    if isinstance(v, torch.Tensor):
        return f"a {str(v.dtype).replace('torch.', '')} tensor on {v.device.type}"
    return "missing" if v is _NO else f"{type(v).__name__} {v!r}"[:80]


def _first_problem(args, given, dtype):
    """The first argument a by-name call got wrong, in words: expected vs got."""
    for kind, a in args:
        v = given[a]
        if v is _NO:
            return f"argument {a!r} ({kind}) missing"
        if kind in ("in", "out", "opt", "optout") or kind in TENSOR_DTYPES:
            want = TENSOR_DTYPES.get(kind, dtype)
            if v is None and kind in ("opt", "optout", "idx"):
                continue
            if not (isinstance(v, torch.Tensor) and v.dtype == want and v.device.type == "cpu"):
                what = "an int64" if want is torch.int64 else f"a {str(want).replace('torch.', '')}"
                none = " or None" if kind in ("opt", "optout", "idx") else ""
                return f"argument {a!r} expects {what} CPU tensor{none}, got {_what(v)}"
        elif kind == "i64" and not isinstance(v, int):
            return f"argument {a!r} expects an int, got {_what(v)}"
        elif kind in ("real", "f64") and not isinstance(v, (int, float)):
            return f"argument {a!r} expects a float, got {_what(v)}"
        elif kind == "addr":
            try:
                ctypes.c_void_p.from_param(v)
            except TypeError:
                return (f"argument {a!r} expects an address (int, None, ctypes object), "
                        f"got {_what(v)}")
    given = ", ".join(f"{a}={_what(given[a])}" for _, a in args)
    return f"an argument ctypes refused ({given})"
