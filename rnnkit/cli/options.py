"""Command-line flags generated from config dataclasses, so each field is one ``--flag``."""
import argparse
import dataclasses
import typing

SUPPRESS = argparse.SUPPRESS


def add_config_flags(parser, cls, skip=(), title=None, help=None):
    """One ``--field-name`` flag per dataclass field (type and default from the field, text from
    ``help[field]``).

    Flags default to SUPPRESS so :func:`config_from_args` can tell given flags from defaults.
    """
    group = parser.add_argument_group(title or cls.__name__)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = hints[f.name]
        flag = "--" + f.name.replace("_", "-")
        comment = (help or {}).get(f.name, "")
        default = f.default if f.default is not dataclasses.MISSING else None
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=SUPPRESS,
                               help=f"{comment} (default {default})")
        else:
            group.add_argument(flag, type=kind, default=SUPPRESS, metavar=kind.__name__.upper(),
                               help=f"{comment} (default {default})".strip())
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
