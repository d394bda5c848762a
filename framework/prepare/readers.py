"""The input of a preparation: which files, and a datatrove reader for them.

Our readers (datatrove readers over an explicit file list) make every bad byte, line, record
or gzip stream a ``DataError`` naming the file and where.
Files are split between tasks by datatrove (file ``i`` of the sorted list goes to task
``i mod tasks``), so one large file is read by one task: cut large inputs into many files.
"""

from __future__ import annotations

import glob
import gzip
import io
import os
import re
import zlib
from pathlib import Path

from datatrove.pipeline.readers.base import BaseDiskReader

from framework.data.sources import check_corpus_file, decoded_blocks, jsonl_texts
from framework.errors import ConfigError, DataError, MissingInputError

SUFFIXES = (".txt", ".jsonl", ".jsonl.gz", ".parquet")
ENCODING_ERRORS = ("strict", "replace")


def suffix_of(path: Path) -> str:
    """The input suffix of ``path`` (``.jsonl.gz`` counts as one), or its last suffix."""
    return ".jsonl.gz" if path.name.endswith(".jsonl.gz") else path.suffix


def input_files(pattern: str, setting: str = "input.path") -> list[Path]:
    """The files ``pattern`` (the value of ``setting``) names, absolute and sorted; each an
    existing, non-empty regular file of one of :data:`SUFFIXES`, all of the same suffix.

    Raises:
        MissingInputError: nothing matches (or the file does not exist).
        ConfigError: an unsupported suffix, or several suffixes mixed.
    """
    pattern = os.path.expanduser(pattern)
    if glob.has_magic(pattern):
        paths = sorted(Path(path).resolve() for path in glob.glob(pattern, recursive=True) if Path(path).is_file())
        if not paths:
            raise MissingInputError(f"{setting}={pattern!r} matches no file.")
    else:
        paths = [Path(pattern).resolve()]
    for path in paths:
        check_corpus_file(path, "Input file", setting)
    suffixes = sorted({suffix_of(path) for path in paths})
    if suffixes[0] not in SUFFIXES or len(suffixes) > 1:
        raise ConfigError(
            f"{setting}={pattern!r} matches files with suffixes {suffixes}; give files of one of {', '.join(SUFFIXES)} "
            "(prepare several kinds as separate sources)."
        )
    return paths


class _LocalFilesReader(BaseDiskReader):
    """A datatrove reader over an explicit list of local files (``files``, absolute paths)."""

    def __init__(self, files: list[Path], text_field: str, encoding_errors: str) -> None:
        root = Path(os.path.commonpath([str(path.parent) for path in files]))
        super().__init__(str(root), text_key="text", recursive=True, glob_pattern=None)
        self.relative = sorted(str(path.relative_to(root)) for path in files)
        self.root, self.text_field, self.encoding_errors = root, text_field, encoding_errors

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if data:
            yield from data
        for document in self.read_files_shard(self.relative[rank::world_size]):
            self.update_doc_stats(document)
            yield document

    def document(self, text: str, filepath: str, index: int):
        """A datatrove Document of ``text`` (None for empty text, which readers skip)."""
        return self.get_document_from_dict({"text": text}, filepath, index) if text else None

    def _open(self, path: Path):
        raw = path.open("rb")
        return gzip.GzipFile(fileobj=raw) if path.name.endswith(".gz") else raw


TXT_DOCUMENTS = ("file", "paragraphs")
BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")


class TextFileReader(_LocalFilesReader):
    """``.txt`` files: one document per file (``documents="file"``), or per paragraph
    (``"paragraphs"``: pieces between blank lines)."""

    name = "📄 text files"

    def __init__(self, files: list[Path], encoding_errors: str = "strict", documents: str = "file") -> None:
        super().__init__(files, "text", encoding_errors)
        self.documents = documents

    def read_file(self, filepath: str):
        path = self.root / filepath
        with path.open("rb") as file:
            text = "".join(decoded_blocks(file, path, self.encoding_errors, "input.encoding_errors"))
        pieces = BLANK_LINES.split(text) if self.documents == "paragraphs" else [text]
        for index, piece in enumerate(piece for piece in pieces if piece.strip()):
            yield self.document(piece, filepath, index)


class JsonlFileReader(_LocalFilesReader):
    """``.jsonl`` and ``.jsonl.gz`` files: one document per record's ``text_field``.

    Raises (when read):
        DataError: a truncated or corrupt gzip stream, invalid UTF-8 (with ``strict``), a line
            that is not a JSON object, or a record without a string ``text_field``; each naming
            the file and line.
    """

    name = "🐿 jsonl files"

    def read_file(self, filepath: str):
        path = self.root / filepath
        try:
            with self._open(path) as file:
                for line_number, text in jsonl_texts(io.BufferedReader(file), path, self.text_field, self.encoding_errors, "input"):
                    if document := self.document(text, filepath, line_number):
                        yield document
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            raise DataError(f"{path} is not a complete gzip file ({error}); check the file or download it again.") from None


class ParquetFileReader(_LocalFilesReader):
    """``.parquet`` files: one document per row's ``text_field`` (read a row group at a time).

    Raises (when read):
        DataError: a file without a string column ``text_field``, or one pyarrow cannot read.
    """

    name = "📒 parquet files"

    def read_file(self, filepath: str):
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.root / filepath
        try:
            table = pq.ParquetFile(path)
        except Exception as error:  # pyarrow raises several types for a damaged file
            raise DataError(f"{path} cannot be read as Parquet ({error}).") from None
        schema = table.schema_arrow
        field = schema.field(self.text_field) if self.text_field in schema.names else None
        if field is None or not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            columns = ", ".join(f"{column.name} ({column.type})" for column in schema)
            raise DataError(
                f"{path} has no string column {self.text_field!r} (columns: {columns}); set input.text_field to the column that holds the text."
            )
        row = 0
        for batch in table.iter_batches(columns=[self.text_field]):
            for text in batch.column(0).to_pylist():
                if document := self.document(text, filepath, row):
                    yield document
                row += 1


def build_reader(input_config, files: list[Path], key: str = "input"):
    """The datatrove reader for ``files`` (from :func:`input_files`) with ``input_config``'s
    settings (``key``: where they are in the config, for messages). ``encoding_errors`` applies
    to text and JSONL; Parquet strings are UTF-8 by the format.

    Raises:
        ConfigError: ``encoding_errors`` or ``txt_documents`` not a valid value.
    """
    if input_config.encoding_errors not in ENCODING_ERRORS:
        raise ConfigError(f"{key}.encoding_errors={input_config.encoding_errors!r}; valid values are {', '.join(ENCODING_ERRORS)}.")
    suffix = suffix_of(files[0])
    if input_config.txt_documents not in TXT_DOCUMENTS:
        raise ConfigError(f"{key}.txt_documents={input_config.txt_documents!r}; valid values are {', '.join(TXT_DOCUMENTS)}.")
    if suffix == ".txt":
        return TextFileReader(files, input_config.encoding_errors, input_config.txt_documents)
    if suffix == ".parquet":
        return ParquetFileReader(files, input_config.text_field, input_config.encoding_errors)
    return JsonlFileReader(files, input_config.text_field, input_config.encoding_errors)
