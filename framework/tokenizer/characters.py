"""How many characters and UTF-8 bytes of text each token id stands for, to convert losses to
bits per character and bits per byte."""

from __future__ import annotations

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


def characters_per_token(tokenizer: Tokenizer) -> np.ndarray:
    """Characters of decoded text per token id, as a float64 array of length ``vocab_size``.

    Byte-level BPE tokens count their UTF-8 lead bytes (a character split across tokens is
    counted once, in the token holding its first byte); other tokens count their characters;
    the unknown token stands for one character; other special tokens for none. Summed over the
    targets of a text span this gives the span's exact character count.
    """
    counts = np.zeros(tokenizer.get_vocab_size(), dtype=np.float64)
    specials = {token.content for token in tokenizer.get_added_tokens_decoder().values()}
    byte_level = type(tokenizer.decoder).__name__ == "ByteLevel"
    alphabet = _byte_level_alphabet() if byte_level else {}
    unknown_id = unknown_token_id(tokenizer)
    for token, index in tokenizer.get_vocab().items():
        if index == unknown_id:
            counts[index] = 1
        elif token in specials:
            counts[index] = 0
        elif byte_level:
            counts[index] = sum(1 for char in token if not 0x80 <= alphabet[char] <= 0xBF)
        else:
            counts[index] = len(token)
    return counts


def bytes_per_token(tokenizer: Tokenizer) -> np.ndarray:
    """UTF-8 bytes of decoded text per token id, as a float64 array of length ``vocab_size``
    (nanochat's ``token_bytes``): byte-level BPE tokens count their bytes, other tokens the
    UTF-8 length of their characters (a WordPiece ``##`` prefix left out), special tokens none,
    and the unknown token one byte (the character it replaced is not known from the id; text
    with unknown tokens gets a bits-per-byte figure that errs high, and ``framework.evaluate``
    reports how many there were). Summed over the targets of a text span this gives the span's
    byte count.
    """
    counts = np.zeros(tokenizer.get_vocab_size(), dtype=np.float64)
    specials = {token.content for token in tokenizer.get_added_tokens_decoder().values()}
    byte_level = type(tokenizer.decoder).__name__ == "ByteLevel"
    prefix = getattr(tokenizer.model, "continuing_subword_prefix", None) or ""
    unknown_id = unknown_token_id(tokenizer)
    for token, index in tokenizer.get_vocab().items():
        if index == unknown_id:
            counts[index] = 1
        elif token in specials:
            counts[index] = 0
        elif byte_level:
            counts[index] = len(token)
        else:
            counts[index] = len((token[len(prefix) :] if prefix and token.startswith(prefix) else token).encode())
    return counts
