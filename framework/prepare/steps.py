"""Pipeline steps of our own, in datatrove's step interface: text cleaning, length bounds, and
the train/validation split."""

from __future__ import annotations

import hashlib
import unicodedata

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter

from framework.data.cleaning import clean, validate_cleaning
from framework.errors import ConfigError


class CleanText(PipelineStep):
    """Applies :func:`framework.data.cleaning.clean` with ``steps`` to each document's text;
    documents left empty are dropped (counted as ``emptied``).

    Raises:
        ConfigError: an unknown step name.
    """

    name = "clean"
    type = "✂️ - FORMAT"

    def __init__(self, steps: list[str]) -> None:
        super().__init__()
        validate_cleaning(steps, "filters.clean.steps")
        self.steps = list(steps)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for document in data:
            self.stat_update("total")
            document.text = clean(document.text, self.steps)
            if not document.text:
                self.stat_update("emptied")
                continue
            yield document


class LengthFilter(BaseFilter):
    """Keeps documents of ``min_chars`` to ``max_chars`` characters (inclusive).

    Raises:
        ConfigError: bounds that are negative or in the wrong order.
    """

    name = "length"

    def __init__(self, min_chars: int = 0, max_chars: int | None = None) -> None:
        super().__init__()
        if min_chars < 0 or (max_chars is not None and max_chars < min_chars):
            raise ConfigError(f"filters.length: min_chars={min_chars} and max_chars={max_chars} must satisfy 0 <= min_chars <= max_chars.")
        self.min_chars, self.max_chars = min_chars, max_chars

    def filter(self, document: Document) -> bool | tuple[bool, str]:
        if len(document.text) < self.min_chars:
            return False, "too_short"
        if self.max_chars is not None and len(document.text) > self.max_chars:
            return False, "too_long"
        return True


def normalize(text: str) -> str:
    """NFC, runs of whitespace as one space, stripped."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def normalized_text(document: Document) -> str:
    """The text exact deduplication compares: the document's, :func:`normalize`-d."""
    return normalize(document.text)


def validation_document(text: str, val_fraction: float) -> bool:
    """Whether a document of ``text`` belongs to the validation split: the first 8 bytes of the
    SHA-256 of its :func:`normalize`-d text, as a fraction of 2**64, below ``val_fraction``. A
    function of the text alone, so the split does not depend on order, tasks or machines, and
    texts that exact deduplication counts as copies land in the same split."""
    digest = hashlib.sha256(normalize(text).encode()).digest()
    return int.from_bytes(digest[:8], "big") < val_fraction * 2.0**64


class SplitFilter(BaseFilter):
    """Keeps the documents of one split (``train`` or ``val``), chosen by :func:`validation_document`."""

    name = "split"

    def __init__(self, split: str, val_fraction: float) -> None:
        super().__init__()
        self.split, self.val_fraction = split, val_fraction

    def filter(self, document: Document) -> bool:
        return validation_document(document.text, self.val_fraction) == (self.split == "val")
