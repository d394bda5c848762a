"""Labelled text for classification: reading TSV/CSV/JSONL files and encoding them to fixed length."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from tokenizers import Tokenizer

from framework.data.sources import json_record, read_text_file
from framework.errors import ConfigError, DataError

Format = Literal["tsv", "csv", "jsonl"]
Quoting = Literal["none", "minimal"]
Side = Literal["pre", "post"]
SPLITS = ("train", "val", "test")
# The draw of data.train_examples: fixed, so runs of every seed see the same subset.
TRAIN_SUBSET_SEED = 0


@dataclass(frozen=True)
class LabelledTextFiles:
    """Where labelled examples are and how to read and shape them (``conf/data/sst2.yaml``).

    Args:
        path: the directory holding the split files.
        train_file, val_file, test_file: file names inside ``path``; ``test_file`` may be null.
        format: ``tsv``, ``csv`` or ``jsonl``. Records are separated by ``\\n`` only, so a ``\\r``,
            form feed or U+2028 inside a text stays part of it.
        text_column, label_column: column names (``header: true``), column indices from 0
            (``header: false``; ``data.text_column=0``), or JSONL field names.
        header: whether the first line of a TSV/CSV file names the columns.
        quoting: ``none`` takes quote marks literally (SST-2 has stray ones); ``minimal`` reads
            CSV-style ``"quoted, fields"``.
        train_examples: use only this many training examples, drawn at random (a fixed draw,
            the same for every run and seed) in file order; null: all of them.
        max_length: tokens per example after padding/truncation.
        padding, truncation: ``pre`` pads/cuts at the front (the classic Keras default), ``post``
            at the end.
        batch_size: examples per batch (per process).
        num_workers: DataLoader worker processes.
    """

    path: str
    train_file: str
    val_file: str
    test_file: str | None = None
    format: Format = "tsv"
    text_column: str | int = "sentence"
    label_column: str | int = "label"
    header: bool = True
    quoting: Quoting = "none"
    train_examples: int | None = None
    max_length: int = 100
    padding: Side = "pre"
    truncation: Side = "pre"
    batch_size: int = 32
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.max_length < 1:
            raise ConfigError(f"data.max_length={self.max_length} must be at least 1 token.")
        if self.batch_size < 1:
            raise ConfigError(f"data.batch_size={self.batch_size} must be at least 1.")
        if self.train_examples is not None and self.train_examples < 1:
            raise ConfigError(f"data.train_examples={self.train_examples} must be null (all) or at least 1.")

    def file(self, split: str) -> Path:
        """The file of ``split`` (train, val or test).

        Raises:
            ConfigError: the split has no file configured (``data.test_file: null``).
        """
        name = {"train": self.train_file, "val": self.val_file, "test": self.test_file}[split]
        if name is None:
            raise ConfigError(f"data.{split}_file is null: this dataset has no {split} split configured.")
        return Path(self.path).expanduser() / name

    def read(self, split: str) -> tuple[list[str], list[str]]:
        """The texts and labels (as written in the file) of ``split``; for ``train``, the
        ``train_examples`` subset.

        Raises:
            DataError: ``train_examples`` larger than the training file.
        """
        texts, labels = read_labelled_file(self.file(split), self.format, self.text_column, self.label_column, self.header, self.quoting)
        if split != "train" or self.train_examples is None:
            return texts, labels
        if self.train_examples > len(texts):
            raise DataError(f"data.train_examples={self.train_examples}, but {self.file(split)} has only {len(texts)} examples.")
        kept = np.sort(np.random.default_rng(TRAIN_SUBSET_SEED).permutation(len(texts))[: self.train_examples])
        return [texts[i] for i in kept], [labels[i] for i in kept]


def _column_index(path: Path, columns: list[str], wanted: str | int, key: str, header: bool) -> int:
    if header:
        if str(wanted) not in columns:
            raise DataError(f"{path} has no column '{wanted}' (data.{key}); its header has {columns}.")
        return columns.index(str(wanted))
    if not str(wanted).isdigit() or int(wanted) >= len(columns):
        raise DataError(
            f"data.{key}={wanted!r}: {path} has no header (data.header=false), so columns are numbered "
            f"0..{len(columns) - 1}; give one of those."
        )
    return int(wanted)


def read_labelled_file(
    path: Path, format: Format, text_column: str | int, label_column: str | int, header: bool, quoting: Quoting
) -> tuple[list[str], list[str]]:
    """Read ``(texts, labels)`` from one TSV, CSV or JSONL file; records end at ``\\n`` only.

    Raises:
        MissingInputError, DirectoryInputError, DataError: a missing file, a directory, invalid
            UTF-8, a missing column or field, or a record with too few fields (named by line).
    """
    lines = read_text_file(path, kind="Labelled data file", setting="data.path and data.<split>_file").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if format == "jsonl":
        return _read_jsonl(path, lines, str(text_column), str(label_column))
    rows = _fields(path, lines, "\t" if format == "tsv" else ",", quoting)
    first = rows[0] if rows else []
    text_index = _column_index(path, first, text_column, "text_column", header)
    label_index = _column_index(path, first, label_column, "label_column", header)
    texts, labels = [], []
    for number, row in enumerate(rows[1:] if header else rows, start=2 if header else 1):
        if len(row) != len(first):
            hint = " A text containing the delimiter needs CSV quoting: data.quoting=minimal." if quoting == "none" else ""
            raise DataError(f"{path} line {number} has {len(row)} field(s), but line 1 has {len(first)}.{hint}")
        texts.append(row[text_index])
        labels.append(row[label_index].strip())
    return texts, labels


# csv refuses a bare carriage return inside a field; it stands in for one while parsing.
_CARRIAGE_RETURN_STAND_IN = "\ue000"


def _fields(path: Path, lines: list[str], delimiter: str, quoting: Quoting) -> list[list[str]]:
    """Each line's fields: split at ``delimiter`` as is (``none``), or CSV-style quoted fields."""
    if quoting == "none":
        return [line.split(delimiter) for line in lines]
    reader = csv.reader((line.replace("\r", _CARRIAGE_RETURN_STAND_IN) for line in lines), delimiter=delimiter, strict=True)
    try:
        return [[field.replace(_CARRIAGE_RETURN_STAND_IN, "\r") for field in row] for row in reader]
    except csv.Error as error:
        raise DataError(f"{path} line {reader.line_num}: {error}; for files with stray quote marks use data.quoting=none.") from None


