"""Corpus sources: where raw text comes from. Each is selected by a file in ``conf/data/``.

A source's ``read()`` returns the corpus as a list of :class:`Document` in a fixed order, so the
same inputs always give the same text and the same content hash.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import sysconfig
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from framework.errors import ConfigError, DataError, DirectoryInputError, MissingInputError, UnreadableInputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Document:
    """One file's text. ``name`` identifies it in error messages and the content hash."""

    name: str
    text: str


def require_file(path: Path, kind: str = "Corpus file", setting: str = "data.path") -> None:
    """Raise FileNotFoundError or IsADirectoryError unless ``path`` is an existing file.

    ``kind`` and ``setting`` name the file and the setting it came from in the message.
    """
    if not path.exists():
        raise MissingInputError(f"{kind} {path} does not exist; check {setting}.")
    if path.is_dir():
        raise DirectoryInputError(f"{kind} {path} is a directory; give a file (or for data.path a glob such as '{path}/*.txt').")


def read_text_file(path: Path, errors: str = "strict", kind: str = "Corpus file", setting: str = "data.path") -> str:
    """Read ``path`` as UTF-8.

    Args:
        path: a regular file.
        errors: ``strict`` (the default) refuses invalid UTF-8; ``replace`` substitutes U+FFFD.
        kind, setting: how messages name the file and the setting it came from.

    Raises:
        MissingInputError: ``path`` does not exist.
        DirectoryInputError: ``path`` is a directory.
        UnreadableInputError: ``path`` cannot be read.
        DataError: an empty file, or invalid UTF-8 under ``errors="strict"`` (naming the file
            and byte offset).
    """
    require_file(path, kind, setting)
    try:
        raw = path.read_bytes()
    except PermissionError:
        raise UnreadableInputError(f"{kind} {path} exists but cannot be read (permission denied); check its permissions.") from None
    if not raw:
        raise DataError(f"{kind} {path} is empty.")
    try:
        return raw.decode("utf-8", errors=errors)
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path} is not valid UTF-8: byte 0x{raw[error.start]:02x} at byte offset {error.start}. "
            "Convert the file to UTF-8, or set data.source.encoding_errors=replace to substitute U+FFFD."
        ) from None


class StdlibSource:
    """The running Python's standard library: its top-level ``*.py`` files sorted by name.

    Real text (code and docstrings, about 4-5 MB) that every machine already has, so the quick
    start needs no download.
    """

    def __init__(self, directory: str | None = None) -> None:
        self.directory = Path(directory or sysconfig.get_paths()["stdlib"])

    def read(self) -> list[Document]:
        """Return one :class:`Document` per ``*.py`` file directly inside the stdlib directory."""
        paths = sorted(self.directory.glob("*.py"))
        if not paths:
            raise MissingInputError(f"No *.py files found in the standard library directory {self.directory}.")
        return [Document(path.name, read_text_file(path, errors="replace")) for path in paths]


class TextFilesSource:
    """Local text: one file or a glob of ``.txt``, ``.md``, ``.py`` or ``.jsonl`` files.

    Args:
        path: a file path or glob pattern; relative paths resolve against the directory the
            command was started in. Matches are read in sorted order.
        text_field: the field holding the text in ``.jsonl`` records.
        encoding_errors: ``strict`` or ``replace`` (see :func:`read_text_file`).

    Raises:
        ConfigError: empty ``path``, an unknown ``encoding_errors`` or an unsupported extension.
        MissingInputError: no file matches the glob (see also :func:`read_text_file`).
        DataError: a ``.jsonl`` line that is not a JSON object with ``text_field``.
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

    def read(self) -> list[Document]:
        """Return one :class:`Document` per file, or per record for ``.jsonl`` files."""
        documents = []
        for path in self._paths():
            require_file(path)
            if path.suffix not in self.SUFFIXES:
                raise ConfigError(f"{path} has extension {path.suffix!r}; supported: {', '.join(self.SUFFIXES)}.")
            text = read_text_file(path, self.encoding_errors)
            if path.suffix == ".jsonl":
                documents.extend(self._jsonl_documents(path, text))
            else:
                documents.append(Document(str(path), text))
        return documents

    def _jsonl_documents(self, path: Path, text: str) -> list[Document]:
        documents = []
        for line_number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{line_number} is not valid JSON ({error.msg}).") from None
            if not isinstance(record, dict) or not isinstance(record.get(self.text_field), str):
                raise DataError(
                    f"{path}:{line_number} has no string field {self.text_field!r}; "
                    "set data.source.text_field to the field that holds the text."
                )
            documents.append(Document(f"{path}:{line_number}", record[self.text_field]))
        return documents


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

    def read(self) -> list[Document]:
        """Return the corpus as one :class:`Document`."""
        path = self.path or self.cached_path
        if self.path is None and not path.exists():
            self._download(path)
        return [Document("tinyshakespeare/input.txt", read_text_file(path))]

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
