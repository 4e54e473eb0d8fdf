"""``python -m simdsoftmax.bench``: the same as the ``simdsoftmax-bench`` command."""

import sys

from .cli import main

sys.exit(main())