def _read_jsonl(path: Path, lines: list[str], text_field: str, label_field: str) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = json_record(path, number, line)
        missing = [field for field in (text_field, label_field) if field not in record]
        if missing:
            raise DataError(f"{path} line {number} has no field {missing[0]!r}; its fields are {sorted(record)}.")
        texts.append(str(record[text_field]))
        labels.append(str(record[label_field]).strip())
    return texts, labels


def label_names(train_labels: list[str]) -> list[str]:
    """The classes in index order: sorted numerically when all labels are integers, else as text."""
    names = sorted(set(train_labels))
    return sorted(names, key=int) if all(name.lstrip("-").isdigit() for name in names) else names


def label_ids(labels: list[str], names: list[str], path: Path) -> np.ndarray:
    """``labels`` as int64 class indices into ``names``.

    Raises:
        DataError: a label that the training split does not have (named, with its file).
    """
    index = {name: position for position, name in enumerate(names)}
    unknown = sorted(set(labels) - index.keys())
    if unknown:
        raise DataError(f"{path} has label(s) {unknown[:5]} that the training split does not have; its labels are {names}.")
    return np.array([index[label] for label in labels], dtype=np.int64)


PAD_TOKENS = ("<pad>", "[PAD]")


def pad_id(tokenizer: Tokenizer, pretrained: bool = False) -> int:
    """The tokenizer's ``<pad>`` (or BERT's ``[PAD]``) id; without one, one past its vocabulary,
    or 0 for a model whose embedding comes from a pretrained one (``model.init_from``: it has no
    row to spare; padding is masked, so any id serves)."""
    for token in PAD_TOKENS:
        found = tokenizer.token_to_id(token)
        if found is not None:
            return found
    return 0 if pretrained else tokenizer.get_vocab_size()


def encode_padded(
    tokenizer: Tokenizer, texts: list[str], max_length: int, padding: Side, truncation: Side, pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """Encode ``texts`` to ``(ids, mask)``, each ``(len(texts), max_length)``: int64 ids and a bool
    mask that is True on real tokens.

    Longer encodings lose tokens at the front (``truncation="pre"``) or end; shorter ones are
    filled with ``pad`` at the front (``padding="pre"``) or end. Real tokens are always
    contiguous. A text with no tokens becomes one token ``pad`` marked real, so every example has
    at least one position to read. A tokenizer that adds special tokens (WordPiece's
    ``[CLS] ... [SEP]``) has its text cut first and the special tokens added after, so they are
    never cut off.
    """
    ids = np.full((len(texts), max_length), pad, dtype=np.int64)
    mask = np.zeros((len(texts), max_length), dtype=bool)
    special = tokenizer.num_special_tokens_to_add(False)
    if special >= max_length:
        raise ConfigError(f"data.max_length={max_length} leaves no room for text beside the tokenizer's {special} special tokens.")
    for row, encoding in enumerate(tokenizer.encode_batch(texts, add_special_tokens=False)):
        if special:
            encoding.truncate(max_length - special, direction="left" if truncation == "pre" else "right")
            encoding = tokenizer.post_process(encoding)
        tokens = encoding.ids or [pad]
        tokens = tokens[-max_length:] if truncation == "pre" else tokens[:max_length]
        start = max_length - len(tokens) if padding == "pre" else 0
        ids[row, start : start + len(tokens)] = tokens
        mask[row, start : start + len(tokens)] = True
    return ids, mask
