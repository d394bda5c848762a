"""Corpus sources: where raw text comes from. Each is selected by a file in ``conf/data/``.

A source's ``read()`` returns the corpus as documents in a fixed order, so the same inputs always
give the same text and content hash; the text and Tiny Shakespeare sources first check that their
files exist, are regular, non-empty and readable.
Documents are read lazily, in blocks, each time they are iterated: a corpus larger than memory
can be hashed, cleaned and tokenized in bounded memory (``framework.data.token_cache``).
"""

from __future__ import annotations

import codecs
import glob
import hashlib
import json
import logging
import os
import stat
import sysconfig
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from framework.errors import ConfigError, DataError, DirectoryInputError, MissingInputError, UnreadableInputError

log = logging.getLogger(__name__)

BLOCK_BYTES = 1 << 20


class TextDocument(Protocol):
    """A document of a corpus: a name for messages, and its text as a stream of blocks."""

    @property
    def name(self) -> str: ...

    def blocks(self) -> Iterator[str]:
        """The text, as consecutive blocks, read afresh on each call."""
        ...


@dataclass(frozen=True)
class Document:
    """A document held in memory. ``name`` identifies it in error messages."""

    name: str
    text: str

    def blocks(self) -> Iterator[str]:
        """The text, as one block."""
        yield self.text


@dataclass(frozen=True)
class TextFileDocument:
    """A UTF-8 file, read in blocks of about ``BLOCK_BYTES`` each time :meth:`blocks` is called.

    Attributes:
        path: a UTF-8 text file.
        errors: ``strict`` refuses invalid UTF-8; ``replace`` substitutes U+FFFD.
    """

    path: Path
    errors: str = "strict"

    @property
    def name(self) -> str:
        """The file's path, as given."""
        return str(self.path)

    def blocks(self) -> Iterator[str]:
        """The file's text in blocks of the characters of ``BLOCK_BYTES`` bytes (give or take a
        character cut at a block's end, which goes with the next block).

        Raises:
            DataError: invalid UTF-8 under ``errors="strict"``, naming the file and byte offset.
        """
        with open_text_file(self.path) as file:
            yield from decoded_blocks(file, self.path, self.errors)


def decoded_blocks(file: BinaryIO, path: Path, errors: str = "strict", setting: str = "data.source.encoding_errors") -> Iterator[str]:
    """Decode ``file`` (opened in binary mode) as UTF-8, ``BLOCK_BYTES`` at a time.

    Raises:
        DataError: invalid UTF-8 under ``errors="strict"``, naming ``path``, the byte offset
            and the ``setting`` that would replace it.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors)
    offset = 0  # bytes handed to the decoder before this block
    while True:
        raw = file.read(BLOCK_BYTES)
        try:
            text = decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as error:
            held = len(error.object) - len(raw)  # an incomplete character kept from the block before
            raise DataError(invalid_utf8_message(path, error.object[error.start], offset - held + error.start, setting)) from None
        if text:
            yield text
        if not raw:
            return
        offset += len(raw)


def invalid_utf8_message(path: Path, byte: int, offset: int, setting: str = "data.source.encoding_errors") -> str:
    """The message for invalid UTF-8 in ``path``: the ``byte`` at fault, its ``offset`` in bytes,
    the remedies (``setting`` chooses replacement)."""
    return (
        f"{path} is not valid UTF-8: byte 0x{byte:02x} at byte offset {offset}. "
        f"Convert the file to UTF-8, or set {setting}=replace to substitute U+FFFD."
    )


def json_record(path: Path, line_number: int, line: str) -> dict:
    """Line ``line_number`` (from 1) of the JSONL file ``path``, parsed as a JSON object.

    Raises:
        DataError: the line is not valid JSON, or not an object.
    """
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{path} line {line_number} is not valid JSON ({error.msg} at column {error.colno}).") from None
    if not isinstance(record, dict):
        raise DataError(f"{path} line {line_number} is not a JSON object with named fields: {line.strip()[:60]!r}.")
    return record


def jsonl_texts(file: BinaryIO, path: Path, text_field: str, errors: str, settings: str) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each non-blank line of the JSONL ``file`` (binary), the text
    being the record's ``text_field``.

    Raises:
        DataError: invalid UTF-8 under ``errors="strict"``, a line that is not a JSON object, or
            a record without a string ``text_field``; each naming ``path``, the line or offset,
            and the key under ``settings`` (``data.source``, ``input``) that would fix it.
    """
    offset = 0
    for line_number, raw in enumerate(file, start=1):
        try:
            line = raw.decode("utf-8", errors)
        except UnicodeDecodeError as error:
            raise DataError(invalid_utf8_message(path, raw[error.start], offset + error.start, f"{settings}.encoding_errors")) from None
        offset += len(raw)
        if not line.strip():
            continue
        record = json_record(path, line_number, line)
        if not isinstance(record.get(text_field), str):
            raise DataError(
                f"{path} line {line_number} has no string field {text_field!r} (its fields: {', '.join(record) or 'none'}); "
                f"set {settings}.text_field to the field that holds the text."
            )
        yield line_number, record[text_field]


