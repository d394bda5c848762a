"""Encoding long text with a trained tokenizer: parallel batches of chunks, streamed to a file."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from framework.cpus import usable_cpus
from framework.tokenizer.tiktoken_bridge import tiktoken_encoding

# A newline followed by a non-space character (``\s`` and ``str.isspace`` agree in Python's ``re``).
_SAFE_CUT = re.compile(r"\n(?=\S)")


def _safe_cut(text: str, position: int) -> int:
    """The first newline at or after ``position`` (at least 1) that is followed by a non-space
    character, else ``len(text)``; the cut goes just before it.

    Cutting there gives every pre-tokenizer we use the same pieces as the uncut text, so chunked
    encoding is token-identical to encoding the whole string: per-character splits trivially,
    and GPT-2's byte-level regex because the whitespace run before such a newline is a piece of
    its own (``\\s+(?!\\S)`` stops before the newline) and the newline is one too (``\\s+``,
    the next character not being a space; no alternative carries a token from a non-space
    character into the whitespace after it, and none looks behind). Python's ``isspace`` covers
    Unicode White_Space, so "non-space" here is non-space for the regex too. Special tokens may
    hold a newline only as their first character (``train_bpe_tokenizer`` refuses others). A
    test checks this on code and prose.
    """
    match = _SAFE_CUT.search(text, position)
    return match.start() if match else len(text)


def safe_chunks(text: str | Iterable[str], chunk_chars: int = 1 << 16) -> Iterator[str]:
    """Split ``text`` into pieces of about ``chunk_chars`` characters at :func:`_safe_cut` points.

    ``text`` is one string, or a stream of consecutive blocks of one (read from a file, say),
    which is cut as that string would be, holding only the text since the last cut: a block,
    or more where a long stretch has no safe cut point. Each character is searched once.
    Concatenating the pieces gives the text back; a text without safe cut points is one piece.

    Raises:
        ValueError: ``chunk_chars`` below 1.
    """
    if chunk_chars < 1:
        raise ValueError(f"chunk_chars={chunk_chars} must be at least 1.")
    pending, searched = "", 0  # no cut point in pending[chunk_chars:searched]
    for block in (text,) if isinstance(text, str) else text:
        pending += block
        start = 0
        while (end := _safe_cut(pending, max(start + chunk_chars, searched))) < len(pending):
            yield pending[start:end]
            start = end
        pending = pending[start:]
        # The last character may be a newline whose next character is in the next block.
        searched = max(len(pending) - 1, 0)
    if pending:
        yield pending


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype holding ids below ``vocab_size``: uint16 or uint32."""
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


def _in_order_on_threads(function: Callable[[str], np.ndarray], chunks: Iterator[str], threads: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(len(chunk), function(chunk))`` for each chunk in order, computed on ``threads`` threads
    with at most ``4 * threads`` chunks in flight (bounded memory); the caller's work on one
    result overlaps the encoding of the next."""
    with ThreadPoolExecutor(threads) as pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append((len(chunk), pool.submit(function, chunk)))
            if len(pending) >= 4 * threads:
                characters, future = pending.popleft()
                yield characters, future.result()
        while pending:
            characters, future = pending.popleft()
            yield characters, future.result()


def encoded_chunks(tokenizer: Tokenizer, text: str | Iterable[str], batch_chunks: int = 64) -> Iterator[tuple[int, np.ndarray]]:
    """``(characters, ids)`` for each :func:`safe_chunks` piece of ``text`` (a string, or a
    stream of its consecutive blocks), in order, ids as a
    1-D array of :func:`token_dtype`, on all cores: through tiktoken when it reproduces
    ``tokenizer`` (our byte-level BPE; see :func:`~framework.tokenizer.tiktoken_bridge.tiktoken_encoding`),
    chunks spread over a thread pool (tiktoken releases the GIL and fills a buffer, no Python
    list); else HF's ``encode_batch`` on ``batch_chunks`` chunks at a time."""
    dtype, encoding, chunks = token_dtype(tokenizer.get_vocab_size()), tiktoken_encoding(tokenizer), safe_chunks(text)
    if encoding is not None:
        threads = usable_cpus()
        encode = lambda chunk: encoding.encode_to_numpy(chunk, allowed_special="all").astype(dtype)  # noqa: E731
        yield from _in_order_on_threads(encode, chunks, threads)
        return
    while batch := list(itertools.islice(chunks, batch_chunks)):
        for characters, encoded in zip(map(len, batch), tokenizer.encode_batch(batch)):
            yield characters, np.asarray(encoded.ids, dtype=dtype)


def encode_to_file(
    tokenizer: Tokenizer, text: str | Iterable[str], path: Path, advance: Callable[[int], None] = lambda characters: None
) -> int:
    """Encode ``text`` (a string, or a stream of its consecutive blocks) into ``path`` as raw ids
    (dtype from :func:`token_dtype`), streaming.

    ``text`` is cut at :func:`safe_chunks` points (token-identical to encoding it whole) and
    encoded by :func:`encoded_chunks`; each chunk's ids are appended to the file as they come,
    so memory beyond ``text`` (or beyond a block of a stream) stays bounded by the chunks in
    flight, whatever the corpus size.
    ``advance`` is called with the characters done after each chunk (for a progress bar).

    Returns:
        The number of tokens written.
    """
    written = 0
    with open(path, "wb") as file:
        for characters, ids in encoded_chunks(tokenizer, text):
            ids.tofile(file)
            written += ids.size
            advance(characters)
    return written


def tokenizer_hash(tokenizer: Tokenizer) -> str:
    """sha256 of the tokenizer's JSON serialisation (vocabulary, merges, pipeline)."""
    return hashlib.sha256(tokenizer.to_str().encode()).hexdigest()
