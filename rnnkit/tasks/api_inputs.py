"""The Python API's checks of what a trained model is given: a list of texts, of token lists, of
files, a count, a beam width or a length penalty. A bare string where a list is meant (each character read as a
text), bytes or None inside it, or a width of 1.5 are a TypeError or ValueError saying what was
expected and what came, not a result of nonsense or an error from deep inside."""
import os


def _listed(value, what, one):
    if isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(f"{what} must be a list of {one}s, got a single "
                        f"{type(value).__name__}: put it in a list ([{value!r}])")
    try:
        return list(value)
    except TypeError:
        raise TypeError(f"{what} must be a list of {one}s, got {type(value).__name__}") from None


def texts(value, what="texts"):
    """``value`` (a list, tuple or iterable of str) as a list."""
    items = _listed(value, what, "str")
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise TypeError(f"{what}[{i}] must be a str, got {type(t).__name__}")
    return items


def text(value, what="text"):
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    return value


def token_lists(value, what="sentences"):
    """``value`` (a list of token lists) as a list of lists of str; a list of str (one
    sentence, not nested) is refused: each word would be read as a sentence of characters."""
    items = _listed(value, what, "token list")
    for i, s in enumerate(items):
        if isinstance(s, str):
            raise TypeError(f"{what}[{i}] must be a list of tokens, got a str ({s[:40]!r}): a "
                            f"sentence is a list of words, e.g. {s.split()[:3]!r}")
        items[i] = texts(s, f"{what}[{i}]")
    return items


def files(value, what="paths"):
    """``value`` (a list of str or path-like file names) as a list."""
    items = _listed(value, what, "file path")
    for i, p in enumerate(items):
        if not isinstance(p, (str, os.PathLike)):
            raise TypeError(f"{what}[{i}] must be a file path (str or pathlib.Path), got "
                            f"{type(p).__name__}")
    return items


def count(value, what, least=1):
    """``value`` as an int >= ``least`` (not a bool, not 1.5)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be a whole number, got {value!r}")
    if value < least:
        raise ValueError(f"{what} must be >= {least}, got {value}")
    return value


def number(value, what, low, high):
    """``value`` as a finite float in [low, high] (not a bool, not NaN)."""
    import math
    import numbers
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number, got {value!r}")
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{what} must be a number in [{low}, {high}], got {value!r}")
    return float(value)
