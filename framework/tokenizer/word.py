"""Word-level tokenizer of the classic text-classification recipe, built with HF ``tokenizers``."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from framework.errors import ConfigError, DataError
from framework.tokenizer.encoding import safe_chunks

PAD_TOKEN = "<pad>"
# The characters Keras' Tokenizer filters out by default (punctuation, tab, newline).
KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'


def train_word_tokenizer(
    train_text: str | Iterable[str], num_words: int = 10_000, lowercase: bool = True, oov_token: str = "<unk>"
) -> Tokenizer:
    """Keep the ``num_words`` most frequent words of ``train_text``; every other word is ``oov_token``.

    Text is lower-cased (``lowercase``), Keras' punctuation filter characters become spaces, and
    words are split on whitespace, as ``keras.preprocessing.text.Tokenizer`` does. Ids: 0 is
    ``<pad>`` (never produced by encoding; the padding id), 1 is ``oov_token``, then the kept
    words by decreasing frequency, so the vocabulary has ``num_words + 2`` ids.

    Args:
        train_text: the training texts, one per line (training split only): one string, or a
            stream of its consecutive blocks (read in one pass, cut only between lines).
        num_words: words kept (ties in frequency broken by the tokenizers library's order).

    Raises:
        ConfigError: ``num_words`` < 1.
        DataError: ``train_text`` has no words (once punctuation is removed).
    """
    if num_words < 1:
        raise ConfigError(f"tokenizer.num_words={num_words} must be at least 1.")
    tokenizer = Tokenizer(models.WordLevel(unk_token=oov_token))
    steps = [normalizers.Lowercase()] if lowercase else []
    steps.append(normalizers.Replace(Regex("[" + "".join("\\" + char for char in KERAS_FILTERS) + "]"), " "))
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    trainer = trainers.WordLevelTrainer(vocab_size=num_words + 2, special_tokens=[PAD_TOKEN, oov_token], show_progress=False)
    lines = (line for piece in safe_chunks(train_text) for line in piece.split("\n"))
    tokenizer.train_from_iterator(lines, trainer=trainer)
    if not set(tokenizer.get_vocab()) - {PAD_TOKEN, oov_token}:
        raise DataError("Cannot build a word tokenizer from training text without words.")
    return tokenizer
