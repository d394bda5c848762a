"""``python -m framework.predict``: the predict command (``framework.cli.predict``)."""

from framework.cli.predict import main

if __name__ == "__main__":
    main()
