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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from tokenizers import Tokenizer

from framework.data.cleaning import clean, validate_cleaning
from framework.data.sources import Document
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


def content_hash(documents: Sequence[Document]) -> str:
    """sha256 over the documents' texts, in order (names are left out, so the same files
    reached through another path reuse the cache)."""
    digest = hashlib.sha256()
    for document in documents:
        encoded = document.text.encode("utf-8", errors="surrogatepass")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()


def check_val_fraction(val_fraction: float) -> None:
    """Raise ConfigError unless ``0 < val_fraction < 1``."""
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction={val_fraction} must be strictly between 0 and 1.")


def split_text(text: str, val_fraction: float) -> dict[str, str]:
    """Split by position: the first ``1 - val_fraction`` of the characters train, the rest val.

    This is nanoGPT's split (``n = int(0.9 * len(data))`` for ``val_fraction=0.1``).

    Raises:
        ConfigError: ``val_fraction`` outside (0, 1).
    """
    check_val_fraction(val_fraction)
    boundary = int(len(text) * (1 - val_fraction))
    return {"train": text[:boundary], "val": text[boundary:]}


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
    documents: Sequence[Document],
    cleaning: Sequence[str],
    val_fraction: float,
    train_tokenizer: Callable[[str], Tokenizer],
    tokenizer_config: dict,
    cache_dir: str | Path,
) -> TokenizedCorpus:
    """Clean, split, tokenize and cache ``documents``, or open the cache entry made before.

    Documents are joined with a newline. The tokenizer is trained on the train split only.

    Args:
        documents: the corpus, from a source's ``read()``.
        cleaning: names of cleaning steps (see ``framework.data.cleaning``).
        val_fraction: share of characters, at the end, held out for validation.
        train_tokenizer: builds a tokenizer from the train split's text.
        tokenizer_config: the tokenizer's config, part of the cache key.
        cache_dir: the root under which entries live.

    Returns:
        The entry. ``meta`` holds ``vocab_size``, ``dtype``, ``tokens`` and ``characters`` per
        split, ``tokenizer_sha256``, ``source_sha256``, ``num_documents``, ``cleaning`` and
        ``val_fraction``.

    Raises:
        DataError: an empty corpus.
        ConfigError: an unknown cleaning step or an invalid ``val_fraction``.
    """
    validate_cleaning(cleaning)
    check_val_fraction(val_fraction)
    if not documents or not any(document.text for document in documents):
        raise DataError("The corpus is empty: the source returned no text.")
    source_hash = content_hash(documents)
    entry = Path(cache_dir).expanduser() / cache_key(source_hash, cleaning, val_fraction, tokenizer_config)
    if (entry / "meta.json").exists():
        log.info("Token cache hit: reusing %s", entry)
        return _open(entry, cache_hit=True)

    log.info("Token cache miss: tokenizing %d document(s) into %s", len(documents), entry)
    splits = split_text(clean("\n".join(document.text for document in documents), cleaning), val_fraction)
    tokenizer = train_tokenizer(splits["train"])
    vocab_size = tokenizer.get_vocab_size()
    meta = dict(
        format=CACHE_FORMAT_VERSION,
        vocab_size=vocab_size,
        dtype=token_dtype(vocab_size).name,
        tokens={},
        characters={split: len(text) for split, text in splits.items()},
        tokenizer_sha256=tokenizer_hash(tokenizer),
        tokenizer_config=tokenizer_config,
        source_sha256=source_hash,
        num_documents=len(documents),
        cleaning=list(cleaning),
        val_fraction=val_fraction,
    )
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        with encoding_progress(sum(meta["characters"].values())) as advance:
            for split, text in splits.items():
                meta["tokens"][split] = encode_to_file(tokenizer, text, staging / f"{split}.bin", advance)
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
    runs and removed after; yields the function that advances it by a number of characters."""
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("Tokenizing", total=total_characters)
        yield lambda characters: progress.advance(task, characters)


def _open(entry: Path, cache_hit: bool) -> TokenizedCorpus:
    meta = json.loads((entry / "meta.json").read_text())
    tokenizer = Tokenizer.from_file(str(entry / "tokenizer.json"))
    return TokenizedCorpus(directory=entry, tokenizer=tokenizer, meta=meta, cache_hit=cache_hit)
