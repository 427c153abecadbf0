"""``python -m rnnkit ...`` (and ``torchrun -m rnnkit ...``): the ``rnnkit`` command."""
import sys

from rnnkit.cli.main import main
from rnnkit import _end_import_guard

_end_import_guard()
sys.exit(main())
