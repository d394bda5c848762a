"""How many characters and UTF-8 bytes of text each token id stands for, to convert losses to
bits per character and bits per byte."""

from __future__ import annotations

import json
import re

import numpy as np
from tokenizers import Tokenizer


def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's printable stand-in character -> the byte it stands for (Radford et al., 2019)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {chr(byte): byte for byte in printable}
    others = [byte for byte in range(256) if byte not in set(printable)]
    mapping.update({chr(256 + index): byte for index, byte in enumerate(others)})
    return mapping


def unknown_token_id(tokenizer: Tokenizer) -> int | None:
    """The id of ``tokenizer``'s unknown token (what characters unseen in training encode to), or
    None for a tokenizer without one (byte-level BPE)."""
    token = getattr(tokenizer.model, "unk_token", None)
    return tokenizer.token_to_id(token) if token else None


def _token_bytes(tokenizer: Tokenizer) -> list[bytes | None]:
    """The UTF-8 bytes of decoded text each token id stands for: byte-level BPE tokens their
    bytes (GPT-2's stand-in alphabet undone), byte-fallback tokens ``<0xNN>`` their byte, other
    tokens their characters (a WordPiece continuation prefix such as ``##`` left out, a
    SentencePiece ``▁`` read as a space); special tokens none; None for the unknown token, which
    stands for a character the id does not tell."""
    token_bytes: list[bytes | None] = [b""] * tokenizer.get_vocab_size()
    specials = {token.content for token in tokenizer.get_added_tokens_decoder().values()}
    byte_level = type(tokenizer.decoder).__name__ == "ByteLevel"
    alphabet = _byte_level_alphabet() if byte_level else {}
    prefix = getattr(tokenizer.model, "continuing_subword_prefix", None) or ""
    metaspace = "\u2581" in json.dumps(json.loads(tokenizer.to_str()).get("decoder"), ensure_ascii=False)
    byte_fallback = getattr(tokenizer.model, "byte_fallback", False)
    unknown_id = unknown_token_id(tokenizer)
    for token, index in tokenizer.get_vocab().items():
        if index == unknown_id:
            token_bytes[index] = None
        elif token in specials:
            token_bytes[index] = b""
        elif byte_level:
            token_bytes[index] = bytes(alphabet[char] for char in token)
        elif byte_fallback and re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", token):
            token_bytes[index] = bytes([int(token[3:5], 16)])
        else:
            text = token[len(prefix) :] if prefix and token.startswith(prefix) else token
            token_bytes[index] = (text.replace("\u2581", " ") if metaspace else text).encode()
    return token_bytes


def characters_per_token(tokenizer: Tokenizer) -> np.ndarray:
    """Characters of decoded text per token id, as a float64 array of length ``vocab_size``.

    Each token counts the UTF-8 lead bytes of the text it stands for (:func:`_token_bytes`), so
    a character split across byte-level tokens is counted once, in the token holding its first
    byte; the unknown token stands for one character; special tokens for none. Summed over the
    targets of a text span this gives the span's exact character count.
    """
    return np.array(
        [1 if data is None else sum(1 for byte in data if byte & 0xC0 != 0x80) for data in _token_bytes(tokenizer)], dtype=np.float64
    )


def bytes_per_token(tokenizer: Tokenizer) -> np.ndarray:
    """UTF-8 bytes of decoded text per token id, as a float64 array of length ``vocab_size``
    (nanochat's ``token_bytes``; see :func:`_token_bytes`). Summed over the targets of a text
    span this gives the span's byte count, except that the unknown token counts one byte (the
    character it replaced is not known from the id: text with unknown tokens gets a
    bits-per-byte figure that errs high, and ``framework.evaluate`` reports how many there were).
    """
    return np.array([1 if data is None else len(data) for data in _token_bytes(tokenizer)], dtype=np.float64)
