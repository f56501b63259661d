"""``python -m viaseg.core ...``: the same as ``viaseg ...``."""

import sys

from .cli import main

sys.exit(main())
