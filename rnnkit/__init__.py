"""rnnkit: recurrent neural networks for PyTorch with hand-derived backpropagation through time."""
import os as _os
import sys as _sys

OFF = ("", "0", "false", "off", "no")   # what RNNKIT_DEBUG (and other on/off variables) read as off


def env_switch(name, default=True):
    """An on/off environment variable: ``default`` where unset or empty, False for 0, false,
    off, no, True for 1, true, on, yes (any case); another value is warned about once and
    read as ``default``."""
    value = _os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in OFF or value in ("1", "true", "on", "yes"):
        return value not in OFF
    import warnings
    warnings.warn(f"rnnkit: {name} must be 0 (off) or 1 (on), got {_os.environ[name]!r}; "
                  f"read as {'on' if default else 'off'}", RuntimeWarning, stacklevel=3)
    return default


def debug_asked(argv):
    """--debug on the command line ``argv``, or RNNKIT_DEBUG set to other than 0/false/off/no."""
    return "--debug" in argv or _os.environ.get("RNNKIT_DEBUG", "").strip().lower() not in OFF


def one_line_warning(message, category, filename, lineno, line=None):
    """``warnings.formatwarning`` of the rnnkit command: one line, ``rnnkit: warning: ...``."""
    return f"rnnkit: warning: {str(message).removeprefix('rnnkit: ')}\n"


def _interrupted(*_):
    _sys.stderr.write("\nrnnkit: interrupted\n")
    _sys.stderr.flush()
    _os._exit(130)


def _run_as_command():
    """Whether this import is ``python -m rnnkit`` itself (not a package of one's own run with
    -m that imports rnnkit, nor ``python -m rnnkit.view.screenshot``)."""
    argv = list(getattr(_sys, "orig_argv", ()))
    for i, arg in enumerate(argv):
        if arg == "-m":
            return argv[i + 1:i + 2] == ["rnnkit"]
        if arg.startswith("-m"):
            return arg == "-mrnnkit"
    return False


_PREVIOUS_SIGINT = None
if _sys.argv[:1] == ["-m"] and _run_as_command() and not debug_asked(_sys.argv):
    # ``python -m rnnkit`` (torchrun's too) is the command: Ctrl-C while torch and rnnkit load
    # (seconds) ends as the rnnkit script's does (_rnnkit_command); __main__ ends the guard
    import signal as _signal
    _PREVIOUS_SIGINT = _signal.signal(_signal.SIGINT, _interrupted)


if (_os.path.basename(_sys.argv[0] if _sys.argv else "") == "rnnkit"
        or (_sys.argv[:1] == ["-m"] and _run_as_command())) and not debug_asked(_sys.argv):
    # the command: warnings while rnnkit loads (a bad RNNKIT_FAST_STEP) in its one-line form
    import warnings as _warnings
    _warnings.formatwarning = one_line_warning


def _end_import_guard():
    """The command's own Ctrl-C handling takes over (``python -m rnnkit``, once loaded)."""
    global _PREVIOUS_SIGINT
    if _PREVIOUS_SIGINT is not None:
        import signal
        signal.signal(signal.SIGINT, _PREVIOUS_SIGINT)
        _PREVIOUS_SIGINT = None


from rnnkit import kernels  # noqa: E402
from rnnkit.bptt.telemetry import GradientRecorder, record_gradients
from rnnkit.cells import Cell, CellError
from rnnkit.layers import GRU, GRUCell, LSTM, LSTMCell, RNN, RNNBase, RNNCell, Recurrent
from rnnkit.export import to_torch
# rnnkit's custom operators, registered: torch.export.load of a saved program needs them
from rnnkit.bptt import ops as _ops  # noqa: F401

__version__ = "0.1.0"
__all__ = ["RNN", "LSTM", "GRU", "Recurrent", "Cell", "CellError", "RNNCell", "LSTMCell",
           "GRUCell", "RNNBase", "GradientRecorder", "record_gradients", "kernels", "to_torch"]
