"""``python -m framework.consolidate``: the consolidate command (``framework.cli.consolidate``)."""

from framework.cli.consolidate import main

if __name__ == "__main__":
    main()
