"""``python -m framework.compare``: the compare command (``framework.cli.compare``)."""

from framework.cli.compare import main

if __name__ == "__main__":
    main()
