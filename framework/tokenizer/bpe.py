"""Byte-level BPE tokenizer (GPT-2 style) trained with HF ``tokenizers``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from framework.errors import ConfigError
from framework.tokenizer.encoding import safe_chunks


def check_special_tokens(special_tokens: Sequence[str]) -> None:
    """Raise ConfigError for a special token with a newline after its first character: long text
    is cut into chunks just before newlines (``framework.tokenizer.encoding.safe_chunks``), which
    could split such a token."""
    spanning = [token for token in special_tokens if "\n" in token[1:]]
    if spanning:
        raise ConfigError(
            f"tokenizer.special_tokens {spanning} hold a newline after their first character; long text is cut into "
            "chunks just before newlines (framework.tokenizer.encoding.safe_chunks), which could split such a token. "
            "Use special tokens without newlines, or with one only at the start."
        )


def train_bpe_tokenizer(
    train_text: str | Iterable[str],
    vocab_size: int = 4096,
    min_frequency: int = 2,
    special_tokens: tuple[str, ...] = ("<|endoftext|>",),
) -> Tokenizer:
    """Train a byte-level BPE (Sennrich et al., 2016; Radford et al., 2019) on ``train_text``.

    The 256 byte symbols are always in the vocabulary, so any text encodes without unknown
    tokens, and decoding inverts encoding exactly.

    Args:
        train_text: the training split only, so validation text cannot shape the merges: one
            string, or a stream of its consecutive blocks (read in one pass, never held whole).
        vocab_size: ids in the final vocabulary, special tokens included; at least
            ``256 + len(special_tokens)``.
        min_frequency: a pair must occur this many times to be merged.
        special_tokens: tokens added first, never split.

    Raises:
        ConfigError: ``vocab_size`` too small to hold the byte alphabet, or a special token with
            a newline after its first character (chunked encoding could split it).
    """
    minimum = 256 + len(special_tokens)
    if vocab_size < minimum:
        raise ConfigError(f"tokenizer.vocab_size={vocab_size} is below {minimum}, the byte alphabet plus special tokens.")
    check_special_tokens(special_tokens)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(safe_chunks(train_text), trainer=trainer, length=None)
    return tokenizer
