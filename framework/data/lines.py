"""Plain text as one example per line, for masked language modelling (``data=text_lines``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from framework.data.labelled import Side
from framework.data.sources import TextFilesSource
from framework.data.token_cache import check_val_fraction, split_boundary
from framework.errors import ConfigError, DataError


@dataclass(frozen=True)
class TextLines:
    """Every non-empty line of local text files is one example (``conf/data/text_lines.yaml``).

    Args:
        path: a file or a glob of ``.txt``, ``.md``, ``.py`` or ``.jsonl`` files (a ``.jsonl``
            record's ``text`` field), read in sorted order.
        val_fraction: the last share of the lines validates (nanoGPT's split, counted in lines).
        max_length: tokens per example, special tokens included; longer lines are cut.
        padding, truncation: ``post`` (BERT's layout) or ``pre``, as for labelled files.
        batch_size: examples per batch (per process). num_workers: DataLoader workers.
        encoding_errors: ``strict`` refuses invalid UTF-8, ``replace`` substitutes U+FFFD.

    Raises:
        ConfigError: ``max_length`` or ``batch_size`` below 1, ``val_fraction`` outside (0, 1).
    """

    path: str
    val_fraction: float = 0.1
    max_length: int = 128
    padding: Side = "post"
    truncation: Side = "post"
    batch_size: int = 32
    num_workers: int = 0
    encoding_errors: str = "strict"

    def __post_init__(self) -> None:
        if self.max_length < 1:
            raise ConfigError(f"data.max_length={self.max_length} must be at least 1 token.")
        if self.batch_size < 1:
            raise ConfigError(f"data.batch_size={self.batch_size} must be at least 1.")
        check_val_fraction(self.val_fraction)

    def file(self, split: str) -> Path:
        """The files the lines of ``split`` come from (for messages)."""
        return Path(self.path)

    def read(self, split: str) -> tuple[list[str], None]:
        """The non-empty lines (stripped) of ``split``, ``train`` or ``val``, and no labels.

        Raises:
            DataError: fewer than 2 lines, or a split that would be empty.
        """
        source = TextFilesSource(self.path, encoding_errors=self.encoding_errors)
        lines = [line.strip() for document in source.read() for line in "".join(document.blocks()).split("\n") if line.strip()]
        boundary = split_boundary(len(lines), self.val_fraction)
        if not 0 < boundary < len(lines):
            raise DataError(
                f"data.path={self.path} has {len(lines)} non-empty line(s); with data.val_fraction={self.val_fraction} "
                "the train or val split would be empty. Give more lines or another val_fraction."
            )
        return (lines[:boundary] if split == "train" else lines[boundary:]), None
