"""Encoding long text with a trained tokenizer, in parallel chunks."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import numpy as np
from tokenizers import Tokenizer

# A newline with a non-space character on each side. Cutting there gives every pre-tokenizer
# we use (per-character split; GPT-2's byte-level regex) the same pieces as the uncut text,
# so chunked encoding is token-identical to encoding the whole string.
_SAFE_CUT = re.compile(r"(?<=\S\n)(?=\S)")


def safe_chunks(text: str, chunk_chars: int = 1 << 16) -> Iterator[str]:
    """Split ``text`` into pieces of about ``chunk_chars`` characters at safe cut points.

    Concatenating the pieces gives ``text`` back; a text without safe cut points is one piece.
    """
    start = 0
    while start < len(text):
        match = _SAFE_CUT.search(text, start + chunk_chars)
        end = match.start() if match else len(text)
        yield text[start:end]
        start = end


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype holding ids below ``vocab_size``: uint16 or uint32."""
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


def encode_to_array(tokenizer: Tokenizer, text: str, batch_chunks: int = 64) -> np.ndarray:
    """Encode ``text`` to a 1-D array of ids (dtype from :func:`token_dtype`).

    Chunks are encoded with ``encode_batch``, which runs on all cores.
    """
    dtype = token_dtype(tokenizer.get_vocab_size())
    parts, batch = [], []
    for chunk in safe_chunks(text):
        batch.append(chunk)
        if len(batch) == batch_chunks:
            parts.extend(np.asarray(e.ids, dtype=dtype) for e in tokenizer.encode_batch(batch))
            batch = []
    if batch:
        parts.extend(np.asarray(e.ids, dtype=dtype) for e in tokenizer.encode_batch(batch))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def tokenizer_hash(tokenizer: Tokenizer) -> str:
    """sha256 of the tokenizer's JSON serialisation (vocabulary, merges, pipeline)."""
    return hashlib.sha256(tokenizer.to_str().encode()).hexdigest()
