"""``python -m rnnkit ...`` (and ``torchrun -m rnnkit ...``): the ``rnnkit`` command."""
import sys

from rnnkit.cli.main import main

sys.exit(main())
