"""``python -m viaseg.core.cli ...``: the same as ``viaseg ...`` (what multi-worker launches and docs use)."""

import sys

from . import main

sys.exit(main())
