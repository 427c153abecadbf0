"""Declared ranges for the config dataclasses, checked in one place.

A config field states what it accepts in its metadata; :func:`check` validates a dataclass
instance against those declarations and raises :class:`ConfigError` naming the field, the range
and the value. Flags and checkpoints go through the same dataclass constructors, so both are
checked before anything is allocated.
"""


class ConfigError(ValueError):
    """A config value outside its declared range; the message names field, range and value."""
