"""A tokenizer read from a ``tokenizer.json`` instead of trained (``tokenizer=file``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer

from framework.errors import ConfigError, MissingInputError

FILE_TOKENIZER = "framework.tokenizer.tokenizer_from_file"


def tokenizer_from_file(train_text: str | Iterable[str] | None = None, path: str = "") -> Tokenizer:
    """The tokenizer saved at ``path`` (a run's ``tokenizer.json``, a prepared dataset's, or a
    Hugging Face one); ``train_text`` is not used (the signature of the trained options').

    Raises:
        MissingInputError: no file at ``path``.
        ConfigError: the file is not a ``tokenizers`` JSON file.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise MissingInputError(f"tokenizer.path={path} does not exist; give a tokenizer.json file (a run directory holds one).")
    try:
        return Tokenizer.from_file(str(file))
    except Exception as error:
        raise ConfigError(f"tokenizer.path={path} is not a tokenizer.json file ({error}).") from None
