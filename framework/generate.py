"""``python -m framework.generate``: the generate command (``framework.cli.generate``)."""

from framework.cli.generate import main

if __name__ == "__main__":
    main()
