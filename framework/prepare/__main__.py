"""``python -m framework.prepare``: the corpus preparation command (``framework.cli.prepare``)."""

from framework.cli.prepare import main

if __name__ == "__main__":
    main()