def require_file(path: Path, kind: str = "Corpus file", setting: str = "data.path") -> None:
    """Raise FileNotFoundError or IsADirectoryError unless ``path`` is an existing file.

    ``kind`` and ``setting`` name the file and the setting it came from in the message.
    """
    if not path.exists():
        raise MissingInputError(f"{kind} {path} does not exist; check {setting}.")
    if path.is_dir():
        raise DirectoryInputError(f"{kind} {path} is a directory; give a file or, for {setting}, a glob such as '{path}/*.txt'.")


def open_text_file(path: Path, kind: str = "Corpus file", setting: str = "data.path") -> BinaryIO:
    """Open ``path`` for reading in binary mode, after checking it exists and can be read, and,
    for a regular file, is not empty (a pipe or device is not checked for emptiness here).

    Raises:
        MissingInputError: ``path`` does not exist.
        DirectoryInputError: ``path`` is a directory.
        UnreadableInputError: ``path`` cannot be read.
        DataError: an empty regular file.
    """
    require_file(path, kind, setting)
    try:
        file = path.open("rb")
    except PermissionError:
        raise UnreadableInputError(f"{kind} {path} exists but cannot be read (permission denied); check its permissions.") from None
    status = os.fstat(file.fileno())
    if stat.S_ISREG(status.st_mode) and status.st_size == 0:
        file.close()
        raise DataError(empty_file_message(path, kind))
    return file


def empty_file_message(path: Path, kind: str) -> str:
    """The message for an input file with no content."""
    return f"{kind} {path} is empty."


def check_corpus_file(path: Path, kind: str = "Corpus file", setting: str = "data.path") -> None:
    """Check that ``path`` can serve as a corpus file: an existing, readable, non-empty regular
    file. A pipe or device is refused, since the corpus is read twice (to hash it, then to
    tokenize it).

    Raises:
        DataError: not a regular file, or empty (see :func:`open_text_file` for the others).
    """
    require_file(path, kind, setting)
    if not stat.S_ISREG(path.stat().st_mode):  # checked before opening: opening a FIFO waits for a writer
        raise DataError(
            f"{kind} {path} is not a regular file (a pipe or device?). The corpus is read twice, once to hash it "
            f"and once to tokenize it; write it to a file and point {setting} there."
        )
    open_text_file(path, kind, setting).close()


def read_text_file(path: Path, errors: str = "strict", kind: str = "Corpus file", setting: str = "data.path") -> str:
    """Read all of ``path`` as UTF-8 (for files small enough to hold whole).

    Args:
        path: a regular file.
        errors: ``strict`` (the default) refuses invalid UTF-8; ``replace`` substitutes U+FFFD.
        kind, setting: how messages name the file and the setting it came from.

    Raises:
        MissingInputError, DirectoryInputError, UnreadableInputError: see :func:`open_text_file`.
        DataError: an empty file, or invalid UTF-8 under ``errors="strict"`` (naming the file
            and byte offset).
    """
    with open_text_file(path, kind, setting) as file:
        text = "".join(decoded_blocks(file, path, errors))
    if not text:  # a pipe or device that gave nothing
        raise DataError(empty_file_message(path, kind))
    return text


class DocumentStream:
    """Documents that are produced anew, lazily, each time the stream is iterated (so a corpus
    can be read twice, to hash it and then to tokenize it, without holding it).

    Args:
        produce: returns a fresh iterator over the documents, in a fixed order.
    """

    def __init__(self, produce: Callable[[], Iterator[TextDocument]]) -> None:
        self.produce = produce

    def __iter__(self) -> Iterator[TextDocument]:
        return self.produce()


class StdlibSource:
    """The running Python's standard library: its top-level ``*.py`` files sorted by name.

    Real text (code and docstrings, about 4-5 MB) that every machine already has, so the quick
    start needs no download.
    """

    def __init__(self, directory: str | None = None) -> None:
        self.directory = Path(directory or sysconfig.get_paths()["stdlib"])

    def read(self) -> list[TextFileDocument]:
        """One document per ``*.py`` file directly inside the stdlib directory (invalid UTF-8 replaced)."""
        paths = sorted(self.directory.glob("*.py"))
        if not paths:
            raise MissingInputError(f"No *.py files found in the standard library directory {self.directory}.")
        return [TextFileDocument(path, errors="replace") for path in paths]


