"""``python -m scratchae``: the same as the ``scratchae`` command."""

import sys

from .cli import main

sys.exit(main())
