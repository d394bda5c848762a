"""``python -m framework.reproduce``: the reproduce command (``framework.cli.reproduce``)."""

import sys

from framework.cli.reproduce import main

if __name__ == "__main__":
    sys.exit(main())