class TextFilesSource:
    """Local text: one file or a glob of ``.txt``, ``.md``, ``.py`` or ``.jsonl`` files.

    Args:
        path: a file path or glob pattern; relative paths resolve against the directory the
            command was started in. Matches are read in sorted order.
        text_field: the field holding the text in ``.jsonl`` records.
        encoding_errors: ``strict`` or ``replace`` (see :func:`read_text_file`).

    Raises:
        ConfigError: empty ``path``, an unknown ``encoding_errors`` or an unsupported extension.
        MissingInputError: no file matches the glob (see also :func:`open_text_file`).
    """

    SUFFIXES = (".txt", ".md", ".py", ".jsonl")

    def __init__(self, path: str, text_field: str = "text", encoding_errors: str = "strict") -> None:
        if not path:
            raise ConfigError("data.path is empty; give a file or a glob such as 'corpus/*.txt'.")
        if encoding_errors not in ("strict", "replace"):
            raise ConfigError(f"data.source.encoding_errors={encoding_errors!r}; valid values are 'strict' and 'replace'.")
        self.path = os.path.expanduser(path)
        self.text_field = text_field
        self.encoding_errors = encoding_errors

    def _paths(self) -> list[Path]:
        if glob.has_magic(self.path):
            matches = sorted(Path(p) for p in glob.glob(self.path, recursive=True) if Path(p).is_file())
            if not matches:
                raise MissingInputError(f"The glob data.path={self.path!r} matches no file.")
            return matches
        return [Path(self.path)]

    def read(self) -> DocumentStream:
        """Check every file (exists, supported extension, regular, non-empty, readable) and return the
        documents: one per text file, one per record of a ``.jsonl`` file.

        Invalid UTF-8 and malformed ``.jsonl`` records are found when the stream is iterated
        (``DataError`` naming the file and byte offset or line), which the token cache does
        once, to hash the corpus, before any other work.
        """
        paths = self._paths()
        for path in paths:
            check_corpus_file(path)
            if path.suffix not in self.SUFFIXES:
                raise ConfigError(f"{path} has extension {path.suffix!r}; supported: {', '.join(self.SUFFIXES)}.")
        return DocumentStream(lambda: self._documents(paths))

    def _documents(self, paths: list[Path]) -> Iterator[TextDocument]:
        for path in paths:
            if path.suffix == ".jsonl":
                yield from self._jsonl_documents(path)
            else:
                yield TextFileDocument(path, self.encoding_errors)

    def _jsonl_documents(self, path: Path) -> Iterator[Document]:
        with open_text_file(path) as file:
            for line_number, text in jsonl_texts(file, path, self.text_field, self.encoding_errors, "data.source"):
                yield Document(f"{path}:{line_number}", text)


class TinyShakespeareSource:
    """Tiny Shakespeare (Karpathy, char-rnn, 2015): 1,115,394 characters, as used by nanoGPT.

    Read from ``path`` when given; otherwise from ``cache_dir``, downloading it there from
    ``url`` on first use and checking its sha256.

    Raises:
        MissingInputError: the file is absent and the download fails (offline), with how to supply it.
        DataError: a downloaded file whose sha256 differs from ``sha256``.
    """

    def __init__(self, url: str, sha256: str, cache_dir: str, path: str | None = None) -> None:
        self.url = url
        self.sha256 = sha256
        self.cached_path = Path(cache_dir).expanduser() / "tinyshakespeare" / "input.txt"
        self.path = Path(path).expanduser() if path else None

    def read(self) -> list[TextFileDocument]:
        """The corpus as one document."""
        path = self.path or self.cached_path
        if self.path is None and not path.exists():
            self._download(path)
        check_corpus_file(path)
        return [TextFileDocument(path)]

    def _download(self, destination: Path) -> None:
        log.info("Downloading Tiny Shakespeare from %s", self.url)
        try:
            with urllib.request.urlopen(self.url, timeout=30) as response:
                payload = response.read()
        except (urllib.error.URLError, OSError) as error:
            raise MissingInputError(
                f"Could not download Tiny Shakespeare from {self.url} ({error}). If this machine is "
                f"offline, copy input.txt (sha256 {self.sha256}) to {destination}, or pass "
                "data.path=/path/to/input.txt."
            ) from None
        digest = hashlib.sha256(payload).hexdigest()
        if digest != self.sha256:
            raise DataError(f"Downloaded {self.url} has sha256 {digest}, expected {self.sha256}; not saved.")
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_suffix(".partial")
        partial.write_bytes(payload)
        partial.replace(destination)
