"""``python -m framework.export``: the export command (``framework.cli.export``)."""

from framework.cli.export import main

if __name__ == "__main__":
    main()
