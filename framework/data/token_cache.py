"""Token cache: a corpus's encoded splits, written once and reused.

An entry is a directory named by a hash of everything that determines its content (source
text, cleaning, split, tokenizer config). It holds ``train.bin`` and ``val.bin`` (flat
uint16/uint32 arrays, read back as ``np.memmap``), ``tokenizer.json`` and ``meta.json``.
Entries are written to a temporary directory and renamed into place, so a crash never leaves
a half-written entry that a later run would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from tokenizers import Tokenizer

from framework.data.cleaning import clean_blocks, validate_cleaning
from framework.data.sources import TextDocument
from framework.errors import ConfigError, DataError
from framework.tokenizer import encode_to_file, token_dtype, tokenizer_hash

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 1
SPLITS = ("train", "val")


@dataclass(frozen=True)
class TokenizedCorpus:
    """A token cache entry, opened for reading.

    Attributes:
        directory: the entry's directory.
        tokenizer: the tokenizer that produced the ids.
        meta: the contents of ``meta.json`` (see :func:`prepare_corpus`).
        cache_hit: whether the entry existed before this call.
    """

    directory: Path
    tokenizer: Tokenizer
    meta: dict
    cache_hit: bool

    def tokens(self, split: str) -> np.memmap:
        """The ids of ``split`` (``train`` or ``val``) as a read-only 1-D memmap."""
        return np.memmap(self.directory / f"{split}.bin", dtype=np.dtype(self.meta["dtype"]), mode="r")

    @property
    def vocab_size(self) -> int:
        """Number of token ids, special tokens included."""
        return self.meta["vocab_size"]


class CorpusReading:
    """One read of a corpus: its text joined with a newline between documents, as a stream of
    blocks, hashed as it goes.

    The hash is sha256 over the documents' UTF-8 bytes, in order, each followed by its length
    in bytes (names are left out, so the same files reached through another path reuse the
    cache). After the stream is exhausted, :attr:`identity` is ``(hash, documents, bytes)``.

    Raises (while iterating):
        DataError: a document that cannot be decoded (see the sources' ``blocks``), or one
            holding a lone surrogate, which is not text any tokenizer can encode.
    """

    def __init__(self, documents: Iterable[TextDocument]) -> None:
        self.documents = documents
        self.identity: tuple[str, int, int] | None = None

    def __iter__(self) -> Iterator[str]:
        digest, count, total = hashlib.sha256(), 0, 0
        for count, document in enumerate(self.documents, start=1):
            if count > 1:
                yield "\n"
            size = 0
            for block in document.blocks():
                encoded = _utf8(block, document.name, size)
                digest.update(encoded)
                size += len(encoded)
                yield block
            digest.update(size.to_bytes(8, "little"))
            total += size
        self.identity = (digest.hexdigest(), count, total)


def _utf8(block: str, name: str, offset: int) -> bytes:
    """``block`` as UTF-8; DataError naming document ``name`` for a lone surrogate."""
    try:
        return block.encode("utf-8")
    except UnicodeEncodeError as error:
        code, at = ord(block[error.start]), offset + len(block[: error.start].encode("utf-8"))
        raise DataError(
            f"{name} holds a lone surrogate U+{code:04X} at byte {at} of its text in UTF-8, which is not valid Unicode "
            f"text and cannot be tokenized; remove it from the source (in JSONL, an unpaired \\u{code:04x} escape)."
        ) from None


def content_hash(documents: Iterable[TextDocument]) -> tuple[str, int, int]:
    """Read the documents once and return their :class:`CorpusReading` identity: the content
    hash, the number of documents and the total UTF-8 bytes."""
    reading = CorpusReading(documents)
    for _ in reading:
        pass
    return reading.identity


def check_val_fraction(val_fraction: float, setting: str = "data.val_fraction") -> None:
    """Raise ConfigError unless ``0 < val_fraction < 1`` (``setting`` names it in the message)."""
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"{setting}={val_fraction} must be between 0 and 1 (exclusive).")


def split_boundary(characters: int, val_fraction: float) -> int:
    """Where the split falls, in characters: the first ``1 - val_fraction`` of the text is
    train, the rest val (nanoGPT's ``n = int(0.9 * len(data))`` for ``val_fraction=0.1``).

    Raises:
        ConfigError: ``val_fraction`` outside (0, 1).
    """
    check_val_fraction(val_fraction)
    return int(characters * (1 - val_fraction))


def write_text(blocks: Iterable[str], path: Path) -> int:
    """Write ``blocks`` to ``path`` as UTF-8; the number of characters."""
    characters = 0
    with open(path, "w", encoding="utf-8", newline="") as file:
        for block in blocks:
            file.write(block)
            characters += len(block)
    return characters


def read_span(path: Path, start: int, stop: int, block_chars: int = 1 << 20) -> Iterator[str]:
    """Characters ``start`` to ``stop`` of the UTF-8 file ``path`` (as :func:`write_text`
    wrote it), in blocks of up to ``block_chars`` characters."""
    with open(path, encoding="utf-8", newline="") as file:
        position = 0
        while position < stop and (block := file.read(block_chars)):
            if position + len(block) > start:
                yield block[max(start - position, 0) : stop - position]
            position += len(block)


def cache_key(source_hash: str, cleaning: Sequence[str], val_fraction: float, tokenizer_config: dict) -> str:
    """A short, stable hash of everything that determines a cache entry's content."""
    identity = dict(
        format=CACHE_FORMAT_VERSION,
        source=source_hash,
        cleaning=list(cleaning),
        val_fraction=val_fraction,
        tokenizer=tokenizer_config,
    )
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def prepare_corpus(
    documents: Iterable[TextDocument],
    cleaning: Sequence[str],
    val_fraction: float,
    train_tokenizer: Callable[[Iterable[str]], Tokenizer],
    tokenizer_config: dict,
    cache_dir: str | Path,
    trained_from: tuple[dict, str] | None = None,
) -> TokenizedCorpus:
    """Clean, split, tokenize and cache ``documents``, or open the cache entry made before.

    Documents are joined with a newline. The tokenizer is trained on the train split only.
    Nothing is held whole: the documents are read once to hash them (which finds unreadable
    input before any work), and on a cache miss once more, hashed again (a corpus that changed
    in between is refused, not cached) and cleaned a line-ended piece at a time
    (:func:`~framework.data.cleaning.clean_blocks`) into a scratch file beside the entry; the
    tokenizer trains on, and the encoders stream, character spans of that file. Peak memory is
    that of the tokenizer's training and the chunks in flight, not the corpus's size; what is
    held whole is at most a line, or a stretch of text between two safe cut points
    (:func:`~framework.tokenizer.encoding.safe_chunks`).

    Args:
        documents: the corpus, from a source's ``read()``: iterable more than once, in the same
            order each time, each document giving its text through ``blocks()``.
        cleaning: names of cleaning steps (see ``framework.data.cleaning``).
        val_fraction: share of characters, at the end, held out for validation.
        train_tokenizer: builds a tokenizer from the train split's text, given as a stream of
            its consecutive blocks (one pass), as ``framework.tokenizer``'s trainers take it.
        tokenizer_config: the tokenizer's config, part of the cache key.
        cache_dir: the root under which entries live.
        trained_from: for a tokenizer given ready-made (a finished run's): the tokenizer config it
            was trained from and its sha256. The entry that training made under that config is
            opened when its tokenizer has that hash, rather than encoding the corpus again under
            ``tokenizer_config``'s key.

    Returns:
        The entry. ``meta`` holds ``vocab_size``, ``dtype``, ``tokens`` and ``characters`` per
        split, ``tokenizer_sha256``, ``source_sha256``, ``num_documents``, ``cleaning`` and
        ``val_fraction``.

    Raises:
        DataError: an empty corpus, a document that cannot be read or holds a lone surrogate,
            or a corpus that changed between its two reads.
        ConfigError: an unknown cleaning step or an invalid ``val_fraction``.
        TypeError: ``documents`` is a one-pass iterator.
    """
    validate_cleaning(cleaning)
    check_val_fraction(val_fraction)
    if iter(documents) is documents:
        raise TypeError("prepare_corpus reads the documents twice; pass a list or a source's read(), not an iterator.")
    identity = content_hash(documents)
    source_hash, num_documents, total_bytes = identity
    if not total_bytes:
        raise DataError("The corpus is empty: the source returned no text.")
    root = Path(cache_dir).expanduser()
    entry = root / cache_key(source_hash, cleaning, val_fraction, tokenizer_config)
    if trained_from is not None:
        training_entry = root / cache_key(source_hash, cleaning, val_fraction, trained_from[0])
        meta = training_entry / "meta.json"
        if meta.exists() and json.loads(meta.read_text())["tokenizer_sha256"] == trained_from[1]:
            entry = training_entry
    if (entry / "meta.json").exists():
        log.info("Token cache hit: reusing %s", entry)
        return _open(entry, cache_hit=True)

    log.info("Token cache miss: tokenizing %d document(s) into %s", num_documents, entry)
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        cleaned, reading = staging / "cleaned.txt", CorpusReading(documents)
        characters = write_text(clean_blocks(reading, cleaning), cleaned)
        if reading.identity != identity:
            raise DataError(
                f"The corpus changed while it was being prepared: read first as {num_documents} document(s), "
                f"{total_bytes:,} bytes, sha256 {source_hash[:12]}, then as {reading.identity[1]} document(s), "
                f"{reading.identity[2]:,} bytes, sha256 {reading.identity[0][:12]}. Nothing was cached; prepare again "
                "once the source's files stop changing (a source read from a pipe cannot be read twice)."
            )
        boundary = split_boundary(characters, val_fraction)
        spans = {"train": (0, boundary), "val": (boundary, characters)}
        tokenizer = train_tokenizer(read_span(cleaned, *spans["train"]))
        vocab_size = tokenizer.get_vocab_size()
        meta = dict(
            format=CACHE_FORMAT_VERSION,
            vocab_size=vocab_size,
            dtype=token_dtype(vocab_size).name,
            tokens={},
            characters={split: stop - start for split, (start, stop) in spans.items()},
            tokenizer_sha256=tokenizer_hash(tokenizer),
            tokenizer_config=tokenizer_config,
            source_sha256=source_hash,
            num_documents=num_documents,
            cleaning=list(cleaning),
            val_fraction=val_fraction,
        )
        with encoding_progress(characters) as advance:
            for split, span in spans.items():
                meta["tokens"][split] = encode_to_file(tokenizer, read_span(cleaned, *span), staging / f"{split}.bin", advance)
        cleaned.unlink()
        tokenizer.save(str(staging / "tokenizer.json"))
        (staging / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        try:
            os.replace(staging, entry)
        except OSError:
            if not (entry / "meta.json").exists():
                raise  # otherwise another process finished the same entry first
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _open(entry, cache_hit=False)


@contextlib.contextmanager
def encoding_progress(total_characters: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (share of characters encoded, time left), shown while the body
    runs and removed after, when stderr is a terminal (in a log it would leave an empty line);
    yields the function that advances it by a number of characters."""
    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("Tokenizing", total=total_characters)
        yield lambda characters: progress.advance(task, characters)


def _open(entry: Path, cache_hit: bool) -> TokenizedCorpus:
    meta = json.loads((entry / "meta.json").read_text())
    tokenizer = Tokenizer.from_file(str(entry / "tokenizer.json"))
    return TokenizedCorpus(directory=entry, tokenizer=tokenizer, meta=meta, cache_hit=cache_hit)
