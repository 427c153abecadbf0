"""Command-line flags generated from config dataclasses, so each field is one ``--flag``.

A field's help text lives next to it, in the dataclass, as ``metadata={"help": ...}`` (the
convention of HfArgumentParser)::

    batch: int = field(default=32, metadata={"help": "texts per training batch"})
"""
import argparse
import dataclasses
import math
import os
import sys
import typing
from pathlib import Path

from rnnkit.config import MAX_BEAM, MAX_COUNT, MAX_SEED, ConfigError, Range
from rnnkit.data import read_text
from rnnkit.data.text import decode_text, numbered_lines

SUPPRESS = argparse.SUPPRESS


def field_help(f):
    """The help text of a dataclass field (``metadata["help"]``), or ``""``."""
    return f.metadata.get("help", "")


def add_config_flags(parser, cls, skip=(), title=None, defaults=None):
    """One ``--field-name`` flag per dataclass field: type and default from the field, help text
    from its ``metadata["help"]``. ``defaults`` ({field: value}) names the defaults the command
    really uses where they differ from the field's (e.g. a task's own step count): they are only
    shown in the help; the caller applies them (as the ``base`` of :func:`config_from_args`).

    Flags default to SUPPRESS so :func:`config_from_args` can tell given flags from defaults.
    """
    group = parser.add_argument_group(title or cls.__name__)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = hints[f.name]
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else None
        default = (defaults or {}).get(f.name, default)
        shown = repr(default) if default == "" else default
        text = f"{field_help(f)} (default {shown})".strip().replace("%", "%%")   # argparse %-formats
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=SUPPRESS,
                               help=text)
        else:
            group.add_argument(flag, type=kind, default=SUPPRESS, metavar=kind.__name__.upper(),
                               help=text)
    return group


def config_from_args(cls, args, base=None, **overrides):
    """A ``cls`` from the flags given on the command line over ``base`` (a dict of field values,
    or an instance) and then the field defaults. A value outside its field's declared range
    raises :class:`rnnkit.config.ConfigError` (one line naming field, range and value), which
    the CLI entry point reports."""
    values = dict(dataclasses.asdict(base) if dataclasses.is_dataclass(base) else base or {})
    names = {f.name for f in dataclasses.fields(cls)}
    values.update({k: v for k, v in vars(args).items() if k in names})
    values.update(overrides)
    unknown = sorted(set(values) - names)
    if unknown:   # a base from an older or foreign checkpoint
        raise ConfigError(f"{cls.__name__} has no field {', '.join(map(repr, unknown))} "
                          f"(its fields: {', '.join(sorted(names))})")
    return cls(**values)   # checks every field against its declared range: ConfigError


# ---------------------------------------------------------------- flags that are not config fields
def ranged(kind, allowed):
    """An argparse ``type``: parses ``kind`` (int or float) and refuses values outside
    ``allowed`` (a :class:`rnnkit.config.Range` spec such as ``(1, 1000)`` or ``"(0, 1]"``), and
    NaN and infinities, with argparse's one-line error naming the flag."""
    allowed = Range.of(allowed)

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if value not in allowed:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


positive_int = ranged(int, (1, MAX_COUNT))
nonneg_int = ranged(int, (0, MAX_COUNT))
positive_float = ranged(float, "(0, inf)")
nonneg_float = ranged(float, "[0, inf)")
probability = ranged(float, "(0, 1]")
random_seed = ranged(int, (0, MAX_SEED))
beam_width = ranged(int, (1, MAX_BEAM))
length_penalty = ranged(float, (0, 10))   # as Seq2SeqData.length_penalty


def input_lines(texts, file):
    """(lines, where they came from, whether they were arguments): the command's text
    arguments, else the lines of ``--file``, else standard input's. ``-`` as the only text or
    as the file reads standard input, as Unix tools do. Lines end at ``\n``, ``\r\n`` or
    ``\r`` only, as the data readers count them (not at the form feeds and Unicode separators
    ``str.splitlines`` splits at: an output line for each input line); standard input's
    byte-order mark is dropped, as a file's is."""
    def stdin():
        raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else \
            sys.stdin.read().encode("utf-8", "surrogateescape")
        return split_lines(decode_text(raw, "<stdin>", iconv=False)) if raw else []
    if texts and file is not None:
        raise ConfigError(f"give the texts as arguments or in --file, not both (got "
                          f"{len(texts)} argument(s) and --file {file})")
    if texts == ["-"] or (file is not None and str(file) == "-"):
        return stdin(), "<stdin>", False
    if texts:
        return texts, "argument", True
    if file:
        return split_lines(read_text(file)), str(file), False   # DataError if unreadable
    return stdin(), "<stdin>", False


def split_lines(text):
    return [line for _, line in numbered_lines(text)]


IMAGE_FORMATS = ("png", "svg", "pdf")   # what matplotlib writes with no extra package


def given_path(text, what="a file or folder"):
    """An argparse type: a path as typed, ``~`` expanded (the shell leaves ``--out=~/x`` as it
    is: a folder named ~ was made here); an empty one is refused (Path('') is the current
    folder: every .txt file below it was read as the data)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must name {what}, got an empty string")
    from rnnkit.data.text import DataError, expanded
    try:
        return expanded(text)
    except DataError as e:   # (argparse words a ValueError of its own)
        raise argparse.ArgumentTypeError(str(e)) from None


def output_file(text):
    """An argparse type: a file to write; an existing folder is refused before any work."""
    path = given_path(text, "a file")
    if path.is_dir() or text.endswith(("/", os.sep)):   # (Path drops a trailing slash)
        raise argparse.ArgumentTypeError(f"{text}: is a folder, a file was expected")
    return path


def image_file(text):
    """An argparse type: a plot to write, .png, .svg or .pdf (no extension: PNG)."""
    path = output_file(text)
    if path.suffix and path.suffix[1:].lower() not in IMAGE_FORMATS:
        raise argparse.ArgumentTypeError(f"{text}: expected a .png, .svg or .pdf file name, "
                                         f"got {path.suffix!r}")
    return path


def image_format(path):
    """The format a plot is written in: its extension's, PNG without one."""
    suffix = Path(path).suffix[1:].lower()
    return suffix if suffix in IMAGE_FORMATS else "png"
