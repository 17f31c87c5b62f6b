"""``python -m sodctl``: the same as the ``sodctl`` console script."""

import sys

from sodctl.cli import main

sys.exit(main())
