"""``python -m sodctl``: the same as the ``sodctl`` console script."""

import sys

from sodctl.cli import main

if __name__ == "__main__":  # not when a spawned worker (engine.jobs > 1) imports it
    sys.exit(main())
