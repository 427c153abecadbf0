"""Command-line flags generated from config dataclasses, so each field is one ``--flag``.

A field's help text lives next to it, in the dataclass, as ``metadata={"help": ...}`` (the
convention of HfArgumentParser)::

    batch: int = field(default=32, metadata={"help": "texts per training batch"})
"""
import argparse
import dataclasses
import typing

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
    or an instance) and then the field defaults."""
    values = dict(dataclasses.asdict(base) if dataclasses.is_dataclass(base) else base or {})
    names = {f.name for f in dataclasses.fields(cls)}
    values.update({k: v for k, v in vars(args).items() if k in names})
    values.update(overrides)
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise SystemExit(f"rnnkit: invalid {cls.__name__}: {e}") from None
