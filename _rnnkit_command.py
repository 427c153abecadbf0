"""The ``rnnkit`` console script's entry point, outside the package: importing ``rnnkit``
imports torch (a second or two), and Ctrl-C in that time ends as it does later in a command,
one line and exit 130, instead of Python's traceback of the import (which ``--debug`` or
RNNKIT_DEBUG=1 still shows). Everything else is :func:`rnnkit.cli.main.main`."""
import os
import sys


def main():
    try:
        from rnnkit.cli.main import main as command
        return command()
    except KeyboardInterrupt:
        if "--debug" in sys.argv[1:] or os.environ.get("RNNKIT_DEBUG", "").strip().lower() \
                not in ("", "0", "false", "off", "no"):   # rnnkit.OFF, without importing torch
            raise
        print("\nrnnkit: interrupted", file=sys.stderr)
        return 130
