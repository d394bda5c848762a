"""Encoding with ``tiktoken`` for the byte-level BPE tokenizers this framework trains.

tiktoken (OpenAI's Rust BPE) encodes GPT-2-style byte-level BPE about twice as fast as HF
``tokenizers``. :func:`tiktoken_encoding` rebuilds one of our trained HF tokenizers as a
``tiktoken.Encoding`` with the same ids: the GPT-2 pre-tokenization pattern, each token's
bytes ranked by its id, and the special tokens. tiktoken merges the adjacent pair whose joined
bytes have the lowest rank; since BpeTrainer gives each merge's result the next id, that is
HF's merge order, and a test checks that both give the same ids on real text.
"""

from __future__ import annotations

import functools
import json

import tiktoken
from tokenizers import Tokenizer

# GPT-2's pre-tokenization regex (Radford et al., 2019), as tiktoken's "gpt2" encoding and HF's
# ByteLevel pre-tokenizer (use_regex=true) both apply it.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@functools.cache
def _unicode_to_byte() -> dict[str, int]:
    """Inverse of GPT-2's ``bytes_to_unicode``: the printable character ByteLevel writes for
    each byte (printable Latin-1 bytes stand for themselves, the rest map to U+0100 onwards)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping, extra = {chr(byte): byte for byte in printable}, 0
    for byte in range(256):
        if byte not in printable:
            mapping[chr(256 + extra)] = byte
            extra += 1
    return mapping


def _is_plain_byte_level_bpe(spec: dict) -> bool:
    pre_tokenizer, model = spec.get("pre_tokenizer") or {}, spec.get("model") or {}
    return (
        model.get("type") == "BPE"
        and not model.get("dropout")
        and not model.get("continuing_subword_prefix")
        and not model.get("end_of_word_suffix")
        and spec.get("normalizer") is None
        and spec.get("post_processor") is None
        and spec.get("truncation") is None
        and spec.get("padding") is None
        and not any(token.get(flag) for token in spec.get("added_tokens", []) for flag in ("lstrip", "rstrip", "single_word"))
        and pre_tokenizer.get("type") == "ByteLevel"
        and pre_tokenizer.get("use_regex", True)
        and not pre_tokenizer.get("add_prefix_space")
    )


def _merges_follow_ids(merges: list, vocab: dict[str, int]) -> bool:
    """Whether each merge's result has a higher id than every earlier merge's result."""
    ids = [vocab.get(merge[0] + merge[1] if isinstance(merge, list) else merge.replace(" ", "", 1)) for merge in merges]
    return None not in ids and all(earlier < later for earlier, later in zip(ids, ids[1:]))


def tiktoken_encoding(tokenizer: Tokenizer) -> tiktoken.Encoding | None:
    """The ``tiktoken.Encoding`` that gives ``tokenizer``'s ids, or None when ``tokenizer`` is
    not a plain byte-level BPE (no normalizer, GPT-2 regex, no prefix space, merges numbered in
    order) whose encoding tiktoken reproduces, e.g. a character or word tokenizer.

    Special tokens are matched in the text as HF does: encode with ``allowed_special="all"``.
    The same tokenizer gets the same Encoding back, whose regex caches are then warm.
    """
    return _encoding_of(tokenizer.to_str())


@functools.lru_cache(maxsize=4)
def _encoding_of(tokenizer_json: str) -> tiktoken.Encoding | None:
    spec = json.loads(tokenizer_json)
    if not _is_plain_byte_level_bpe(spec):
        return None
    model = spec["model"]
    special = {token["content"]: token["id"] for token in spec.get("added_tokens", [])}
    if not _merges_follow_ids(model["merges"], model["vocab"]):
        return None
    to_byte = _unicode_to_byte()
    ranks = {}
    for token, rank in model["vocab"].items():
        if token in special:
            continue
        if any(character not in to_byte for character in token):
            return None
        ranks[bytes(to_byte[character] for character in token)] = rank
    if sum(len(token) == 1 for token in ranks) != 256:
        return None  # tiktoken needs every byte; HF would drop or map to unk what is missing
    return tiktoken.Encoding(name="lm-framework-bpe", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=special)
