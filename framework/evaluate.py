"""``python -m framework.evaluate``: the evaluate command (``framework.cli.evaluate``)."""

from framework.cli.evaluate import main

if __name__ == "__main__":
    main()
