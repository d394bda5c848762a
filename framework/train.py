"""``python -m framework.train``: the training command (``framework.cli.train``)."""

from framework.cli.train import main

if __name__ == "__main__":
    main()
