"""Character-level tokenizer built with HF ``tokenizers``."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

from framework.errors import ConfigError, DataError
from framework.tokenizer.encoding import safe_chunks


def train_char_tokenizer(train_text: str | Iterable[str], unk_token: str = "<unk>") -> Tokenizer:
    """Build a tokenizer with one id per distinct character of ``train_text``.

    Ids ``0..n-1`` are the training split's characters in code-point order (nanoGPT's
    shakespeare_char ordering); id ``n`` is ``unk_token``, which every character unseen in
    training maps to, so evaluation text is never silently shortened.

    Args:
        train_text: the training split only, so validation text cannot leak into the vocabulary:
            one string, or a stream of its consecutive blocks (read in one pass).
        unk_token: the token for unseen characters.

    Returns:
        A ``tokenizers.Tokenizer`` with ``n + 1`` ids that decodes by concatenation.

    Raises:
        DataError: ``train_text`` is empty.
        ConfigError: ``unk_token`` is a single character (it would collide with a real character).
    """
    if len(unk_token) < 2:
        raise ConfigError(f"tokenizer.unk_token={unk_token!r} must be longer than one character.")
    characters: set[str] = set()
    for piece in safe_chunks(train_text):
        characters.update(piece)
    if not characters:
        raise DataError("Cannot build a char tokenizer from an empty training split.")
    vocab = {char: index for index, char in enumerate(sorted(characters))}
    vocab[unk_token] = len(vocab)
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=unk_token))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    return tokenizer
